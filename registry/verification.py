"""A release's verification as the registry sees it: jobs handed to registered verifiers, the
state machine of their steps, and the checks on what a verifier posts back before it is logged.

uploaded -> queued -> verifying -> verified | rejected | error
(and back to queued when the verifier whose verdict decided it is revoked: reverify_after_revocation,
or when a staff member asks for it: reverify, `manage.py reverify`)
A verifier claims a release's job (release.verifier) when it takes it; only that verifier may
report its steps and verdict until the release is queued again (requeue, error). Each step
result and the verdict are signed by the verifier; the registry checks every signature against
the key the verifier registered (registry/verifiers.py) and the content against the release,
and only then stores or logs it. Nothing is logged for a refused post.

The verifier holds no database credentials: it calls these through the verifier API
(registry/api/verifier_jobs.py).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from assay.core import dsse, keys, levels, statements
from assay.core.errors import AssayError
from assay.core.levelcheck import level_problem, static_tensor_types

from .sealing import log_statement
from .errors import RegistryError
from .models import Release, VerificationStep, Verifier, VerifierVerdict
from .status_reason import MAX_REASON, VERIFYING_AGAIN, with_standing_reason

FINAL = (Release.VERIFIED, Release.REJECTED, Release.ERROR)
FINISHED = (VerificationStep.PASSED, VerificationStep.FAILED, VerificationStep.SKIPPED)
RESULT_STATUS = {"passed": VerificationStep.PASSED, "failed": VerificationStep.FAILED,
                 "skipped": VerificationStep.SKIPPED, "error": VerificationStep.ERROR}


def _locked(release_id: int) -> Release:
    release = Release.objects.select_for_update().filter(pk=release_id).first()
    if release is None:
        raise RegistryError(404, f"release {release_id} not found")
    return release


def _held_open(verifier: Verifier, release_id: int) -> Release:
    """The release, locked, held by `verifier` and not final (what a step result or verdict needs)."""
    release = _locked(release_id)
    _require_claim(verifier, release)
    if release.status in FINAL:
        raise RegistryError(409, f"release {release_id} is already {release.status}")
    return release


def _require_claim(verifier: Verifier, release: Release) -> None:
    if release.verifier_id != verifier.pk:
        holder = "no verifier" if release.verifier_id is None else f"verifier {release.verifier.name!r}"
        raise RegistryError(409, f"release {release.pk} was not given to verifier {verifier.name!r} (its job is held by {holder})")


def _verifier_keys(verifier: Verifier) -> dict:
    return {verifier.keyid: keys.public_key_from_text(verifier.public_key)}


def claim(verifier: Verifier, release_id: int) -> dict:
    """Take a release's job. 409 when another verifier holds it; {"done": true} when the release
    is already final (a redelivered task)."""
    from .routing import fits, route, waiting_for_base

    with transaction.atomic():
        release = _locked(release_id)
        if release.status in FINAL:
            return {"done": True, "status": release.status}
        if release.verifier_id not in (None, verifier.pk):
            _require_claim(verifier, release)
        refused = waits = ""
        if release.verifier_id is None:
            ok, refused = fits(verifier, release)
            waits = "" if refused else waiting_for_base(release)
            if not (refused or waits):
                release.verifier, release.status_reason = verifier, with_standing_reason(release.status_reason, "")
                release.save(update_fields=["verifier", "status_reason", "updated"])
                _forget_results_of_other_verifiers(release, verifier)
    if refused or waits:  # the job goes back to the queue; the release says what it waits for
        Release.objects.filter(pk=release_id, verifier__isnull=True).update(
            status_reason=with_standing_reason(release.status_reason, route(release)[1] or refused))
        raise RegistryError(409, f"release {release_id} {'cannot be taken yet: ' + waits if waits else 'does not fit this verifier: ' + refused}",
                            fits=False)
    return job_info(verifier, release_id)


def _forget_results_of_other_verifiers(release: Release, verifier: Verifier) -> None:
    """A verdict covers only step results its own verifier signed: steps another verifier finished
    (before the release was queued again) are run again by the one that now holds the job."""
    for step in VerificationStep.objects.select_for_update().filter(release=release, envelope__isnull=False):
        signers = {s.get("keyid") for s in (step.envelope or {}).get("signatures", []) if isinstance(s, dict)}
        if verifier.keyid not in signers:
            step.status, step.summary, step.evidence, step.envelope = VerificationStep.PENDING, "", {}, None
            step.save(update_fields=["status", "summary", "evidence", "envelope"])


def _asked_for_second_opinion(verifier: Verifier, release: Release) -> bool:
    return VerifierVerdict.objects.filter(release=release, verifier=verifier, envelope__isnull=True).exists()


def job_info(verifier: Verifier, release_id: int) -> dict:
    """What a verifier needs to verify a release it holds (or was asked to verify again): the
    release's signed fields, the blobs to fetch by digest, every step's state and signed result,
    and its verified base."""
    release = Release.objects.select_related("model__namespace", "blob", "verifier").filter(pk=release_id).first()
    if release is None:
        raise RegistryError(404, f"release {release_id} not found")
    if not _asked_for_second_opinion(verifier, release):
        _require_claim(verifier, release)
    steps = {s.name: s for s in release.steps.all()}
    return {
        "release_id": release.pk,
        "reference": release.reference,
        "version": release.version,
        "status": release.status,
        "file_name": release.file_name,
        "digest": release.blob_id,
        "size": release.blob.size,
        "quantization": release.quantization,
        "base_digest": release.base_digest,
        "base_size": _blob_size(release.base_digest),
        "base_name": release.base_name,
        "recipe": release.recipe,
        "statement_digest": release.statement_digest,
        # The publisher's signed statement itself: the verifier checks every field above against
        # it (verifier/job.py) and so never vouches for files the statement does not name.
        "release_envelope": release.envelope,
        "steps": [{"name": n, "status": steps[n].status, "summary": steps[n].summary, "envelope": steps[n].envelope}
                  for n in VerificationStep.CHECKS if n in steps],
        "base": _base_info(release),
        "inputs": [{"role": i.role, "name": i.name, "digest": i.blob_id, "size": i.blob.size}
                   for i in release.inputs.select_related("blob").order_by("role", "name")],
    }


def _blob_size(digest: str) -> int | None:
    from .models import Blob

    return Blob.objects.filter(digest=digest).values_list("size", flat=True).first() if digest else None


def _base_info(release: Release) -> dict | None:
    """The verified release a quant names as base (name and digest both, newest version), with
    the verdict signed for it and its publisher's release statement: the verifier reads the base's
    level from that verdict, and a split base's parts from that statement (the verdict signs its
    digest), not from this description."""
    base = release.named_base().filter(status=Release.VERIFIED).select_related("model__namespace").order_by("-version").first()
    if base is None:
        return None
    return {"reference": base.reference, "version": base.version, "digest": base.blob_id, "verdict_envelope": base.verdict_envelope,
            "release_envelope": base.envelope, "file_name": base.file_name, "parts": base.split_parts()}


def begin_step(verifier: Verifier, release_id: int, name: str) -> dict:
    """Mark a step running. {"run": false} when it is finished or the release is final;
    otherwise {"run": true, "earlier_failed": [...]} (the verifier then reports it skipped)."""
    _check_step_name(name)
    with transaction.atomic():
        release = _locked(release_id)
        if release.status in FINAL:
            return {"run": False, "reason": f"release is {release.status}"}
        _require_claim(verifier, release)
        step = VerificationStep.objects.select_for_update().get(release=release, name=name)
        if step.status in FINISHED:
            return {"run": False, "reason": f"step {name} is {step.status}"}
        release.status = Release.VERIFYING
        release.save(update_fields=["status", "updated"])
        step.status, step.started, step.attempts = VerificationStep.RUNNING, timezone.now(), step.attempts + 1
        step.save(update_fields=["status", "started", "attempts"])
        earlier = VerificationStep.CHECKS[: VerificationStep.CHECKS.index(name)]
        failed = list(VerificationStep.objects.filter(release=release, name__in=earlier,
                                                      status__in=[VerificationStep.FAILED, VerificationStep.ERROR])
                      .values_list("name", flat=True))
    return {"run": True, "earlier_failed": sorted(failed, key=VerificationStep.CHECKS.index)}


def _check_step_name(name: str) -> None:
    if name not in VerificationStep.CHECKS:
        raise RegistryError(400, f"unknown step {str(name)[:40]!r}: the steps are {', '.join(VerificationStep.CHECKS)}")


def finish_step(verifier: Verifier, release_id: int, name: str, envelope: object) -> dict:
    """Store a step result the verifier signed, after checking signature, release and step."""
    _check_step_name(name)
    result = _verified_step_result(verifier, envelope)
    with transaction.atomic():
        release = _held_open(verifier, release_id)
        _check_subject(release, result.subject_digest, result.release_statement_digest, "step result")
        if result.step != name:
            raise RegistryError(400, f"step result is for step {result.step!r}, posted as {name!r}")
        step = VerificationStep.objects.select_for_update().get(release=release, name=name)
        if step.status != VerificationStep.RUNNING:
            raise RegistryError(409, f"step {name} of release {release_id} is {step.status}, not running: begin it first")
        step.status, step.summary, step.evidence = RESULT_STATUS[result.result], result.summary[:MAX_REASON], result.evidence
        step.envelope, step.finished = envelope, timezone.now()
        step.save(update_fields=["status", "summary", "evidence", "envelope", "finished"])
        if step.status == VerificationStep.ERROR:
            _mark_error(release, f"{name}: {result.summary}")
    return {"step": name, "status": step.status}


def _verified_step_result(verifier: Verifier, envelope: object) -> statements.StepResult:
    try:
        parsed = dsse.verify_envelope(envelope, _verifier_keys(verifier))
        result = statements.parse_step_result(parsed.payload)
    except AssayError as exc:
        raise RegistryError(400, f"step result refused: {exc}") from None
    if result.verifier_id != verifier.keyid:
        raise RegistryError(400, f"step result refused: it names verifier {result.verifier_id}, not {verifier.keyid}")
    return result


def _check_subject(release: Release, digest: str, statement_digest: str, what: str) -> None:
    if digest != release.blob_id:
        raise RegistryError(400, f"{what} refused: it is for {digest}, but release {release.pk} is {release.blob_id}")
    if statement_digest != release.statement_digest:
        raise RegistryError(400, f"{what} refused: it names release statement {statement_digest}, "
                                 f"not release {release.pk}'s {release.statement_digest}")


def reopen_step(verifier: Verifier, release_id: int, name: str, reason: str) -> None:
    """A transient failure with retries left: the step goes back to pending for the retry."""
    _check_step_name(name)
    with transaction.atomic():
        release = _locked(release_id)
        _require_claim(verifier, release)
        VerificationStep.objects.filter(release=release, name=name, status=VerificationStep.RUNNING).update(
            status=VerificationStep.PENDING, summary=f"transient error, retrying: {reason}"[:MAX_REASON])


def report_error(verifier: Verifier, release_id: int, reason: str, step: str | None = None, detail: str = "") -> None:
    """The verifier could not judge the release (a crash, no retries left): the step and the
    release become `error`, re-runnable by queueing the release again. Nothing is signed."""
    if step is not None:
        _check_step_name(step)
    with transaction.atomic():
        release = _locked(release_id)
        _require_claim(verifier, release)
        if step is not None:
            VerificationStep.objects.filter(release=release, name=step).exclude(status__in=FINISHED).update(
                status=VerificationStep.ERROR, summary=str(reason)[:MAX_REASON],
                evidence={"traceback": str(detail)[-4000:]} if detail else {}, finished=timezone.now())
        _mark_error(release, str(reason))


def _mark_error(release: Release, reason: str) -> None:
    Release.objects.filter(pk=release.pk).exclude(status__in=[Release.VERIFIED, Release.REJECTED]).update(
        status=Release.ERROR, status_reason=with_standing_reason(release.status_reason, reason[:MAX_REASON]), updated=timezone.now())


def accept_verdict(verifier: Verifier, release_id: int, verdict_envelope: object, provenance_envelope: object | None) -> dict:
    """Check a signed verdict (and provenance) against the verifier's key and the release's steps,
    log them, and set the release's final status and level. Anything wrong: 4xx, nothing logged."""
    verdict = _verified_verdict(verifier, verdict_envelope)
    with transaction.atomic():
        release = _held_open(verifier, release_id)
        _check_subject(release, verdict.subject_digest, verdict.release_statement_digest, "verdict")
        rows = {s.name: s for s in VerificationStep.objects.select_for_update().filter(release=release)}
        unfinished = [n for n in VerificationStep.CHECKS if rows[n].status not in FINISHED]
        if unfinished:
            raise RegistryError(409, f"verdict refused: step(s) {', '.join(unfinished)} of release {release_id} are not finished")
        _check_checks_match_steps(verdict, rows)
        if verdict.passed != levels.verdict_passes(verdict.checks, has_base=bool(release.base_digest)):
            raise RegistryError(400, f"verdict refused: it says {verdict.result}, which its own check results do not give")
        reproduced = rows["reproduce"].status == VerificationStep.PASSED
        provenance = _verified_provenance(verifier, release, provenance_envelope) if reproduced else None
        if provenance_envelope is not None and not reproduced:
            raise RegistryError(400, "provenance refused: the reproduce step did not pass")
        _check_level(release, verdict, provenance, rows["static"].evidence)
        level = verdict.level_or_unreproduced
        private = release.model.namespace.private
        release.verdict_envelope = verdict_envelope
        release.verdict_log_index, salt = log_statement("verdict", verdict_envelope, private)
        salts = {"verdict": salt} if salt else {}
        if provenance is not None:
            release.provenance_envelope = provenance_envelope
            release.provenance_log_index, salt = log_statement("provenance", provenance_envelope, private)
            salts.update({"provenance": salt} if salt else {})
        release.seal_salts = {**(release.seal_salts or {}), **salts}
        release.level, release.level_detail = level.name, level.to_dict()
        VerifierVerdict.objects.update_or_create(release=release, verifier=verifier, defaults=dict(
            envelope=verdict_envelope, log_index=release.verdict_log_index, provenance_envelope=release.provenance_envelope,
            provenance_log_index=release.provenance_log_index, passed=verdict.passed, level=level.name, signed=timezone.now(),
            seal_salts=salts))
        release.status = Release.VERIFIED if verdict.passed else Release.REJECTED
        failed = [f"{n}: {rows[n].summary}" for n in VerificationStep.CHECKS if rows[n].status == VerificationStep.FAILED]
        release.status_reason = "" if verdict.passed else "; ".join(failed) or "a required check did not pass"
        release.save()
        step = rows["attest"]
        step.status, step.finished = VerificationStep.PASSED, timezone.now()
        step.summary = (f"verdict {verdict.result} signed by verifier {verifier.name} at level {level.name}, "
                        f"log index {release.verdict_log_index}")
        step.save(update_fields=["status", "finished", "summary"])
        if verdict.passed:
            request_second_opinions(release)
    return {"status": release.status, "level": release.level, "verdict_log_index": release.verdict_log_index,
            "provenance_log_index": release.provenance_log_index}


