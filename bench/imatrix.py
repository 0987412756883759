"""Importance matrices: is computing one deterministic, is quantizing with one bit-exact across
thread counts, and what does reproducing an imatrix quant cost against the bare tool.

    python bench/imatrix.py                                  # SmolLM2 F16; Q4_K_M, IQ4_XS, Q5_K_M, Q6_K
    python bench/imatrix.py --types Q4_0,IQ2_XXS,IQ3_S --threads 1,2 --json out.json
    python bench/imatrix.py --types all                      # every quantized type, with and without

1. llama-imatrix over the same calibration text several times (fixed threads, then other thread
   counts): the digests of the matrices it writes.
2. For each type, with and without the matrix, the quant at each thread count through
   assay.toolchain.quantize.quantize (with the matrix: llama.cpp's own llama-quantize): equal digests?
3. verifier.reproduce.reproduce() of the first imatrix quant against llama-quantize run bare on
   the same inputs in the same run: the ratio of wall times.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    from assay.core.digest import digest_file
    from assay.toolchain.llama_tools import tool_env
    from assay.core.recipe import FTYPES, IMATRIX_REQUIRED
    from assay.toolchain.quantize import recipe_for_this_machine
    from assay.toolchain.quantize import quantize, tool_command
    from tests.support.derive import cached_f16_base
    from tests.support.imatrix import calibration_file, make_imatrix
    from verifier.reproduce import reproduce

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="full-precision GGUF (default: the SmolLM2 F16 the tests derive)")
    ap.add_argument("--types", default="Q4_K_M,IQ4_XS,Q5_K_M,Q6_K", help="comma-separated, or 'all' (every quantized type)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--chunks", type=int, default=8)
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    base = Path(a.model) if a.model else cached_f16_base()
    threads = [int(t) for t in a.threads.split(",")]
    if a.types == "all":
        a.types = ",".join(["Q4_K_M"] + [t for t in FTYPES if t not in ("F32", "F16", "BF16", "Q4_K_M")])
    report: dict = {"model": base.name, "imatrix_runs": [], "quants": [], "reproduce": None}
    with tempfile.TemporaryDirectory(prefix="assay-bench-imatrix-") as tmp:
        tmp = Path(tmp)
        calib = calibration_file(tmp, repeat=12)
        runs = [(t, i) for t in threads for i in range(2 if t == threads[0] else 1)]
        for t, i in runs:
            t0 = time.monotonic()
            path = make_imatrix(base, tmp / f"m-{t}-{i}.gguf", threads=t, chunks=a.chunks, calibration=calib)
            row = {"threads": t, "run": i, "digest": digest_file(path), "seconds": round(time.monotonic() - t0, 1)}
            report["imatrix_runs"].append(row)
            print(json.dumps(row), flush=True)
        imatrix = tmp / "m.imatrix.gguf"
        (tmp / f"m-{threads[0]}-0.gguf").rename(imatrix)
        for ftype in a.types.split(","):
            for with_matrix in (False, True):
                if not with_matrix and ftype in IMATRIX_REQUIRED:
                    continue  # llama.cpp refuses these without a matrix
                digests, seconds = [], []
                for t in threads:
                    extra = {"imatrix": digest_file(imatrix), "imatrix_name": imatrix.name} if with_matrix else {}
                    recipe = recipe_for_this_machine(ftype, nthread=t, **extra)
                    out = tmp / f"{ftype}-{with_matrix}-{t}.gguf"
                    t0 = time.monotonic()
                    quantize(base, out, recipe, imatrix_path=imatrix if with_matrix else None, durable=False)
                    seconds.append(round(time.monotonic() - t0, 1))
                    digests.append(digest_file(out))
                    out.unlink()
                row = {"type": ftype, "imatrix": with_matrix, "threads": threads, "bit_exact": len(set(digests)) == 1,
                       "digests": digests, "seconds": seconds}
                report["quants"].append(row)
                print(json.dumps(row), flush=True)
        # reproduction overhead: reproduce() against the bare tool, same inputs, same run
        ftype = a.types.split(",")[0]
        recipe = recipe_for_this_machine(ftype, nthread=threads[-1], imatrix=digest_file(imatrix), imatrix_name=imatrix.name)
        candidate = tmp / "candidate.gguf"
        quantize(base, candidate, recipe, imatrix_path=imatrix, durable=False)
        t0 = time.monotonic()
        bare = subprocess.run(tool_command(recipe, base, tmp / "bare.gguf"), cwd=tmp, env=tool_env({"PATH": "/usr/bin:/bin"}),
                              capture_output=True)
        bare_s = time.monotonic() - t0
        assert bare.returncode == 0, bare.stderr[-500:]
        t0 = time.monotonic()
        result = reproduce(base, candidate, recipe, workdir=tmp / "work", imatrix_path=imatrix)
        repro_s = time.monotonic() - t0
        report["reproduce"] = {"type": ftype, "status": result.status, "reproduce_s": round(repro_s, 2),
                               "bare_tool_s": round(bare_s, 2), "ratio": round(repro_s / bare_s, 3)}
        print(json.dumps(report["reproduce"]), flush=True)
    print("\n| type | imatrix | threads | bit-exact | seconds |\n|---|---|---|---|---|")
    for r in report["quants"]:
        print(f"| {r['type']} | {'yes' if r['imatrix'] else 'no'} | {', '.join(map(str, r['threads']))} | "
              f"{'yes' if r['bit_exact'] else 'NO'} | {', '.join(map(str, r['seconds']))} |")
    same = len({r["digest"] for r in report["imatrix_runs"]}) == 1
    print(f"\nllama-imatrix over the same text: {'identical' if same else 'DIFFERENT'} matrices over "
          f"{len(report['imatrix_runs'])} runs ({', '.join(str(r['threads']) + ' threads' for r in report['imatrix_runs'])})")
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
