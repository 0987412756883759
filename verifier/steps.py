"""The check steps: adapters from a Job (and its fetched files) to the plain check functions and
back to a result. Each returns a StepOutcome; the pipeline signs it and reports it to the
registry. The checks themselves live in verifier.static_checks, verifier.reproduce and
verifier.probes. Nothing here touches a database: the verifier has none.

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
out quantization) or when the fetched base no longer matches its digest.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from assay.core.digest import digest_file
from assay.core.errors import FormatError
from assay.core.queueconfig import verify_timeout_s

from .job import Job, JobFiles

PASSED, FAILED, SKIPPED, ERROR = "passed", "failed", "skipped", "error"  # statements.CHECK_RESULTS


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


def static_step(job: Job, files: JobFiles) -> StepOutcome:
    from .static_checks import run_static_checks

    from assay.core.splits import SplitError

    wrong = _blake3_mismatches(job, files)
    if wrong:
        return StepOutcome(FAILED, f"the BLAKE3 digest the release statement declares does not match the bytes of {', '.join(wrong)}",
                           {"blake3_mismatch": wrong})
    for part in files.parts:  # the checks below judge llama-gguf-split's merge; users load the parts themselves
        refused = _part_refused(part)
        if refused:
            return StepOutcome(FAILED, f"part {part.name} of this split GGUF: {refused}", {"parts": [p.name for p in files.parts]})
    try:
        model = files.model()
    except SplitError as exc:
        return StepOutcome(FAILED, f"the {len(files.parts)} parts of this split GGUF do not make one model: {exc}",
                           {"parts": [p.name for p in files.parts]})
    report = run_static_checks(model, declared_quantization=job.quantization)
    errors = [f for f in report.findings if f.severity == "error"]
    evidence = {"findings": jsonable(report.findings), "summary": jsonable(getattr(report, "summary", {}))}
    if files.parts:
        evidence["parts"] = [p.name for p in files.parts]
    if job.statement is not None and job.statement.declares_blake3:
        evidence["blake3_checked"] = True  # attestation.sign_verdict then repeats the subject's BLAKE3 in the verdict
    if errors:
        return StepOutcome(FAILED, "; ".join(f.message for f in errors[:5]), evidence)
    return StepOutcome(PASSED, f"GGUF structure, tensors and chat template checked ({len(report.findings)} findings, none blocking)", evidence)


def _part_refused(part: Path) -> str | None:
    """Why one part of a split release is refused by the strict parser or the layout check, or None. The merge
    re-serializes the parts (a later key overwrites an earlier one, bytes outside the tensors are dropped), so what
    only the parts hold is judged here, on the files llama.cpp will load."""
    from assay.core.ggufparse import parse_gguf

    from .static_checks import check_layout

    try:
        info = parse_gguf(part)
    except FormatError as exc:
        return str(exc)
    errors = [f.message for f in check_layout(info, part) if f.severity == "error"]
    return errors[0] if errors else None


def _base_refused(files: JobFiles, recipe) -> str | None:
    """Why the base is refused by the strict parser or the layout check, or None. llama-quantize
    reads the base as llama.cpp reads the candidate, and a base need not be a verified release (no
    verifier may have read it yet). A recipe of another llama.cpp build is left to the rebuild,
    which says it cannot be reproduced here (another verifier may)."""
    from assay.toolchain.llama_tools import CannotReproduceHere
    from assay.toolchain.quantize import check_reproducible_here

    try:
        check_reproducible_here(recipe)
    except CannotReproduceHere:
        return None
    for part in (files.base, *files.base_parts):
        refused = _part_refused(part)
        if refused:
            which = f"part {part.name} of the split base" if files.base_parts else "the base"
            return f"{which} is refused by the strict GGUF parser: {refused}"
    return None


def _blake3_mismatches(job: Job, files: JobFiles) -> list[str]:
    """The files whose bytes differ from the BLAKE3 digest the signed statement declares for them
    (none declared: nothing to check). The SHA-256 of each was checked when it was fetched."""
    if job.statement is None or not job.statement.declares_blake3:
        return []
    paths = files.parts or (files.candidate,)
    return [name for (name, digest), path in zip(job.statement.parts, paths, strict=True)
            if digest_file(path, algorithm="blake3") != job.statement.blake3[digest]]


def reproduce_step(job: Job, files: JobFiles) -> StepOutcome:
    from assay.core.conversion import is_conversion

    if not job.base_digest and is_conversion(job.recipe):
        return reconvert_step(job, files)
    if not job.base_digest:
        return StepOutcome(SKIPPED, "no base declared: nothing to rebuild it from (a full-precision file is an original; "
                                    "a quantized one stays unreproduced)", {})
    from assay.core.recipe import Recipe

    from .reproduce import reproduce

    try:
        recipe = Recipe.from_json(job.recipe)
    except FormatError as exc:
        return StepOutcome(FAILED, f"the signed recipe cannot be used: {exc}", {"recipe": job.recipe})
    imatrix_path = files.inputs.get("imatrix")
    if recipe.imatrix is not None and imatrix_path is None:
        return StepOutcome(ERROR, f"the recipe names the importance matrix {recipe.imatrix}, which the registry did not "
                                  "hand over with the job; nothing was rebuilt", {"recipe": job.recipe})
    base_path = files.base
    # The provenance will assert this digest for the base (its first part, for a split base; the
    # others are checked against their digests when fetched): check the bytes we build from, not
    # the file name they are stored under (streaming hash, constant memory).
    try:
        on_disk = digest_file(base_path)
    except OSError as exc:
        return StepOutcome(ERROR, f"the base blob {job.base_digest} cannot be read: {exc.strerror or exc}",
                           {"base_digest": job.base_digest})
    if on_disk != job.base_digest:
        return StepOutcome(ERROR, f"the fetched base blob does not match its digest {job.base_digest} "
                           f"(it hashes to {on_disk}): the copy is damaged; nothing was rebuilt",
                           {"base_digest": job.base_digest, "base_digest_on_disk": on_disk})
    refused = _base_refused(files, recipe)
    if refused:
        return StepOutcome(FAILED, f"{refused}; nothing was rebuilt", {"base_digest": job.base_digest})
    from assay.core.splits import SplitError

    try:
        base_path = files.base_model()  # a split base: its parts merged (llama-quantize reads one file)
    except SplitError as exc:
        return StepOutcome(ERROR, f"the split base's parts do not merge: {exc}; nothing was rebuilt", {"base_digest": job.base_digest})
    if bool(files.parts) != (recipe.split is not None):
        return StepOutcome(FAILED, f"the release is {'a split GGUF of ' + str(len(files.parts)) + ' parts' if files.parts else 'one file'}, "
                                   f"but its signed recipe {'splits it' if recipe.split else 'does not split it'}", {"recipe": job.recipe})
    recomputed: dict = {}
    if recipe.imatrix_source is not None:
        outcome, recomputed = _recompute_imatrix(job, files, recipe, base_path)
        if outcome is not None:
            return outcome
    with tempfile.TemporaryDirectory(prefix="assay-reproduce-") as workdir:
        result = reproduce(
            base_path, files.candidate, recipe,
            workdir=workdir, timeout_s=verify_timeout_s(), base_digest=job.base_digest, imatrix_path=imatrix_path,
            candidate_parts=files.parts,
        )
        evidence = redact(jsonable(result), {workdir: "<workdir>"})
        result.message = redact(result.message, {workdir: "<workdir>"})
    if recomputed:
        evidence["imatrix_recomputed"] = recomputed
    if result.status == "reproduced":
        also = " (its importance matrix computed again from the calibration text, byte-identical)" if recomputed else ""
        return StepOutcome(PASSED, f"bit-exact: rebuilt {recipe.ftype} from the base gives {result.expected_digest}{also}", evidence)
    if result.status == "not_reproduced":
        diff_summary = result.diff.summary() if result.diff is not None else ""
        return StepOutcome(FAILED, f"not reproduced: rebuilding gives {result.expected_digest}, the release is {result.candidate_digest}. {diff_summary[:1500]}", evidence)
    if result.status == "cannot_reproduce_here":
        return StepOutcome(ERROR, f"cannot reproduce here: {getattr(result, 'message', '') or 'the recipe names a llama.cpp build this worker does not have'}", evidence)
    return StepOutcome(ERROR, f"reproduction failed: {getattr(result, 'message', '')}", evidence)


def reconvert_step(job: Job, files: JobFiles) -> StepOutcome:
    """A conversion from upstream files: convert them again with llama.cpp's converter and compare."""
    from assay.core.conversion import ConversionRecipe

    from .reconvert import reconvert

    try:
        recipe = ConversionRecipe.from_json(job.recipe)
    except FormatError as exc:
        return StepOutcome(FAILED, f"the signed conversion recipe cannot be used: {exc}", {"recipe": job.recipe})
    inputs = {f.name: files.inputs[f"upstream/{f.name}"] for f in recipe.files if f"upstream/{f.name}" in files.inputs}
    with tempfile.TemporaryDirectory(prefix="assay-reconvert-") as workdir:
        result = reconvert(files.candidate, recipe, inputs, workdir=workdir, timeout_s=verify_timeout_s())
        evidence = redact(jsonable(result), {workdir: "<workdir>"})
    n = len(recipe.files)
    if result.status == "reproduced":
        return StepOutcome(PASSED, f"bit-exact: converting the {n} upstream files again with llama.cpp's converter gives "
                                   f"{result.expected_digest} ({recipe.ftype})", evidence)
    if result.status == "not_reproduced":
        diff_summary = result.diff.summary() if result.diff is not None else ""
        return StepOutcome(FAILED, f"not reproduced: converting the {n} upstream files gives {result.expected_digest}, the release is "
                                   f"{result.candidate_digest}. {diff_summary[:1500]}", evidence)
    if result.status == "cannot_reproduce_here":
        return StepOutcome(ERROR, f"cannot convert again here: {result.message}", evidence)
    return StepOutcome(ERROR, f"the conversion failed: {result.message}", evidence)


