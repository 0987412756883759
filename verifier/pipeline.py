"""Verification pipeline: the release state machine and step bookkeeping.

uploaded -> queued -> verifying -> verified | rejected | error
Each step writes its own VerificationStep row and is idempotent: a finished step is not run
again, a step left `running` by a killed worker is run again when the task is redelivered
(acks_late). Only `attest` can make a release `verified`, and only when every step passed.

Exceptions: a TRANSIENT one (network, timeout, database connection) on a try that is not the
task's last leaves the step `pending` and the release `verifying` and propagates, so the
task's retry runs the step again; on the last try, or for any other exception, the step and
the release are marked `error` (re-runnable with registry.queueing.enqueue_verification) and it propagates.
"""
from __future__ import annotations

import logging
import traceback

from django.db import DatabaseError, InterfaceError, OperationalError, transaction
from django.utils import timezone

from registry.models import Release, VerificationStep

from . import attestation, steps
from .level import release_level

log = logging.getLogger(__name__)
CHECK_STEPS = VerificationStep.CHECKS
FINISHED = (VerificationStep.PASSED, VerificationStep.FAILED, VerificationStep.SKIPPED)
# Worth another try: the network, a timeout, the database connection (not a bad query).
TRANSIENT = (ConnectionError, TimeoutError, OperationalError, InterfaceError)


def _begin(release_id: int, name: str) -> tuple[Release, VerificationStep] | None:
    with transaction.atomic():
        release = Release.objects.select_for_update().get(pk=release_id)
        if release.status in (Release.VERIFIED, Release.REJECTED, Release.ERROR):
            return None
        step = VerificationStep.objects.select_for_update().get(release=release, name=name)
        if step.status in FINISHED:
            return None
        release.status = Release.VERIFYING
        release.save(update_fields=["status", "updated"])
        step.status, step.started, step.attempts = VerificationStep.RUNNING, timezone.now(), step.attempts + 1
        step.save(update_fields=["status", "started", "attempts"])
    return release, step


def _finish(step: VerificationStep, status: str, summary: str, evidence: dict) -> None:
    step.status, step.summary, step.evidence, step.finished = status, summary[:2000], evidence, timezone.now()
    step.save(update_fields=["status", "summary", "evidence", "finished"])


def execute_step(release_id: int, name: str, *, last_attempt: bool = True) -> None:
    """Run one check step of a release and store its outcome (see the module docstring for
    exceptions; `last_attempt` is False while the task still has retries left)."""
    begun = _begin(release_id, name)
    if begun is None:
        return
    release, step = begun
    earlier = VerificationStep.objects.filter(release=release, name__in=CHECK_STEPS[: CHECK_STEPS.index(name)])
    failed = [s.name for s in earlier if s.status in (VerificationStep.FAILED, VerificationStep.ERROR)]
    if failed:
        _finish(step, VerificationStep.SKIPPED, f"skipped: {', '.join(failed)} did not pass", {})
        return
    try:
        outcome = steps.run(name, release)
    except TRANSIENT as exc:
        if not last_attempt:
            log.warning("step %s of release %s: transient %s, will be retried: %s", name, release_id, type(exc).__name__, exc)
            _reopen(step, exc)
            raise
        _record_crash(release_id, step, exc, "failed with a transient error and no retries are left")
        raise
    except Exception as exc:  # a bug or an unexpected failure is recorded, never a silent pass
        _record_crash(release_id, step, exc, "failed with an internal error")
        raise
    _finish(step, outcome.status, outcome.summary, {**outcome.evidence, "worker": steps.jsonable(steps.worker_profile())})
    if outcome.status == VerificationStep.ERROR:
        mark_error(release_id, f"{name}: {outcome.summary}")


