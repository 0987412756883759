"""The task queue's settings that the registry (which sends) and every verifier (which takes)
must agree on, read from the same environment variables by both."""
from __future__ import annotations

import os


def broker_url() -> str:
    return os.environ.get("CELERY_BROKER_URL") or os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def verify_queue() -> str:
    return os.environ.get("ASSAY_QUEUE", "assay-verify")


def verify_timeout_s() -> int:
    """The longest a single model run (probes, a rebuild) may take."""
    return int(os.environ.get("ASSAY_VERIFY_TIMEOUT_S", "900"))


def scan_timeout_s() -> int:
    """The longest the whole-vocabulary trigger search may take. Its cost is the vocabulary's
    word count times the model's batched speed: SmolLM2-135M takes about 2-3 minutes on 2 cores,
    Gemma 3 270M (262,144 tokens) about an hour; a scan that would take longer stops early with
    its projected time (see runner.scan)."""
    return int(os.environ.get("ASSAY_SCAN_TIMEOUT_S", "7200"))


def longest_task_s() -> int:
    """A release's whole verification: the rebuild, the probe runs (base and candidate), the
    quantized copies, and the vocabulary scan."""
    return 4 * verify_timeout_s() + scan_timeout_s()


def visibility_timeout_s() -> int:
    """A task a dead worker took goes back to the queue after this long: longer than the
    longest task, so a task still running is never handed out twice."""
    return int(os.environ.get("ASSAY_BROKER_VISIBILITY_TIMEOUT", str(longest_task_s() + 600)))


def build_queue(ggml_build: str) -> str:
    """The queue of the verifiers that run the llama.cpp build `ggml_build` (a quant's rebuild
    must run on the build its recipe names: only those verifiers take it)."""
    import hashlib

    return f"{verify_queue()}.build.{hashlib.sha256(ggml_build.encode()).hexdigest()[:16]}"


def memory_needed_bytes(file_sizes: list[int]) -> int:
    """What a verifier must have to verify a release whose files (the candidate, its base) have
    these sizes: the largest loaded at once, with room for the context and the runtime."""
    return int(max(file_sizes or [0]) * 1.2) + 512 * 1024**2