def _recompute_imatrix(job: Job, files: JobFiles, recipe, base_path) -> tuple[StepOutcome | None, dict]:
    """Compute the recipe's importance matrix again from the base and the uploaded calibration
    text (llama-imatrix on the CPU: measured deterministic across runs and thread counts). A
    different matrix fails the step: the quant was not made from what the recipe says."""

    from assay.core.errors import AssayError
    from assay.toolchain.imatrix import compute_imatrix

    src = recipe.imatrix_source
    calibration = files.inputs.get("calibration")
    if calibration is None:
        return StepOutcome(ERROR, f"the recipe names the calibration text {src['calibration']}, which the registry did not "
                                  "hand over with the job; nothing was rebuilt", {"recipe": job.recipe}), {}
    if digest_file(calibration) != src["calibration"]:
        return StepOutcome(ERROR, f"the fetched calibration text does not match its digest {src['calibration']}; nothing was rebuilt",
                           {"recipe": job.recipe}), {}
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="assay-imatrix-") as workdir:
        out = Path(workdir) / "recomputed.imatrix.gguf"
        try:
            compute_imatrix(base_path, calibration, out, ctx=src["ctx"], chunks=src["chunks"], timeout_s=verify_timeout_s(),
                            calibration_name=src["calibration_name"])
        except AssayError as exc:
            return StepOutcome(ERROR, f"the importance matrix could not be computed again: {redact(str(exc), {workdir: '<workdir>'})}",
                               {"recipe": job.recipe}), {}
        got = digest_file(out)
    recomputed = {"digest": got, "calibration": src["calibration"], "seconds": round(time.monotonic() - t0, 2)}
    if got != recipe.imatrix:
        return StepOutcome(FAILED, f"not reproduced: the importance matrix {recipe.imatrix} is not what llama-imatrix computes "
                                   f"from the base and the calibration text {src['calibration']} ({src['chunks']} chunks of "
                                   f"{src['ctx']} tokens gives {got})", {"recipe": job.recipe, "imatrix_recomputed": recomputed}), recomputed
    return None, recomputed


