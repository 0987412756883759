"""The runner executing the real SmolLM2 GGUF with the real llama-cpp-python build."""
from __future__ import annotations

import json
import math

import pytest

from runner import PromptSpec, detect_hardware, next_token_logprobs, run_prompts
from tests.support.models import smollm2_gguf

pytestmark = pytest.mark.slow

PROMPTS = [PromptSpec("The capital of France is", id="fr"),
           PromptSpec("Write one sentence about the sea.", id="chat", chat=True)]


def test_greedy_is_deterministic_and_reports_speed():
    model = smollm2_gguf()
    a = run_prompts(model, PROMPTS, max_tokens=16, top_k=5, n_ctx=512)
    b = run_prompts(model, PROMPTS, max_tokens=16, top_k=5, n_ctx=512)
    assert a.status == b.status == "ok", (a.error, a.stderr_tail)
    for ra, rb in zip(a.results, b.results):
        assert ra.status == "ok" and ra.tokens and ra.text
        assert ra.tokens == rb.tokens and ra.text == rb.text
    fr = a.results[0]
    assert "Paris" in fr.text
    for pos in fr.positions:  # greedy: the chosen token is the top-1 of a real distribution
        assert pos["token"] == pos["top"][0][0] and len(pos["top"]) == 5
        lps = [lp for _, lp in pos["top"]]
        assert lps == sorted(lps, reverse=True) and all(lp <= 0 for lp in lps)
        assert sum(math.exp(lp) for lp in lps) <= 1.0 + 1e-6
    assert a.gen_tokens_per_s > 0 and a.prompt_tokens_per_s > 0 and a.load_s > 0
    assert a.plan["n_ctx"] == 512 and a.hardware["usable_cores"] >= 1
    assert 0 < a.peak_vm_bytes < a.plan["address_space_limit"]
    json.dumps(a.to_dict())  # evidence must be JSON-able


def test_next_token_logprobs_is_the_full_softmax_top_k():
    model = smollm2_gguf()
    top = next_token_logprobs(model, "The capital of France is", top_k=10, n_ctx=256)
    assert len(top) == 10 and top[0][1] > top[-1][1]
    batch = run_prompts(model, ["The capital of France is"], max_tokens=1, top_k=10, n_ctx=256)
    assert batch.results[0].tokens[0] == top[0][0]
    assert abs(batch.results[0].positions[0]["top"][0][1] - top[0][1]) < 1e-4


def test_teacher_forced_scoring_matches_generation():
    model = smollm2_gguf()
    gen = run_prompts(model, ["Once upon a time"], max_tokens=6, top_k=5, n_ctx=256).results[0]
    spec = PromptSpec("Once upon a time", score_tokens=gen.tokens[:5], score_ref_ids=[[p["token"]] for p in gen.positions],
                      max_tokens=0)
    scored = run_prompts(model, [spec], top_k=5, max_tokens=0, n_ctx=256).results[0]
    assert len(scored.score) == 6
    for pos, g in zip(scored.score, gen.positions):
        assert pos["ref"][0][0] == g["token"]
        assert abs(pos["ref"][0][1] - g["logprob"]) < 1e-3


def test_model_too_large_is_refused_with_numbers_before_loading():
    prof = detect_hardware()
    prof.ram_available_bytes = 50 << 20
    batch = run_prompts(smollm2_gguf(), ["hi"], profile=prof)
    assert batch.status == "refused" and batch.results[0].status == "refused"
    assert "does not fit: needs" in batch.error and "GiB available" in batch.error


def test_timeout_is_a_result():
    batch = run_prompts(smollm2_gguf(), ["Once upon a time, there was a"] * 50, max_tokens=400, timeout_s=2, n_ctx=512)
    assert batch.status == "timed_out" and "timed out after 2 s" in batch.error
    assert all(r.status in ("ok", "timed_out") for r in batch.results)
    assert batch.results[-1].status == "timed_out"
