"""The check steps: adapters from a Release to the plain check functions and back to a result.

Each returns a StepOutcome; the pipeline stores it. The checks themselves live in
verifier.static_checks, verifier.reproduce and verifier.probes, and know nothing of Django.
"""
from __future__ import annotations

import dataclasses
import math
import tempfile
from dataclasses import dataclass, field

from django.conf import settings

from assay.errors import FormatError
from registry.blobstore import get_blob_store
from registry.models import Release, VerificationStep


@dataclass
class StepOutcome:
    status: str
    summary: str
    evidence: dict = field(default_factory=dict)


def jsonable(obj):
    """Evidence as plain JSON that canonical JSON (RFC 8785) and PostgreSQL's jsonb both accept:
    non-finite floats and integers beyond 2^53 become strings."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    if isinstance(obj, int):
        return obj if abs(obj) <= 2**53 else str(obj)
    if hasattr(obj, "item") and hasattr(obj, "dtype"):  # numpy scalars
        return jsonable(obj.item())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        if hasattr(obj, "to_dict"):
            return jsonable(obj.to_dict())
        return {k: jsonable(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, bytes):
        return obj.hex()
    if isinstance(obj, (set, frozenset)):
        return sorted(jsonable(v) for v in obj)
    if hasattr(obj, "__fspath__"):
        return str(obj)
    return obj


def static_step(release: Release) -> StepOutcome:
    from .static_checks import run_static_checks

    report = run_static_checks(get_blob_store().local_path(release.blob_id), declared_quantization=release.quantization)
    errors = [f for f in report.findings if f.severity == "error"]
    evidence = {"findings": jsonable(report.findings), "summary": jsonable(getattr(report, "summary", {}))}
    if errors:
        return StepOutcome(VerificationStep.FAILED, "; ".join(f.message for f in errors[:5]), evidence)
    return StepOutcome(VerificationStep.PASSED, f"GGUF structure, tensors and chat template checked ({len(report.findings)} findings, none blocking)", evidence)


def reproduce_step(release: Release) -> StepOutcome:
    if not release.base_digest:
        return StepOutcome(VerificationStep.SKIPPED, "original release (no base): nothing to reproduce", {})
    from assay.quantize import Recipe

    from .reproduce import reproduce

    store = get_blob_store()
    try:
        recipe = Recipe.from_json(release.recipe)
    except FormatError as exc:
        return StepOutcome(VerificationStep.FAILED, f"the signed recipe cannot be used: {exc}", {"recipe": release.recipe})
    with tempfile.TemporaryDirectory(prefix="assay-reproduce-") as workdir:
        result = reproduce(
            store.local_path(release.base_digest), store.local_path(release.blob_id), recipe,
            workdir=workdir, timeout_s=settings.ASSAY_VERIFY_TIMEOUT_S, base_digest=release.base_digest,
        )
    evidence = jsonable(result)
    if result.status == "reproduced":
        return StepOutcome(VerificationStep.PASSED, f"bit-exact: rebuilt {recipe.ftype} from the base gives {result.expected_digest}", evidence)
    if result.status == "not_reproduced":
        diff_summary = result.diff.summary() if result.diff is not None else ""
        return StepOutcome(VerificationStep.FAILED, f"not reproduced: rebuilding gives {result.expected_digest}, the release is {result.candidate_digest}. {diff_summary[:1500]}", evidence)
    if result.status == "cannot_reproduce_here":
        return StepOutcome(VerificationStep.ERROR, f"cannot reproduce here: {getattr(result, 'message', '') or 'the recipe names a llama.cpp build this worker does not have'}", evidence)
    return StepOutcome(VerificationStep.ERROR, f"reproduction failed: {getattr(result, 'message', '')}", evidence)


def probes_step(release: Release) -> StepOutcome:
    from .probes import run_probe_suite

    store = get_blob_store()
    base_path = store.local_path(release.base_digest) if release.base_digest else None
    report = run_probe_suite(store.local_path(release.blob_id), base_path, quant_type=release.quantization)
    evidence = jsonable(report)
    failed = [r for r in report.results if not r.passed]
    if failed:
        return StepOutcome(VerificationStep.FAILED, "probes failed: " + "; ".join(f"{r.name}: {r.reason}" for r in failed), evidence)
    ran = [r.name for r in report.results if not r.skipped]
    return StepOutcome(VerificationStep.PASSED, f"{len(ran)} probes passed ({', '.join(ran)}) in {report.wall_s:.0f}s", evidence)


STEPS = {"static": static_step, "reproduce": reproduce_step, "probes": probes_step}


def run(name: str, release: Release) -> StepOutcome:
    return STEPS[name](release)