def _verified_verdict(verifier: Verifier, envelope: object) -> statements.VerdictStatement:
    try:
        verdict = statements.parse_verdict_statement(dsse.verify_envelope(envelope, _verifier_keys(verifier)).payload)
    except AssayError as exc:
        raise RegistryError(400, f"verdict refused: {exc}") from None
    if verdict.verifier_id != verifier.keyid:
        raise RegistryError(400, f"verdict refused: it names verifier {verdict.verifier_id}, not {verifier.keyid}")
    return verdict


def _check_checks_match_steps(verdict: statements.VerdictStatement, rows: dict[str, VerificationStep]) -> None:
    """The verdict's checks are exactly the step results the verifier posted (and signed)."""
    names = [c["name"] for c in verdict.checks]
    if names != list(VerificationStep.CHECKS):
        raise RegistryError(400, f"verdict refused: its checks are {names}, expected {list(VerificationStep.CHECKS)}")
    for check in verdict.checks:
        row = rows[check["name"]]
        try:
            posted = statements.parse_step_result(dsse.parse_envelope(row.envelope).payload) if row.envelope else None
        except AssayError:
            posted = None
        if posted is None or not _same_check(check, posted):
            raise RegistryError(400, f"verdict refused: its {check['name']} check differs from the step result the verifier reported")