def _reopen(step: VerificationStep, exc: BaseException) -> None:
    """Step back to `pending` so the retry runs it. If the database itself is what failed, the
    step stays `running`, which the retry runs again too."""
    try:
        step.status, step.summary = VerificationStep.PENDING, f"transient error, retrying: {type(exc).__name__}: {exc}"[:2000]
        step.save(update_fields=["status", "summary"])
    except DatabaseError:
        log.warning("could not reopen step %s (id %s); it stays running until the retry", step.name, step.pk)


def _record_crash(release_id: int, step: VerificationStep, exc: BaseException, what: str) -> None:
    log.error("step %s of release %s %s", step.name, release_id, what, exc_info=exc)
    try:
        _finish(step, VerificationStep.ERROR, f"internal error: {type(exc).__name__}: {exc}", {"traceback": traceback.format_exc()[-4000:]})
        mark_error(release_id, f"{step.name} step {what}: {type(exc).__name__}: {exc}")
    except DatabaseError:  # the database is gone: the step stays running, the release verifying
        log.exception("could not record the error of step %s of release %s", step.name, release_id)


def run_attest(release_id: int, *, last_attempt: bool = True) -> None:
    """attest(), with the same exception rule as execute_step: a transient failure with retries
    left changes nothing (attest is one transaction), anything else marks the release `error`."""
    try:
        attest(release_id)
    except TRANSIENT as exc:
        if not last_attempt:
            log.warning("attest of release %s: transient %s, will be retried: %s", release_id, type(exc).__name__, exc)
            raise
        _mark_error_quietly(release_id, f"attestation failed, no retries left: {type(exc).__name__}: {exc}")
        raise
    except Exception as exc:
        _mark_error_quietly(release_id, f"attestation failed: {type(exc).__name__}: {exc}")
        raise


def _mark_error_quietly(release_id: int, reason: str) -> None:
    try:
        mark_error(release_id, reason)
    except DatabaseError:
        log.exception("could not mark release %s as error", release_id)


def attest(release_id: int) -> None:
    """Sign the verdict (and provenance when reproduced), log them, and set the final status."""
    with transaction.atomic():
        release = Release.objects.select_for_update().get(pk=release_id)
        if release.status in (Release.VERIFIED, Release.REJECTED, Release.ERROR):
            return
        rows = {s.name: s for s in VerificationStep.objects.select_for_update().filter(release=release)}
        if any(rows[n].status not in FINISHED for n in CHECK_STEPS):
            pending = [n for n in CHECK_STEPS if rows[n].status not in FINISHED]
            mark_error(release_id, f"cannot attest: steps not finished: {', '.join(pending)}")
            return
        # A quant must be rebuilt, unless no verifier can rebuild it at all (then its level says so).
        passed = all(rows[n].status in (VerificationStep.PASSED, VerificationStep.SKIPPED) for n in CHECK_STEPS) and not (
            release.base_digest and rows["reproduce"].status != VerificationStep.PASSED
            and not steps.rebuild_unsupported(rows["reproduce"])
        )
        level = release_level(release, rows)
        attestation.sign_and_log(release, [rows[n] for n in CHECK_STEPS], passed, level)
        release.level, release.level_detail = level.name, level.to_dict()
        failed = [f"{n}: {rows[n].summary}" for n in CHECK_STEPS if rows[n].status == VerificationStep.FAILED]
        release.status = Release.VERIFIED if passed else Release.REJECTED
        release.status_reason = "" if passed else "; ".join(failed) or "a required check did not pass"
        release.save()
        step = rows["attest"]
        step.status, step.finished = VerificationStep.PASSED, timezone.now()
        step.summary = (f"verdict {'PASSED' if passed else 'FAILED'} signed at level {level.name}, "
                        f"log index {release.verdict_log_index}")
        step.save(update_fields=["status", "finished", "summary"])


def mark_error(release_id: int, reason: str) -> None:
    Release.objects.filter(pk=release_id).exclude(status__in=[Release.VERIFIED, Release.REJECTED]).update(
        status=Release.ERROR, status_reason=reason[:2000], updated=timezone.now()
    )
