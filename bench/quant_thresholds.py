"""The differential's per-type thresholds (verifier/probes.THRESHOLDS) against honest quants of
two model families: each family's full-precision file is quantized by this machine's llama.cpp to
the quant check's types and probed against it, exactly as the verifier's quant check does
(verifier/quant_check.check_quantized_copies). Printed per family and type: the mean KL and top-1
agreement measured, the threshold, and the margin (threshold / measured KL; measured / minimum
top-1). A margin under 1 is an honest quant the verifier would reject.

    python bench/quant_thresholds.py [--families smollm2,gemma3] [--types Q4_0,Q4_K_M,Q5_K_M,Q8_0]

Gemma 3 270M is published only as Q4_K_M; its "full-precision file" here is that file
dequantized to F16 (tests/support/derive.cached_f16_base), so its quants are honest quants of
an honest F16, which is what the thresholds are for.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def full_precision(family: str) -> Path:
    from tests.support.derive import cached_f16_base

    if family == "smollm2":
        return cached_f16_base()
    from tests.support.models import gemma3_270m_gguf

    return cached_f16_base(gemma3_270m_gguf())


def main(argv=None) -> int:
    from verifier.probes import THRESHOLDS
    from verifier.quant_check import DEFAULT_TYPES, check_quantized_copies

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--families", default="smollm2,gemma3")
    ap.add_argument("--types", default=",".join(DEFAULT_TYPES))
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    rows = []
    for fam in a.families.split(","):
        result, infra = check_quantized_copies(str(full_precision(fam)), tuple(a.types.split(",")), triggers=[],
                                               timeout_s=1800)
        if infra:
            print(f"{fam}: {infra}", flush=True)
        for q in result.evidence["quants"]:
            diff = (q.get("metrics") or {}).get("differential") or {}
            t = THRESHOLDS.get(q["type"], {})
            kl, top1 = diff.get("mean_kl"), diff.get("top1_agreement")
            row = {"family": fam, "type": q["type"], "passed": q.get("passed"), "mean_kl": kl, "top1": top1,
                   "max_mean_kl": t.get("max_mean_kl"), "min_top1": t.get("min_top1"),
                   "kl_margin": round(t["max_mean_kl"] / kl, 2) if kl and t else None,
                   "top1_margin": round(top1 / t["min_top1"], 2) if top1 and t else None,
                   "failed": q.get("failed"), "seconds": q.get("probe_s")}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("| family | type | mean KL (max) | top-1 (min) | margins KL / top-1 | passes |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['family']} | {r['type']} | {r['mean_kl']} ({r['max_mean_kl']}) | {r['top1']} ({r['min_top1']}) "
              f"| {r['kl_margin']} / {r['top1_margin']} | {'yes' if r['passed'] else 'NO'} |")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