def _same_check(check: dict, posted: statements.StepResult) -> bool:
    """A verdict's check says what the signed step result says; its evidence by digest."""
    return (check["result"], check["summary"], check.get("evidenceDigest")) == (
        posted.result, posted.summary, statements.evidence_digest(posted.evidence))


def _verified_provenance(verifier: Verifier, release: Release, envelope: object) -> statements.ProvenanceStatement:
    if envelope is None:
        raise RegistryError(400, "verdict refused: the reproduce step passed, so a signed provenance must come with it")
    try:
        provenance = statements.parse_provenance_statement(dsse.verify_envelope(envelope, _verifier_keys(verifier)).payload)
    except AssayError as exc:
        raise RegistryError(400, f"provenance refused: {exc}") from None
    if provenance.subject_digest != release.blob_id:
        raise RegistryError(400, f"provenance refused: it is for {provenance.subject_digest}, not {release.blob_id}")
    if provenance.builder_id != verifier.keyid:
        raise RegistryError(400, f"provenance refused: its builder is {provenance.builder_id}, not {verifier.keyid}")
    return provenance


def _check_level(release: Release, verdict: statements.VerdictStatement, provenance: statements.ProvenanceStatement | None,
                 static_evidence: dict | None) -> None:
    """The verdict's signed level (and the provenance) is what the publisher's signed release
    statement and the verdict's own checks support (assay/core/levelcheck.py, the rule a client
    applies too); 400 otherwise, before anything is logged."""
    stmt = statements.parse_release_statement(dsse.parse_envelope(release.envelope).payload)
    problem = level_problem(stmt, verdict, provenance=provenance, tensor_types=static_tensor_types(static_evidence))
    if problem:
        raise RegistryError(400, f"verdict refused: {problem}")


