"""Signing the verifier's statements (verdict, provenance) and logging them."""
from __future__ import annotations

from django.utils import timezone

from assay import dsse, keys, statements
from assay.levels import Level
from registry import tlog
from registry.models import Release, VerificationStep
from registry.serverkeys import verifier_key

POLICY_URI = "urn:assay:policy:default:v1"


def verifier_id() -> str:
    return keys.key_id(verifier_key().public_key())


def _check_entry(step: VerificationStep) -> dict:
    result = {"passed": "passed", "failed": "failed", "skipped": "skipped"}.get(step.status, "error")
    evidence = dict(step.evidence)
    evidence.pop("traceback", None)
    return {"name": step.name, "result": result, "summary": step.summary, "evidence": evidence}


def sign_and_log(release: Release, steps: list[VerificationStep], passed: bool, level: Level) -> None:
    """Set release.verdict_envelope and its log index; and, whenever the reproduce step passed,
    release.provenance_envelope and its log index.

    Provenance does not depend on the verdict: "these bytes are what llama.cpp builds from that
    base with that recipe" stays true when the probes then fail, and a client that checks a
    rejected release (or an auditor reading the log) can see it was a faithful quant of a base
    that misbehaves, rather than a tampered file."""
    signer = verifier_key()
    checks = [_check_entry(s) for s in steps]
    payload = statements.build_verdict_statement(
        subject_name=release.file_name,
        subject_digest=release.blob_id,
        verifier_id=verifier_id(),
        time_created=timezone.now(),
        resource_uri=f"assay:{release.reference}@{release.version}",
        policy_uri=POLICY_URI,
        release_statement_digest=release.statement_digest,
        passed=passed,
        checks=checks,
        level=level,
    )
    release.verdict_envelope = dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, signer)
    release.verdict_log_index = tlog.append("verdict", release.verdict_envelope)
    reproduce = next((s for s in steps if s.name == "reproduce"), None)
    if reproduce is not None and reproduce.status == VerificationStep.PASSED:
        ev = reproduce.evidence
        payload = statements.build_provenance_statement(
            subject_name=release.file_name,
            subject_digest=ev.get("expected_digest", release.blob_id),
            builder_id=verifier_id(),
            recipe=release.recipe,
            resolved_dependencies=ev.get("provenance", {}).get("resolvedDependencies", [{"uri": "assay:blob", "digest": {"sha256": release.base_digest.split(":", 1)[1]}}]),
            started_on=ev.get("started"),
            finished_on=ev.get("finished"),
        )
        release.provenance_envelope = dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, signer)
        release.provenance_log_index = tlog.append("provenance", release.provenance_envelope)
