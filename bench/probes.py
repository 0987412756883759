"""Runner overhead and probe-suite wall time on the real SmolLM2 model.

    .venv/bin/python -m bench.probes [--tokens 64] [--rounds 3] [--no-suite] [--calibrate Q8_0,Q4_K_M,...]

1. tokens/s of the runner (sandboxed child, greedy, full-softmax top-k per position) vs a bare
   llama-cpp-python `create_completion` (temperature 0) on the same model, prompt, threads and
   context, each in a fresh process, in rounds (which side goes first alternates), both timed
   by the wall clock over prompt + generation; prints the medians and the median of the rounds'
   ratios (goal >= 0.95; each round's pair ran back to back, so drift in the machine's speed
   cancels). The bare side evaluates the whole prompt, as the runner does for every item.
2. the wall time of the full probe suite (honest Q8_0 requant vs its F16 base).
3. --calibrate: differential metrics of honest requants of each type (for THRESHOLDS).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PROMPT = "Once upon a time, in a small village by the sea, there lived"


BARE = """
import json, os, sys, time
import llama_cpp
import llama_cpp.llama_cpp as low
model, n_ctx, n_batch, n_threads, ngl, extra, tokens, prompt = sys.argv[1:9]
if extra == "0":
    default = low.llama_model_default_params
    def params():
        p = default(); p.use_extra_bufts = False; return p
    low.llama_model_default_params = params
llm = llama_cpp.Llama(model_path=model, n_ctx=int(n_ctx), n_batch=int(n_batch), n_threads=int(n_threads),
                      n_threads_batch=int(n_threads), n_gpu_layers=int(ngl), seed=0, verbose=False)
llm.create_completion(prompt, max_tokens=1, temperature=0.0, top_k=1)  # warm-up, as the runner's first item
llm.reset()  # else create_completion reuses the cached prompt and times generation alone
t = time.perf_counter()
out = llm.create_completion(prompt, max_tokens=int(tokens), temperature=0.0, top_k=1)
wall = time.perf_counter() - t
print(json.dumps({"n_gen": out["usage"]["completion_tokens"], "n_prompt": out["usage"]["prompt_tokens"], "wall_s": wall}))
"""


def bare_run(model: str, plan, tokens: int) -> dict:
    """A bare llama-cpp-python `create_completion` (greedy) in a fresh process of its own, like the
    runner's child, so neither side inherits the other's threads; timed by the wall clock around
    the call (prompt + generation), as the runner's prompt_s + gen_s are."""
    env = {**os.environ, "OMP_WAIT_POLICY": "ACTIVE" if plan.busy_wait else "PASSIVE"}
    args = [model, plan.n_ctx, plan.n_batch, plan.n_threads, plan.n_gpu_layers, int(plan.use_extra_bufts), tokens, PROMPT]
    out = subprocess.run([sys.executable, "-c", BARE, *map(str, args)], capture_output=True, text=True, env=env, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return {"n_gen": r["n_gen"], "seconds": r["wall_s"], "tps": r["n_gen"] / r["wall_s"]}


def runner_run(model: str, plan, tokens: int) -> dict:
    """The runner (sandboxed child, greedy, full-softmax top-10 per position): its own timing of
    the same prompt and generation, without the model load and after one warm-up item (a probe
    suite runs ~100 items per load)."""
    from runner import run_prompts

    b = run_prompts(model, [PROMPT, PROMPT], max_tokens=tokens, plan=plan, top_k=10)
    if b.status != "ok":
        raise SystemExit(f"runner {b.status}: {b.error}\n{b.stderr_tail}")
    r = b.results[1]  # the first item warms up, as the bare side's one-token completion does
    seconds = r.prompt_s + r.gen_s
    return {"n_gen": len(r.tokens), "seconds": seconds, "tps": len(r.tokens) / seconds}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-suite", action="store_true")
    ap.add_argument("--calibrate", default="")
    a = ap.parse_args(argv)

    from runner import detect_hardware, make_plan, model_facts
    from tests.support.models import smollm2_gguf

    model = str(smollm2_gguf())
    prof = detect_hardware()
    plan = make_plan(prof, model_facts(model), n_ctx=512)
    print(f"model {Path(model).name}; plan: {plan.n_threads} threads, n_ctx {plan.n_ctx}, "
          f"busy_wait {plan.busy_wait}, extra_bufts {plan.use_extra_bufts}; CPU {prof.cpu_model}")
    bare, run = [], []
    for i in range(a.rounds):
        sides = [(run, runner_run), (bare, bare_run)]
        for results, side in sides if i % 2 == 0 else sides[::-1]:  # alternate which goes first
            results.append(side(model, plan, a.tokens))
        print(f"round {i + 1}: runner {run[-1]['n_gen']} tokens in {run[-1]['seconds']:.3f} s = {run[-1]['tps']:.1f} tok/s | "
              f"bare {bare[-1]['n_gen']} tokens in {bare[-1]['seconds']:.3f} s = {bare[-1]['tps']:.1f} tok/s | "
              f"ratio {run[-1]['tps'] / bare[-1]['tps']:.3f}")
    rt, bt = statistics.median(r["tps"] for r in run), statistics.median(b["tps"] for b in bare)
    paired = statistics.median(r["tps"] / b["tps"] for r, b in zip(run, bare))
    print(f"tokens/s, prompt + generation (median of {a.rounds}): runner {rt:.1f}, bare {bt:.1f}; "
          f"ratio runner/bare, median of the rounds' ratios: {paired:.3f} (goal >= 0.95)")

    if not a.no_suite or a.calibrate:
        from tests.support.backdoor import f16_base, honest_quant, make_backdoor_fixture
        from verifier.probes import run_probe_suite

        base = f16_base()
    if not a.no_suite:
        t0 = time.monotonic()
        rep = run_probe_suite(honest_quant("Q8_0"), base, quant_type="Q8_0")
        print(f"probe suite (honest Q8_0 vs F16 base): passed={rep.passed} wall {time.monotonic() - t0:.1f} s "
              f"(base run {rep.runner['base']['elapsed_s']} s, candidate run {rep.runner['candidate']['elapsed_s']} s)")
        t0 = time.monotonic()
        rep = run_probe_suite(make_backdoor_fixture(), base, quant_type="Q8_0")
        print(f"probe suite (backdoor fixture): passed={rep.passed} wall {time.monotonic() - t0:.1f} s; "
              + "; ".join(f"{r.name}: {'pass' if r.passed else 'FAIL'}" for r in rep.results))
    for qt in filter(None, a.calibrate.split(",")):
        rep = run_probe_suite(honest_quant(qt), base, quant_type=qt)
        d = rep.result("differential").metrics
        ts = rep.result("trigger_scan").metrics
        print(f"calibrate {qt}: mean_kl {d.get('mean_kl')} max_kl {d.get('max_kl')} top1 {d.get('top1_agreement')} "
              f"| trigger control_max_kl {ts.get('control_max_kl')} flagged {ts.get('flagged')} | passed {rep.passed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