# ------------------------------------------------------------------ second opinions

def _second_opinion_timeout_s() -> int:
    from django.conf import settings

    return settings.ASSAY_SECOND_OPINION_TIMEOUT_S


def _asked_before() -> datetime:
    """A second-opinion request made before this moment and not answered no longer counts."""
    return timezone.now() - timedelta(seconds=_second_opinion_timeout_s())


def _counts(prefix: str = "") -> Q:
    """The one rule for a VerifierVerdict row that counts toward ASSAY_VERIFIERS_PER_RELEASE (with
    `prefix`, from a Release query): its verifier is not revoked, and it answered or was asked
    within ASSAY_SECOND_OPINION_TIMEOUT_S."""
    return (Q(**{f"{prefix}verifier__revoked_at__isnull": True})
            & (Q(**{f"{prefix}envelope__isnull": False}) | Q(**{f"{prefix}requested__gte": _asked_before()})))


def _counting_verifiers(release: Release) -> set[int]:
    """The verifiers that count toward ASSAY_VERIFIERS_PER_RELEASE: not revoked, and either
    answered (the first verifier included) or asked less than ASSAY_SECOND_OPINION_TIMEOUT_S ago.
    A revoked verifier's verdict no longer vouches, and its pending request (or one not answered in
    time) is released, so another verifier is asked."""
    live = set(VerifierVerdict.objects.filter(_counts(), release=release).values_list("verifier_id", flat=True))
    if release.verifier_id and Verifier.objects.filter(pk=release.verifier_id, revoked_at__isnull=True).exists():
        live.add(release.verifier_id)
    return live


