"""Assay runner: hardware profile -> plan -> sandboxed llama.cpp child with deterministic decoding."""
from .api import BatchResult, PromptSpec, RunnerError, RunResult, next_token_logprobs, run_prompts
from .hardware import GPUInfo, HardwareProfile, detect_hardware
from .plan import ModelFacts, ModelTooLarge, Plan, make_plan, model_facts

__all__ = [
    "BatchResult", "PromptSpec", "RunResult", "RunnerError", "next_token_logprobs", "run_prompts",
    "GPUInfo", "HardwareProfile", "detect_hardware", "ModelFacts", "ModelTooLarge", "Plan", "make_plan",
    "model_facts",
]
