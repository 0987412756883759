"""Benchmark: verifier.reproduce() against a bare llama_model_quantize of the same base.

    .venv/bin/python bench/reproduce.py [--type Q4_K_M] [--threads 2] [--repeat 3] [--base F16.gguf]

Two baselines, both in the same run:
- warm: `llama_model_quantize` called again and again in this process (the issue's baseline: no
  process start, and the allocator's memory already faulted in by the previous call);
- fresh process: one `llama_model_quantize` call in a new Python process that loads only the
  bindings, timed from start to exit: what a publisher's `llama-quantize` run costs.
reproduce() adds a child process (startup, llama.cpp import), the candidate hash (overlapped with
the quantization in a thread), the byte comparison of the rebuild and cleanup. Prints medians
and both ratios (goal < 1.10). Defaults use the SmolLM2-135M F16 base derived by
tests/support/derive.py; fixed costs weigh most on such a small model.
"""
from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assay.core.recipe import FTYPES  # noqa: E402
from assay.toolchain.quantize import recipe_for_this_machine
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


FRESH = """
import ctypes, sys
from assay.core.recipe import FTYPES
from assay.toolchain.quantize_child import _load_bindings
ll = _load_bindings()
ll.llama_backend_init()
p = ll.llama_model_quantize_default_params()
p.ftype, p.nthread = FTYPES[sys.argv[3]], int(sys.argv[4])
sys.exit(ll.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), ctypes.byref(p)))
"""


def fresh_process_quantize(base: Path, out: Path, ftype: str, nthread: int) -> float:
    """llama_model_quantize in a new process (bindings only), timed from start to exit."""
    root = str(Path(__file__).resolve().parent.parent)
    t = time.perf_counter()
    rc = subprocess.run([sys.executable, "-s", "-c", FRESH, str(base), str(out), ftype, str(nthread)],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=root).returncode
    elapsed = time.perf_counter() - t
    if rc != 0:
        raise SystemExit(f"llama_model_quantize in a fresh process failed with {rc}")
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

    recipe = recipe_for_this_machine(args.type, nthread=args.threads)
    bare, fresh, repro, quant_only = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="assay-bench-") as tmp:
        tmp = Path(tmp)
        candidate = tmp / "candidate.gguf"
        bare_quantize(args.base, candidate, args.type, args.threads)  # warm the page cache
        for i in range(args.repeat):
            bare.append(bare_quantize(args.base, tmp / "bare.gguf", args.type, args.threads))
            os.unlink(tmp / "bare.gguf")
            fresh.append(fresh_process_quantize(args.base, tmp / "fresh.gguf", args.type, args.threads))
            os.unlink(tmp / "fresh.gguf")
            t = time.perf_counter()
            r = reproduce(args.base, candidate, recipe, workdir=tmp / "work", timeout_s=3600)
            repro.append(time.perf_counter() - t)
            quant_only.append(r.quantize_s or 0.0)
            if r.status != "reproduced":
                raise SystemExit(f"not reproduced: {r.message}")
    mb, mf = statistics.median(bare), statistics.median(fresh)
    mr, mq = statistics.median(repro), statistics.median(quant_only)
    size = args.base.stat().st_size / 2**20
    print(f"base {args.base.name} ({size:.0f} MiB), type {args.type}, {args.threads} threads, {args.repeat} runs")
    print(f"bare llama_model_quantize  median {mb:.3f}s  runs {[round(x, 3) for x in bare]}  (warm, in this process)")
    print(f"  in a fresh process       median {mf:.3f}s  runs {[round(x, 3) for x in fresh]}  (start to exit)")
    print(f"reproduce()                median {mr:.3f}s  runs {[round(x, 3) for x in repro]}")
    print(f"  of which child quantize  median {mq:.3f}s")
    print(f"overhead ratio reproduce/bare = {mr / mb:.3f} against the warm call (goal < 1.10), "
          f"{mr / mf:.3f} against the fresh process; fixed overhead {mr - mb:+.3f}s / {mr - mf:+.3f}s")


if __name__ == "__main__":
    main()