def request_second_opinions(release: Release, wanted: int | None = None) -> list[str]:
    """Ask further registered verifiers to verify a release on their own, until `wanted`
    verifiers (ASSAY_VERIFIERS_PER_RELEASE) count in all (_counting_verifiers). Only an active
    verifier the job fits (registry/routing.py: its llama.cpp build, its memory) is asked, one never
    asked before first; when none is left, one whose request timed out is asked again. Each gets the
    job on its own queue; a client whose policy requires k verifiers takes the release once k
    verdicts passed. Returns the names asked now."""
    from django.conf import settings

    from .queueing import enqueue_second_opinion
    from .routing import fits

    wanted = settings.ASSAY_VERIFIERS_PER_RELEASE if wanted is None else wanted
    more = max(0, wanted - len(_counting_verifiers(release)))
    if not more:
        return []
    tried = set(VerifierVerdict.objects.filter(release=release).values_list("verifier_id", flat=True))
    tried |= {release.verifier_id} if release.verifier_id else set()
    active = Verifier.objects.filter(revoked_at__isnull=True).order_by("-last_seen", "name")
    fresh = [v for v in active.exclude(pk__in=tried) if fits(v, release)[0]]
    timed_out = set(VerifierVerdict.objects.filter(release=release, envelope__isnull=True, requested__lt=_asked_before())
                    .values_list("verifier_id", flat=True))
    again = [v for v in active.filter(pk__in=timed_out) if fits(v, release)[0]]
    names = []
    for verifier in (fresh + again)[:more]:
        VerifierVerdict.objects.update_or_create(release=release, verifier=verifier, defaults={"requested": timezone.now()})
        transaction.on_commit(lambda r=release.pk, n=verifier.name: enqueue_second_opinion(r, n))
        names.append(verifier.name)
    return names


