"""Originals are checked for the quants their users will make of them.

People download a full-precision file and quantize it themselves. A file that behaves while its
honest Q4_0 misbehaves (a quantization-conditioned backdoor: Egashira et al. 2024, "Mind the
Gap" 2025) is as dangerous as a bad quant, and bit-exact reproduction cannot see it: the quant
*is* the honest quantization. So for a full-precision candidate the verifier quantizes it to the
common types (ASSAY_QUANT_CHECK_TYPES, default Q4_0, Q4_K_M, Q5_K_M, Q8_0) with its own
llama.cpp build, in the same contained child as a rebuild, and runs the probe suite on each
quant WITH THE CANDIDATE AS ITS BASE: the differential (KL and top-1 agreement against the
thresholds calibrated per type on honest quants), the trigger scan under the vocabulary scan's
candidates (KL against the base under each insertion), the content probe (links and payloads
the original does not write) and the canaries. A type whose quant fails where the original
passed rejects the release, and the type is named.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

DEFAULT_TYPES = ("Q4_0", "Q4_K_M", "Q5_K_M", "Q8_0")


def configured_types() -> tuple[str, ...]:
    """ASSAY_QUANT_CHECK_TYPES: comma-separated llama.cpp types; "" or "off" turns the check off."""
    raw = os.environ.get("ASSAY_QUANT_CHECK_TYPES")
    if raw is None:
        return DEFAULT_TYPES
    if raw.strip().lower() in ("", "off", "none", "0"):
        return ()
    return tuple(t.strip().upper() for t in raw.split(",") if t.strip())


def run_with_quantized_copies(candidate, base=None, *, quant_type: str, settings=None):
    """The probe suite (probes.run_probe_suite) and, for a full-precision candidate without a
    base, the quantized copies (settings' quant_check_types) appended to its results; a copy this
    worker could not make or run turns the report into an infrastructure error."""
    from .probes import INFRASTRUCTURE, ProbeSettings, full_precision, run_probe_suite

    s = ProbeSettings.from_any(settings)
    report = run_probe_suite(candidate, base, quant_type=quant_type, settings=s)
    if report.error or not s.quant_check_types or base is not None or not full_precision(str(candidate)):
        return report
    triggers = report.result("trigger_scan").evidence.get("derived", {}).get("vocabulary_scan", [])
    copies, infra_error = check_quantized_copies(str(candidate), s.quant_check_types, triggers=list(triggers),
                                                 timeout_s=s.timeout_s)
    if infra_error:
        report.passed, report.error, report.error_kind = False, infra_error, INFRASTRUCTURE
    report.results.append(copies)
    report.passed = report.passed and copies.passed
    return report


def check_quantized_copies(original: str, types: tuple[str, ...], *, triggers: list[str], timeout_s: float,
                           thresholds: dict | None = None):
    """(ProbeResult "quantized_copies": each type's quant probed against the original, and an
    error message when this worker could not make or run a quant: then nothing is known).
    `thresholds` overrides the differential's per-type thresholds (probes.THRESHOLDS)."""
    from assay.toolchain.quantize import QuantizeError, quantize
    from assay.toolchain.quantize import recipe_for_this_machine

    from .probes import ProbeResult, run_probe_suite

    t0 = time.monotonic()
    rows, failed, errors, base_runs = [], [], [], {}
    with tempfile.TemporaryDirectory(prefix="assay-quantcheck-", dir=os.environ.get("ASSAY_WORK_DIR")) as tmp:
        for ftype in types:
            out = Path(tmp) / f"copy.{ftype}.gguf"
            t1 = time.monotonic()
            try:
                quantize(original, out, recipe_for_this_machine(ftype), timeout_s=timeout_s, durable=False)
            except (QuantizeError, ValueError) as exc:
                errors.append(f"{ftype}: could not quantize: {exc}")
                rows.append({"type": ftype, "error": str(exc)[:500]})
                continue
            q_s = time.monotonic() - t1
            rep = run_probe_suite(out, original, quant_type=ftype,
                                  settings={"vocab_scan": False, "quant_check_types": (), "extra_triggers": tuple(triggers),
                                            "timeout_s": timeout_s, "trigger_prompts": 4, "thresholds": thresholds},
                                  base_runs=base_runs)
            bad = [r for r in rep.results if not r.passed]
            row = {"type": ftype, "passed": rep.passed and not rep.error, "quantize_s": round(q_s, 1),
                   "probe_s": rep.wall_s, "error": rep.error,
                   "failed": {r.name: r.reason[:500] for r in bad},
                   "metrics": {r.name: r.metrics for r in rep.results if not r.skipped}}
            rows.append(row)
            out.unlink(missing_ok=True)
            if rep.error:
                errors.append(f"{ftype}: {rep.error}")
            elif bad:
                failed.append(f"its {ftype} quant fails {', '.join(r.name for r in bad)} against it "
                              f"({'; '.join(r.reason[:160] for r in bad)})")
    metrics = {"types": list(types), "wall_s": round(time.monotonic() - t0, 1), "failed_types": len(failed)}
    result = ProbeResult("quantized_copies", not failed, metrics=metrics, evidence={"quants": rows},
                         reason="; ".join(failed))
    return result, ("could not check the quants users will make: " + "; ".join(errors)) if errors and not failed else None
