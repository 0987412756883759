"""The check steps: adapters from a Release to the plain check functions and back to a result.

Each returns a StepOutcome; the pipeline stores it. The checks themselves live in
verifier.static_checks, verifier.reproduce and verifier.probes, and know nothing of Django.

FAILED is a finding about the release (signed into a FAILED verdict, final); ERROR means this
worker could not judge it (the release becomes `error` and can be verified again). The rule for
the probes step, whose runner can fail for either reason:
  - the candidate run crashed (segfault, abort, llama.cpp refused to load the file) while the
    reference ran on the same worker (the base run, or without a base llama.cpp's self-check):
    FAILED, with the runner's error, exit status and stderr tail as evidence;
  - anything else that kept the probes from running is ERROR: the base run failing, a timeout
    (ASSAY_VERIFY_TIMEOUT_S per run), a refusal by the runner's plan (the model does not fit in
    this worker's memory), llama_cpp missing or failing to import, the child killed by SIGKILL
    or out of memory (see verifier.probes.classify_runner_failure).
The reproduce step is ERROR when it cannot rebuild here (other llama.cpp build, failed or timed
out quantization) or when the base blob on disk no longer matches its digest.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import tempfile
from dataclasses import dataclass, field

from django.conf import settings

from assay.digest import digest_file
from assay.errors import FormatError
from registry.blobstore import get_blob_store
from registry.models import Release, VerificationStep


UNREBUILDABLE_IMATRIX = ("not rebuilt: the recipe uses an importance matrix, which no Assay verifier rebuilds yet; "
                         "the release can be verified only at level unreproduced")


def rebuild_unsupported(step) -> bool:
    """Did the reproduce step skip a quant that no verifier can rebuild (rather than fail)?"""
    return step is not None and step.status == VerificationStep.SKIPPED and (step.evidence or {}).get("rebuild") == "unsupported"


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


def redact(obj, replacements: dict[str, str]):
    """`obj` with every occurrence of a local path (key) in its strings replaced (by a digest or
    a placeholder): evidence goes into the signed verdict, the worker's file layout does not."""
    pairs = sorted(((str(k), v) for k, v in replacements.items() if str(k)), key=lambda kv: -len(kv[0]))
    if isinstance(obj, str):
        for old, new in pairs:
            obj = obj.replace(old, new)
        return obj
    if isinstance(obj, dict):
        return {k: redact(v, replacements) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact(v, replacements) for v in obj]
    return obj


def _paths(release: Release) -> dict[str, str]:
    store = get_blob_store()
    out = {str(store.local_path(release.blob_id)): release.blob_id}
    if release.base_digest:
        out[str(store.local_path(release.base_digest))] = release.base_digest
    return out


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
    if recipe.imatrix is not None:  # no verifier of this build rebuilds these: the quant is verified as unreproduced
        return StepOutcome(VerificationStep.SKIPPED, UNREBUILDABLE_IMATRIX, {"recipe": release.recipe, "rebuild": "unsupported"})
    base_path = store.local_path(release.base_digest)
    # The provenance will assert this digest for the base: check the bytes we build from, not the
    # file name they are stored under (streaming hash, constant memory).
    try:
        on_disk = digest_file(base_path)
    except OSError as exc:
        return StepOutcome(VerificationStep.ERROR, f"the base blob {release.base_digest} cannot be read: {exc.strerror or exc}",
                           {"base_digest": release.base_digest})
    if on_disk != release.base_digest:
        return StepOutcome(VerificationStep.ERROR, f"the stored base blob does not match its digest {release.base_digest} "
                           f"(it hashes to {on_disk}): the blob store is damaged; nothing was rebuilt",
                           {"base_digest": release.base_digest, "base_digest_on_disk": on_disk})
    with tempfile.TemporaryDirectory(prefix="assay-reproduce-") as workdir:
        result = reproduce(
            base_path, store.local_path(release.blob_id), recipe,
            workdir=workdir, timeout_s=settings.ASSAY_VERIFY_TIMEOUT_S, base_digest=release.base_digest,
        )
        evidence = redact(jsonable(result), {workdir: "<workdir>"})
        result.message = redact(result.message, {workdir: "<workdir>"})
    if result.status == "reproduced":
        return StepOutcome(VerificationStep.PASSED, f"bit-exact: rebuilt {recipe.ftype} from the base gives {result.expected_digest}", evidence)
    if result.status == "not_reproduced":
        diff_summary = result.diff.summary() if result.diff is not None else ""
        return StepOutcome(VerificationStep.FAILED, f"not reproduced: rebuilding gives {result.expected_digest}, the release is {result.candidate_digest}. {diff_summary[:1500]}", evidence)
    if result.status == "cannot_reproduce_here":
        return StepOutcome(VerificationStep.ERROR, f"cannot reproduce here: {getattr(result, 'message', '') or 'the recipe names a llama.cpp build this worker does not have'}", evidence)
    return StepOutcome(VerificationStep.ERROR, f"reproduction failed: {getattr(result, 'message', '')}", evidence)


def probes_step(release: Release) -> StepOutcome:
    from .probes import MODEL, run_probe_suite

    store = get_blob_store()
    base_path = store.local_path(release.base_digest) if release.base_digest else None
    report = run_probe_suite(store.local_path(release.blob_id), base_path, quant_type=release.quantization,
                             settings={"timeout_s": settings.ASSAY_VERIFY_TIMEOUT_S})
    evidence = jsonable(report)  # paths become digests in run()
    if report.error:
        if report.error_kind == MODEL:
            return StepOutcome(VerificationStep.FAILED, f"llama.cpp cannot run the candidate ({report.error}); "
                               f"the reference ran on the same worker", evidence)
        return StepOutcome(VerificationStep.ERROR, f"probes could not run on this worker: {report.error}", evidence)
    failed = [r for r in report.results if not r.passed]
    if failed:
        return StepOutcome(VerificationStep.FAILED, "probes failed: " + "; ".join(f"{r.name}: {r.reason}" for r in failed), evidence)
    ran = [r.name for r in report.results if not r.skipped]
    return StepOutcome(VerificationStep.PASSED, f"{len(ran)} probes passed ({', '.join(ran)}) in {report.wall_s:.0f}s", evidence)


@functools.lru_cache(maxsize=1)
def worker_profile() -> dict:
    """Where a step ran: this worker's hardware and llama.cpp build, recorded with every step's
    evidence (and so in the signed verdict), whether or not the step ran a model."""
    from runner.hardware import detect_hardware

    hw = detect_hardware().to_dict()
    keep = ("cpu_model", "cpu_flags", "usable_cores", "physical_cores", "ram_total_bytes", "gpus", "gpu_offload_supported",
            "llama_cpp_python_version", "llama_system_info", "llama_info_error", "machine", "os", "python")
    return {k: hw.get(k) for k in keep}


STEPS = {"static": static_step, "reproduce": reproduce_step, "probes": probes_step}


def run(name: str, release: Release) -> StepOutcome:
    outcome = STEPS[name](release)
    paths = _paths(release)
    return StepOutcome(outcome.status, redact(outcome.summary, paths), redact(outcome.evidence, paths))