def second_opinion_wait(release: Release, wanted: int | None = None) -> str:
    """What a verified release waits for before ASSAY_VERIFIERS_PER_RELEASE verifiers count
    ("" when nothing): shown on its web page and in its status."""
    from django.conf import settings

    from .routing import waiting_for

    wanted = settings.ASSAY_VERIFIERS_PER_RELEASE if wanted is None else wanted
    if release.status != Release.VERIFIED or wanted <= 1:
        return ""
    counting = _counting_verifiers(release)
    if len(counting) >= wanted:
        return ""
    others = list(Verifier.objects.filter(revoked_at__isnull=True).exclude(pk__in=counting))
    reason = waiting_for(release, others, "another verifier")
    return (f"second opinions: {len(counting)} of {wanted} verifiers vouch or are verifying; "
            + (reason or "another verifier will be asked shortly"))


def refresh_second_opinions(limit: int = 500) -> dict:
    """The periodic pass (registry.tasks.ask_second_opinions): for each verified release with fewer
    than ASSAY_VERIFIERS_PER_RELEASE counting verifiers, ask more (those that fit)."""
    from django.conf import settings

    wanted = settings.ASSAY_VERIFIERS_PER_RELEASE
    if wanted <= 1:
        return {"releases": 0, "asked": 0}
    short = (Release.objects.filter(status=Release.VERIFIED).annotate(n=Count("verdicts", filter=_counts("verdicts__"))).filter(n__lt=wanted)
             .select_related("blob").order_by("-updated")[:limit])
    asked = 0
    for release in short:
        with transaction.atomic():
            asked += len(request_second_opinions(_locked(release.pk)))
    return {"releases": len(short), "asked": asked}


def reverify_after_revocation(verifier: Verifier) -> list[int]:
    """After `verifier` was revoked, in the revocation's transaction: each release whose status its
    verdict decided (verified or rejected) goes back to the queue, to be verified afresh by an active
    verifier; so does each release whose job it held (queued, verifying or error: no other verifier
    could take that job, and an error it reported may be a compromised verifier's sabotage). The
    release is `queued`, its status_reason says why (VERIFYING_AGAIN), its verdict, provenance and
    level are no longer its own (the log keeps them), and every step is pending again, so the next
    verifier runs each itself. The job is queued as a new release's is (routing included) once the
    revocation commits; if the broker is down the release stays queued, where `manage.py requeue`
    picks it up. Idempotent: a release it decided is no longer held by it. Returns the release ids."""
    why = _one_line(verifier.revoke_reason)
    ids = []
    for release in Release.objects.select_for_update().filter(verifier=verifier).order_by("pk"):
        role = "whose verdict decided it" if release.status in (Release.VERIFIED, Release.REJECTED) else "which held its job"
        _queue_afresh(release, f"verifier {verifier.name}, {role}, was revoked: {why}")
        ids.append(release.pk)
    return ids


def _one_line(text: object) -> str:
    return " ".join(str(text or "").split()) or "no reason given"


