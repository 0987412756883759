"""What the verifier signs with its own key: each step's result, then the verdict (and the
provenance when it rebuilt the file). The registry checks each against the key this verifier
registered before it stores or logs anything (registry/verification.py)."""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

from assay.core import dsse, keys, levels, statements
from assay.core.errors import FormatError, VerificationError
from assay.core.levels import Level
from assay.core.nul import visible_nul

from .job import Job
from .steps import StepOutcome

POLICY_URI = "urn:assay:policy:default:v1"


def sign_step(job: Job, name: str, outcome: StepOutcome, signer) -> dict:
    """The one place a step's summary and evidence are signed. Both quote what a publisher's file
    holds (metadata, a chat template, the model's output): each NUL there is written as "␀"
    (U+2400), which no Assay statement may hold and no registry database can store; the static
    check reports a NUL in the file's string metadata as a finding of its own."""
    payload = statements.build_step_result(
        subject_name=job.file_name, subject_digest=job.digest, release_statement_digest=job.statement_digest,
        verifier_id=keys.key_id(signer.public_key()), step=name, result=outcome.status,
        summary=visible_nul(outcome.summary[:4096]), evidence=visible_nul(outcome.evidence),
    )
    return dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, signer)


def own_step_results(job: Job, signer) -> dict[str, statements.StepResult]:
    """The step results the registry holds for the job, each checked to carry this verifier's own
    signature and to be about this release: the verdict is signed over nothing else."""
    mine = {keys.key_id(signer.public_key()): signer.public_key()}
    out = {}
    for step in job.steps:
        if not step.get("envelope"):
            continue
        result = statements.parse_step_result(dsse.verify_envelope(step["envelope"], mine).payload)
        if (result.step, result.subject_digest, result.release_statement_digest) != (step["name"], job.digest, job.statement_digest):
            raise VerificationError(f"the registry holds a step result for another release or step under {step['name']}")
        out[step["name"]] = result
    return out


MAX_AGE_ENV = "ASSAY_STEP_RESULT_MAX_AGE_H"
DEFAULT_MAX_AGE_H = 168.0  # a week: far longer than any honest verification waits between a step and its verdict


def step_result_max_age() -> timedelta:
    """How old a step result of this verifier's own may be when it signs a verdict over it."""
    raw = os.environ.get(MAX_AGE_ENV, "").strip()
    try:
        hours = float(raw) if raw else DEFAULT_MAX_AGE_H
    except ValueError:
        hours = -1.0
    if not 0 < hours < 1e6:
        raise FormatError(f"{MAX_AGE_ENV} must be a positive number of hours, not {raw[:40]!r}")
    return timedelta(hours=hours)


def stale_results(results: dict[str, statements.StepResult], max_age: timedelta, now: datetime | None = None) -> list[str]:
    """The steps whose result (this verifier's own, signed) is older than `max_age`: "static (signed
    <time>)". A registry that held an old result (from before this verifier's checks changed, say)
    and asked for a verdict only now would otherwise get a fresh verdict over stale checks."""
    now = now or datetime.now(timezone.utc)
    return [f"{name} (signed {r.time})" for name, r in results.items()
            if now - datetime.fromisoformat(r.time.replace("Z", "+00:00")) > max_age]


def sign_verdict(job: Job, checks: dict[str, statements.StepResult], order: tuple[str, ...], level: Level, signer) -> tuple[dict, bool]:
    entries = [{"name": n, "result": checks[n].result, "summary": checks[n].summary, "evidence": checks[n].evidence} for n in order]
    passed = levels.verdict_passes(entries, has_base=bool(job.base_digest))
    payload = statements.build_verdict_statement(
        subject_name=job.file_name,
        subject_digest=job.digest,
        verifier_id=keys.key_id(signer.public_key()),
        time_created=datetime.now(timezone.utc),
        resource_uri=f"assay:{job.reference}@{job.version}",
        policy_uri=POLICY_URI,
        release_statement_digest=job.statement_digest,
        passed=passed,
        checks=entries,
        level=level,
        subject_blake3=_checked_blake3(job, checks),
    )
    return dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, signer), passed


def _checked_blake3(job: Job, checks: dict[str, statements.StepResult]) -> str | None:
    """The subject's BLAKE3 digest, repeated in the verdict only when this verifier's own static
    step checked the digest the statement declares for every file against the bytes."""
    static = checks.get("static")
    if job.statement is None or not job.statement.declares_blake3 or static is None:
        return None
    if static.result != "passed" or static.evidence.get("blake3_checked") is not True:
        return None
    return job.statement.blake3[job.digest]


def sign_provenance(job: Job, reproduce: statements.StepResult, signer) -> dict:
    """SLSA provenance for a bit-exact rebuild. It does not depend on the verdict: "these bytes
    are what llama.cpp builds from that base with that recipe" stays true when the probes then
    fail, and an auditor can tell a faithful quant of a misbehaving base from a tampered file."""
    ev = reproduce.evidence
    payload = statements.build_provenance_statement(
        subject_name=job.file_name,
        subject_digest=ev.get("expected_digest", job.digest),
        builder_id=keys.key_id(signer.public_key()),
        recipe=job.recipe,
        resolved_dependencies=(ev.get("provenance") or {}).get("resolvedDependencies")
        or [{"uri": "assay:blob", "digest": {"sha256": job.base_digest.split(":", 1)[1]}}],
        started_on=ev.get("started"),
        finished_on=ev.get("finished"),
        build_type=(ev.get("provenance") or {}).get("buildType") or statements.BUILD_TYPE,
    )
    return dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, signer)