def vocab_scan_enabled() -> bool:
    """ASSAY_VOCAB_SCAN=off turns the whole-vocabulary trigger search off on this verifier (the
    verdict's evidence then says so); anything else, or unset, keeps it on."""
    return os.environ.get("ASSAY_VOCAB_SCAN", "on").strip().lower() not in ("off", "0", "false", "no")


def probes_step(job: Job, files: JobFiles) -> StepOutcome:
    from .probes import MODEL
    from .quant_check import configured_types, run_with_quantized_copies

    from assay.core.splits import SplitError

    try:
        model, base_model = files.model(), files.base_model()
    except SplitError as exc:
        return StepOutcome(ERROR, f"probes could not run on this worker: a split GGUF did not merge: {exc}", {})
    started = time.monotonic()
    report = run_with_quantized_copies(model, base_model, quant_type=job.quantization,
                             settings={"timeout_s": verify_timeout_s(), "vocab_scan": vocab_scan_enabled(),
                                       "quant_check_types": configured_types()})
    evidence = jsonable(report)  # paths become digests in run()
    if report.error:
        if report.error_kind == MODEL:
            return StepOutcome(FAILED, f"llama.cpp cannot run the candidate ({report.error}); "
                               f"the reference ran on the same worker", evidence)
        return StepOutcome(ERROR, f"probes could not run on this worker: {report.error}", evidence)
    failed = [r for r in report.results if not r.passed]
    if failed:
        return StepOutcome(FAILED, "probes failed: " + "; ".join(f"{r.name}: {r.reason}" for r in failed), evidence)
    ran = [r.name for r in report.results if not r.skipped]
    # the whole step's time: the probe suite (report.wall_s) and the probes of the quantized copies
    return StepOutcome(PASSED, f"{len(ran)} probes passed ({', '.join(ran)}) in {time.monotonic() - started:.0f}s", evidence)


@functools.lru_cache(maxsize=1)
def worker_profile() -> dict:
    """Where a step ran: this worker's hardware and llama.cpp build, recorded with every step's
    evidence (and so in the signed verdict), whether or not the step ran a model."""
    from runner.hardware import detect_hardware

    from assay.toolchain import confine
    from assay.toolchain.quantize import build_id_only

    hw = detect_hardware().to_dict()
    keep = ("cpu_model", "cpu_flags", "usable_cores", "physical_cores", "ram_total_bytes", "gpus", "gpu_offload_supported",
            "llama_cpp_python_version", "llama_system_info", "llama_info_error", "machine", "os", "python")
    return {**{k: hw.get(k) for k in keep}, "ggml_build": build_id_only(), "confinement": confine.status()}


STEPS = {"static": static_step, "reproduce": reproduce_step, "probes": probes_step}  # keys: CHECK_STEPS, in order


def run(name: str, job: Job, files: JobFiles) -> StepOutcome:
    outcome = STEPS[name](job, files)
    paths = files.redactions(job)
    return StepOutcome(outcome.status, redact(outcome.summary, paths), redact(outcome.evidence, paths))