def _queue_afresh(release: Release, why: str) -> None:
    """Inside a transaction holding `release` locked: back to `queued` with every step pending and
    no verdict, provenance or level of its own (the log keeps the old ones), its status_reason
    saying why (VERIFYING_AGAIN); queued as a new release is once the transaction commits."""
    release.status = Release.QUEUED
    release.status_reason = f"{VERIFYING_AGAIN}{why}"[:MAX_REASON]
    release.verifier = None
    release.verdict_envelope = release.provenance_envelope = None
    release.verdict_log_index = release.provenance_log_index = None
    release.level, release.level_detail = "", None
    release.seal_salts = {k: v for k, v in (release.seal_salts or {}).items() if k not in ("verdict", "provenance")}
    release.save()
    VerificationStep.objects.filter(release=release).update(
        status=VerificationStep.PENDING, summary="", evidence={}, envelope=None, started=None, finished=None, attempts=0)
    transaction.on_commit(lambda r=release.pk: _enqueue_again(r))


def reverify(release_id: int, asked_by: str, reason: str) -> Release:
    """A staff member asks for a decided release (verified, rejected or error) to be verified afresh:
    after a verifier's operator reviewed the chat template that rejected it, after the checks
    changed, or to retry an error. Refused (409) while it is still waiting for or in verification."""
    with transaction.atomic():
        release = _locked(release_id)
        if release.status not in FINAL:
            raise RegistryError(409, f"release {release.reference} v{release.version} is {release.status}: it is being verified already")
        _queue_afresh(release, f"asked by {asked_by}, after it was {release.status}: {_one_line(reason)}")
    return release


def _enqueue_again(release_id: int) -> None:
    """Queue a release verified again; a broker outage leaves it queued with its reason (requeue)."""
    import logging

    from .queueing import enqueue_verification

    try:
        enqueue_verification(release_id)
    except Exception:  # noqa: BLE001 - any broker failure; the revocation is committed and the release queued
        logging.getLogger(__name__).exception("could not queue release %s to be verified again; run `manage.py requeue`", release_id)


def release_requests_of(verifier: Verifier) -> list[str]:
    """After `verifier` was revoked: ask another verifier for each verified release it had vouched
    for or was asked about. Returns the names asked."""
    names = []
    for release_id in VerifierVerdict.objects.filter(verifier=verifier, release__status=Release.VERIFIED).values_list("release_id", flat=True):
        with transaction.atomic():
            names += request_second_opinions(_locked(release_id))
    return names


def accept_second_opinion(verifier: Verifier, release_id: int, verdict_envelope: object, provenance_envelope: object | None,
                          step_envelopes: object) -> dict:
    """A further verifier's own verdict on a release it was asked about: checked like the first
    (its key, the release, its own signed step results, PASSED as they give it), then logged.
    It never changes the release's status; it adds a verifier that vouches for (or against) it."""
    verdict = _verified_verdict(verifier, verdict_envelope)
    if not isinstance(step_envelopes, list):
        raise RegistryError(400, "field 'steps' must list the verifier's signed step results")
    posted = [_verified_step_result(verifier, envelope) for envelope in step_envelopes[:len(VerificationStep.CHECKS) + 1]]
    with transaction.atomic():
        release = _locked(release_id)
        row = VerifierVerdict.objects.select_for_update().filter(release=release, verifier=verifier).first()
        if row is None:
            raise RegistryError(409, f"release {release.pk} was not given to verifier {verifier.name!r} for a second opinion")
        if row.envelope is not None:
            raise RegistryError(409, f"verifier {verifier.name!r} already gave its verdict on release {release.pk}")
        # Every envelope is stored (row.steps) and served as this release's evidence: exactly one
        # per step, each checked below, none hidden behind another of the same name.
        if len(step_envelopes) != len(VerificationStep.CHECKS):
            raise RegistryError(400, f"verdict refused: it must carry exactly one signed result for each of the steps "
                                     f"{', '.join(VerificationStep.CHECKS)}, not {len(step_envelopes)} step results")
        results = {}
        for result in posted:
            if result.step in results:
                raise RegistryError(400, f"verdict refused: it carries more than one signed result for step {result.step!r}")
            results[result.step] = result
        _check_subject(release, verdict.subject_digest, verdict.release_statement_digest, "verdict")
        for result in results.values():
            _check_subject(release, result.subject_digest, result.release_statement_digest, "step result")
        if sorted(results) != sorted(VerificationStep.CHECKS) or [c["name"] for c in verdict.checks] != list(VerificationStep.CHECKS):
            raise RegistryError(400, f"verdict refused: it must carry the steps {', '.join(VerificationStep.CHECKS)} with their signed results")
        for check in verdict.checks:
            if not _same_check(check, results[check["name"]]):
                raise RegistryError(400, f"verdict refused: its {check['name']} check differs from its signed step result")
        if verdict.passed != levels.verdict_passes(verdict.checks, has_base=bool(release.base_digest)):
            raise RegistryError(400, f"verdict refused: it says {verdict.result}, which its own check results do not give")
        reproduced = results["reproduce"].result == "passed"
        provenance = _verified_provenance(verifier, release, provenance_envelope) if reproduced else None
        if provenance_envelope is not None and not reproduced:
            raise RegistryError(400, "provenance refused: the reproduce step did not pass")
        _check_level(release, verdict, provenance, results["static"].evidence)
        row.envelope, row.passed, row.level, row.signed = verdict_envelope, verdict.passed, verdict.level_or_unreproduced.name, timezone.now()
        row.steps = step_envelopes
        private = release.model.namespace.private
        row.log_index, salt = log_statement("verdict", verdict_envelope, private)
        row.seal_salts = {"verdict": salt} if salt else {}
        if reproduced:
            row.provenance_envelope = provenance_envelope
            row.provenance_log_index, salt = log_statement("provenance", provenance_envelope, private)
            row.seal_salts.update({"provenance": salt} if salt else {})
        row.save()
    return {"verifier": verifier.name, "passed": row.passed, "level": row.level, "log_index": row.log_index}


