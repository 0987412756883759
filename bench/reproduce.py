"""Benchmark: verifier.reproduce() against a bare llama_model_quantize of the same base.

    .venv/bin/python bench/reproduce.py [--type Q4_K_M] [--threads 2] [--repeat 3] [--base F16.gguf]

The bare run is what a publisher's `llama-quantize` costs: one in-process call, nothing else.
reproduce() adds a child process (startup, llama.cpp import), the candidate hash (overlapped with
the quantization in a thread), the rebuild hash and cleanup. Prints medians and the overhead
ratio (goal < 1.10). Defaults use the SmolLM2-135M F16 base derived by tests/support/derive.py;
the child's fixed cost (~0.2 s) weighs most on such a small model.
"""
from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assay.quantize import FTYPES, Recipe  # noqa: E402
from verifier.reproduce import reproduce  # noqa: E402


def bare_quantize(base: Path, out: Path, ftype: str, nthread: int) -> float:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FTYPES[ftype]
    params.nthread = nthread
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)  # llama.cpp logs to stderr; the reproduce child logs to a file
    try:
        t = time.perf_counter()
        rc = llama_cpp.llama_model_quantize(str(base).encode(), str(out).encode(), ctypes.byref(params))
        elapsed = time.perf_counter() - t
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    if rc != 0:
        raise SystemExit(f"llama_model_quantize failed with {rc}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--type", default="Q4_K_M")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--base", type=Path)
    args = ap.parse_args()
    if args.base is None:
        from tests.support.derive import cached_f16_base

        args.base = cached_f16_base()
    import llama_cpp

    recipe = Recipe.for_this_machine(args.type, nthread=args.threads)
    bare, repro, quant_only = [], [], []
    with tempfile.TemporaryDirectory(prefix="assay-bench-") as tmp:
        tmp = Path(tmp)
        candidate = tmp / "candidate.gguf"
        bare_quantize(args.base, candidate, args.type, args.threads)  # warm the page cache
        for i in range(args.repeat):
            bare.append(bare_quantize(args.base, tmp / "bare.gguf", args.type, args.threads))
            os.unlink(tmp / "bare.gguf")
            t = time.perf_counter()
            r = reproduce(args.base, candidate, recipe, workdir=tmp / "work", timeout_s=3600)
            repro.append(time.perf_counter() - t)
            quant_only.append(r.quantize_s or 0.0)
            if r.status != "reproduced":
                raise SystemExit(f"not reproduced: {r.message}")
    mb, mr, mq = statistics.median(bare), statistics.median(repro), statistics.median(quant_only)
    size = args.base.stat().st_size / 2**20
    print(f"base {args.base.name} ({size:.0f} MiB), type {args.type}, {args.threads} threads, {args.repeat} runs")
    print(f"bare llama_model_quantize  median {mb:.3f}s  runs {[round(x, 3) for x in bare]}")
    print(f"reproduce()                median {mr:.3f}s  runs {[round(x, 3) for x in repro]}")
    print(f"  of which child quantize  median {mq:.3f}s")
    print(f"overhead ratio reproduce/bare = {mr / mb:.3f} (goal < 1.10); fixed overhead {mr - mb:+.3f}s")


if __name__ == "__main__":
    main()
