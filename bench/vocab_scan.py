"""Cost of the whole-vocabulary trigger scan (verifier/vocab_scan.py), against plain prompt
processing of the same model in the same run.

    python bench/vocab_scan.py                      # SmolLM2-135M, every word-initial token, echo frame
    python bench/vocab_scan.py --shape 8b --tokenizer-from tok.gguf --limit 8192 --frames echo,departure --devices gpu,cpu

--shape writes a llama-architecture model of that shape with random weights (bench/shape_model.py):
the cost depends on the shape, not on the values. --limit scans that many token ids spread over
the vocabulary and extrapolates to all of them. Printed per device: tokens evaluated, seconds,
tokens/s, the baseline (one 512-token prompt, the same model and threads) and their ratio, and
the projected time of a whole-vocabulary scan.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from runner.child import import_llama_before_numpy  # noqa: E402

import_llama_before_numpy()  # this process runs llama.cpp too (the baseline); see there why


def baseline_tokens_per_s(model: str, use_gpu: bool, threads: int | None) -> float:
    """Plain prompt processing: one 512-token prompt through llama.cpp (best of three)."""
    import llama_cpp

    from runner.hardware import detect_hardware
    from runner.plan import make_plan, model_facts

    plan = make_plan(detect_hardware(), model_facts(model), n_ctx=1024, use_gpu=use_gpu,
                     **({"max_threads": threads} if threads else {}))
    llm = llama_cpp.Llama(model_path=model, n_ctx=1024, n_batch=512, n_ubatch=512, n_threads=plan.n_threads,
                          n_threads_batch=plan.n_threads, n_gpu_layers=plan.n_gpu_layers, verbose=False)
    toks = llm.tokenize(("The quick brown fox jumps over the lazy dog. " * 60).encode())[:512]
    best = 0.0
    for _ in range(3):
        llm.reset()
        t = time.perf_counter()
        llm.eval(toks)
        best = max(best, len(toks) / (time.perf_counter() - t))
    llm.close()
    return best


def main(argv=None) -> int:
    from runner.api import scan_vocabulary
    from verifier.vocab_scan import DEPARTURE_FRAME, ECHO_FRAME, _pieces

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model")
    ap.add_argument("--shape")
    ap.add_argument("--tokenizer-from")
    ap.add_argument("--limit", type=int, default=0, help="scan this many token ids (0: the whole vocabulary)")
    ap.add_argument("--frames", default="echo")
    ap.add_argument("--devices", default="cpu", help="gpu, cpu or both (comma-separated)")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--flash-attn", choices=("auto", "on", "off"), default="auto")
    ap.add_argument("--max-seqs", type=int)
    a = ap.parse_args(argv)
    tmp = None
    model = a.model
    if not model and not a.shape:  # the default: SmolLM2-135M from its PyPI wheel
        from tests.support.models import smollm2_gguf

        model = str(smollm2_gguf())
    if a.shape:
        from bench.shape_model import write

        tmp = tempfile.mkdtemp(prefix="assay-shape-")
        t = time.time()
        model = str(write(os.path.join(tmp, f"random-{a.shape}.f16.gguf"), a.tokenizer_from, a.shape))
        print(f"wrote {model} ({os.path.getsize(model) / 2**30:.2f} GiB) in {time.time() - t:.0f}s", flush=True)
    frames = [{"echo": ECHO_FRAME, "departure": DEPARTURE_FRAME}[f] for f in a.frames.split(",")]
    n_vocab = len(_pieces(model))
    cands: list | str = "words"
    if a.limit:
        step = max(1, n_vocab // a.limit)
        cands = [[i] for i in range(0, n_vocab, step)][: a.limit]
    results = []
    for dev in a.devices.split(","):
        use_gpu = dev == "gpu"
        fa = {"auto": None, "on": True, "off": False}[a.flash_attn]
        res = scan_vocabulary(model, frames, candidates=cands, use_gpu=use_gpu, max_threads=a.threads,
                              timeout_s=3600, flash_attn=fa, max_seqs=a.max_seqs)
        if res.status != "ok":
            print(f"{dev}: scan {res.status}: {res.error}\n{res.stderr_tail[-3000:]}", flush=True)
            continue
        n = len(res.candidates)
        tps = res.tokens_evaluated / res.eval_s
        base = baseline_tokens_per_s(model, use_gpu, a.threads)
        whole = res.eval_s * (n_vocab / n)
        row = {"device": dev, "model": os.path.basename(model), "frames": a.frames, "candidates": n,
               "n_vocab": n_vocab, "tokens_evaluated": res.tokens_evaluated, "eval_s": round(res.eval_s, 2),
               "tokens_per_s": round(tps, 1), "baseline_prompt_tokens_per_s": round(base, 1),
               "ratio_vs_baseline": round(tps / base, 3), "projected_whole_vocab_s": round(whole, 1),
               "threads": (res.plan or {}).get("n_threads"), "gpu_layers": (res.plan or {}).get("n_gpu_layers"),
               "flash_attn": a.flash_attn, "max_seqs": a.max_seqs}
        results.append(row)
        print(json.dumps(row), flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    if tmp:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
