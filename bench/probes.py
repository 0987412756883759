"""Runner overhead and probe-suite wall time on the real SmolLM2 model.

    .venv/bin/python -m bench.probes [--tokens 64] [--rounds 3] [--no-suite] [--calibrate Q8_0,Q4_K_M,...]

1. tokens/s of the runner (sandboxed child, greedy, full-softmax top-k per position) vs a bare
   llama-cpp-python `create_completion` (temperature 0) on the same model, prompt, threads and
   context, in alternating rounds; prints the medians and the ratio (goal >= 0.95).
2. the wall time of the full probe suite (honest Q8_0 requant vs its F16 base).
3. --calibrate: differential metrics of honest requants of each type (for THRESHOLDS).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PROMPT = "Once upon a time, in a small village by the sea, there lived"


def bare_tps(model: str, plan, tokens: int) -> tuple[float, float]:
    """(prompt tok/s, generation tok/s) of a bare Llama() in this process, from llama.cpp's perf counters."""
    import llama_cpp
    import llama_cpp.llama_cpp as low

    if not plan.use_extra_bufts and not getattr(low, "_assay_bench_patched", False):
        default = low.llama_model_default_params

        def params():
            p = default()
            p.use_extra_bufts = False
            return p

        low.llama_model_default_params = params
        low._assay_bench_patched = True
    llm = llama_cpp.Llama(model_path=model, n_ctx=plan.n_ctx, n_batch=plan.n_batch, n_threads=plan.n_threads,
                          n_threads_batch=plan.n_threads, n_gpu_layers=plan.n_gpu_layers, seed=0, verbose=False)
    llama_cpp.llama_perf_context_reset(llm._ctx.ctx)
    llm.create_completion(PROMPT, max_tokens=tokens, temperature=0.0, top_k=1)
    perf = llama_cpp.llama_perf_context(llm._ctx.ctx)
    p = perf.n_p_eval / (perf.t_p_eval_ms / 1000) if perf.t_p_eval_ms else 0.0
    g = perf.n_eval / (perf.t_eval_ms / 1000) if perf.t_eval_ms else 0.0
    llm.close()
    return p, g


def runner_tps(model: str, plan, tokens: int) -> tuple[float, float]:
    from runner import run_prompts

    b = run_prompts(model, [PROMPT], max_tokens=tokens, plan=plan, top_k=10)
    if b.status != "ok":
        raise SystemExit(f"runner {b.status}: {b.error}\n{b.stderr_tail}")
    return b.prompt_tokens_per_s, b.gen_tokens_per_s


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
    # the bare call gets the same OpenMP wait policy as the runner child
    os.environ.setdefault("OMP_WAIT_POLICY", "ACTIVE" if plan.busy_wait else "PASSIVE")
    print(f"model {Path(model).name}; plan: {plan.n_threads} threads, n_ctx {plan.n_ctx}, "
          f"busy_wait {plan.busy_wait}, extra_bufts {plan.use_extra_bufts}; CPU {prof.cpu_model}")
    bare, run = [], []
    for i in range(a.rounds):
        run.append(runner_tps(model, plan, a.tokens))
        bare.append(bare_tps(model, plan, a.tokens))
        print(f"round {i + 1}: runner prompt {run[-1][0]:.1f} gen {run[-1][1]:.1f} tok/s | "
              f"bare prompt {bare[-1][0]:.1f} gen {bare[-1][1]:.1f} tok/s")
    rg, bg = statistics.median(r[1] for r in run), statistics.median(b[1] for b in bare)
    print(f"generation tokens/s (median of {a.rounds}): runner {rg:.1f}, bare {bg:.1f}, ratio {rg / bg:.3f} (goal >= 0.95)")

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