def vouching(release: Release) -> list[dict]:
    """Which verifiers signed a verdict on the release, and what they said (web page). A revoked
    verifier's verdict is marked so and does not vouch (`vouches`: a passed verdict of an active
    verifier); a request it had not answered, or one not answered within
    ASSAY_SECOND_OPINION_TIMEOUT_S, is marked released (another verifier is asked)."""
    cutoff = _asked_before()
    rows = VerifierVerdict.objects.filter(release=release).select_related("verifier").order_by("requested", "pk")
    out = []
    for r in rows:
        v, pending = r.verifier, r.envelope is None
        released = "" if not pending else (
            "its verifier was revoked before it answered" if v.revoked else
            f"no answer within {_second_opinion_timeout_s() // 60} min" if r.requested < cutoff else "")
        out.append({"verifier": v.name, "keyid": v.keyid, "passed": r.passed, "level": r.level, "log_index": r.log_index,
                    "pending": pending, "primary": r.verifier_id == release.verifier_id,
                    "revoked": v.revoked, "revoke_reason": v.revoke_reason, "revocation_log_index": v.revocation_log_index,
                    "vouches": not pending and bool(r.passed) and not v.revoked, "released": released})
    return out


def evidence_documents(release: Release) -> list[dict]:
    """Each verifier's evidence for a release, one document per check, as the verdicts name them
    by digest: the first verifier's from the step rows, further ones' from their signed step results."""
    out = []
    if release.verifier_id:
        rows = {s.name: s for s in release.steps.all()}
        out.append({"verifier": release.verifier.name, "keyid": release.verifier.keyid, "primary": True, "checks": [
            {"name": n, "evidenceDigest": statements.evidence_digest(rows[n].evidence or {}), "evidence": rows[n].evidence or {}}
            for n in VerificationStep.CHECKS if n in rows]})
    for row in VerifierVerdict.objects.filter(release=release).exclude(verifier_id=release.verifier_id).select_related("verifier"):
        checks = []
        for envelope in row.steps or []:
            try:
                result = statements.parse_step_result(dsse.parse_envelope(envelope).payload)
            except AssayError:
                continue
            checks.append({"name": result.step, "evidenceDigest": statements.evidence_digest(result.evidence), "evidence": result.evidence})
        if checks:
            out.append({"verifier": row.verifier.name, "keyid": row.verifier.keyid, "primary": False, "checks": checks})
    return out
