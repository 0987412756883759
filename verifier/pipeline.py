"""One release's verification on this verifier, through the registry's verifier API only.

claim the job -> for each check step: begin, run, sign, report -> sign the verdict -> post it.
The registry keeps the state (verification steps, release status) and checks every signature
against this verifier's registered key before it stores or logs anything.

Idempotent: a finished step is not run again, a step left `running` by a killed worker is run
again when the task is redelivered (acks_late), and a release already final is left alone.

Exceptions: a TRANSIENT one (the registry unreachable, a timeout) on a try that is not the
task's last puts the step back to `pending` and propagates, so the task's retry runs it again;
on the last try, or for any other exception, the step and the release are reported `error`
(re-runnable by queueing the release again) and it propagates.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import traceback
from dataclasses import replace
from pathlib import Path

from assay.core import dsse, statements
from assay.toolchain import confine
from assay.client.http import RegistryHTTPError
from assay.client.together import run_together
from assay.core.errors import AssayError
from assay.core.statements import CHECK_STEPS

from . import attestation, steps
from .identity import signing_key, verifier_dir
from .job import Job, JobFiles, JobMismatch, input_key
from .level import registered_keys, release_level
from .registry_api import RegistryUnavailable, VerifierClient

log = logging.getLogger(__name__)
TRANSIENT = (ConnectionError, TimeoutError, RegistryUnavailable)


class DoesNotFit(Exception):
    """The registry says this verifier cannot take the job (build, memory): it goes back to the
    queue for one that can."""


def capabilities() -> dict:
    """What this verifier advertises with each job it takes (its hardware and llama.cpp build)."""
    return steps.jsonable(steps.worker_profile())


def _release_id(value: object) -> int:
    """A task's release id as the broker delivered it. Whoever can write to the queue chooses it,
    and it goes into the verifier API's paths and the work folder's name: a number, or nothing."""
    if type(value) is not int or value < 1:
        raise ValueError(f"a verification task names release {str(value)[:40]!r}, which is not a release id")
    return value


def verify_release(client: VerifierClient, release_id: int, *, last_attempt: bool = True, work_dir: Path | None = None) -> str:
    """Verify one release; returns the final status the registry reports (or why nothing ran)."""
    release_id = _release_id(release_id)
    try:
        claimed = client.claim(release_id, capabilities())
    except RegistryHTTPError as exc:
        if exc.status == 409 and exc.body.get("fits") is False:
            raise DoesNotFit(str(exc)) from None
        if exc.status in (404, 409):  # gone, or another verifier holds it: not this worker's job
            log.warning("release %s: %s", release_id, exc)
            return f"not taken: {exc}"
        raise
    if claimed.get("done"):
        return claimed.get("status", "done")
    try:
        job = Job.from_api(claimed)
    except JobMismatch as exc:  # the registry describes another job than the publisher signed
        log.error("release %s: %s", release_id, exc)
        _quietly(client.report_error, release_id, str(exc), None, "")
        return "error"
    jobs = _jobs_dir()  # and the children kept out of the rest of the verifier's folder
    workdir = Path(tempfile.mkdtemp(prefix=f"assay-job-{release_id}-", dir=work_dir or jobs))
    try:
        fetched = _Fetcher(client, job, workdir)
        for name in CHECK_STEPS:
            if not execute_step(client, job, name, fetched, last_attempt=last_attempt):
                return "error"
        return attest(client, release_id, fetched, last_attempt=last_attempt)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _jobs_dir() -> Path:
    """The jobs' work folders, in the verifier's folder. The children that read a job's files
    (llama.cpp, its tools, the converter, a template's renderer) reach this and nothing else of
    the verifier's folder, where its key and its registration token live (assay/toolchain/confine)."""
    path = verifier_dir() / "jobs"
    path.mkdir(parents=True, exist_ok=True)
    confine.protect(verifier_dir(), except_for=[path])
    return path


class _Fetcher:
    """The job's blobs, fetched from the registry on first use (a job whose steps are all done
    fetches nothing)."""

    def __init__(self, client: VerifierClient, job: Job, workdir: Path):
        self.client, self.job, self.workdir = client, job, workdir
        self._files: JobFiles | None = None
        self._fetched: dict[str, Path] = {}  # digest -> the fetched blob

    def files(self) -> JobFiles:
        if self._files is None:
            base_part_list = list((self.job.base or {}).get("parts") or []) if self.job.base_digest else []
            self._fetch_all([(self.job.digest, self.job.size), *([(self.job.base_digest, self.job.base_size)] if self.job.base_digest else []),
                             *((i["digest"], int(i["size"])) for i in [*self.job.inputs, *base_part_list])])
            candidate = self._fetched[self.job.digest]
            base = self._fetched[self.job.base_digest] if self.job.base_digest else None
            inputs = {input_key(i): self._fetched[i["digest"]] for i in self.job.inputs if i.get("role") != "part"}
            parts = self._stage("candidate", self.job.file_name, candidate, [i for i in self.job.inputs if i.get("role") == "part"])
            base_parts = ()
            if base is not None and base_part_list:
                base_parts = self._stage("base", str(self.job.base.get("file_name") or ""), base, base_part_list)
            self._files = JobFiles(parts[0] if parts else candidate, base_parts[0] if base_parts else base, inputs,
                                   parts, base_parts)
        return self._files

    def _fetch_all(self, blobs: list[tuple[str, int]]) -> None:
        """Every blob the job names, several at once (each hashed on its own thread: a split
        model's parts, the base, the inputs), into the job's blob folder."""
        folder = self.workdir / "blobs"
        _check_room(self.workdir, sum(dict(blobs).values()))

        def fetcher(digest: str, size: int):
            def run(check) -> None:
                self._fetched[digest] = self.client.fetch_blob(digest, size, folder)
            return run
        run_together([fetcher(d, size) for d, size in dict(blobs).items()], limit=self.client.downloads_at_once())

    def _stage(self, key: str, first_name: str, first: Path, others: list[dict]) -> tuple[Path, ...]:
        """A split GGUF's parts (fetched by _fetch_all) linked under their signed names in one
        folder (llama.cpp finds the later parts beside the first by name); () for a single file."""
        if not others:
            return ()
        folder = self.workdir / key / "parts"
        folder.mkdir(parents=True, exist_ok=True)
        staged = []
        for name, blob in [(first_name, first)] + [(p["name"], self._fetched[p["digest"]]) for p in others]:
            if not name or "/" in name or name.startswith("."):
                raise ValueError(f"split part name {name!r} is not a plain file name")
            link = folder / name
            link.unlink(missing_ok=True)
            os.symlink(blob.resolve(), link)
            staged.append(link)
        return tuple(staged)


def _check_room(workdir: Path, size: int) -> None:
    """Refuse a job whose files do not fit on the disk of the work folder. No statement signs a
    file's size: the job's sizes are the registry's word, and a download stops only there (the
    digest decides after it), so a registry naming a huge size would fill the disk of the
    verifier's folder, where its key and registration live."""
    free = shutil.disk_usage(workdir).free
    if size >= free:
        raise AssayError(f"the job's files take {size} bytes, as the registry gives their sizes; the verifier's work folder has "
                         f"{free} bytes free: nothing was fetched")


def execute_step(client: VerifierClient, job: Job, name: str, fetched: _Fetcher, *, last_attempt: bool = True) -> bool:
    """Run one check step and report its signed result; False when the release became `error`."""
    begun = client.begin_step(job.release_id, name)
    if not begun.get("run"):
        return True
    signer = signing_key()
    try:
        failed = _earlier_failed(client, job, name, signer) if begun.get("earlier_failed") else []
        outcome = None if failed else steps.run(name, job, fetched.files())
    except TRANSIENT as exc:
        if not last_attempt:
            log.warning("step %s of release %s: transient %s, will be retried: %s", name, job.release_id, type(exc).__name__, exc)
            _quietly(client.reopen_step, job.release_id, name, f"{type(exc).__name__}: {exc}")
            raise
        _report_crash(client, job.release_id, name, exc, "failed with a transient error and no retries are left")
        raise
    except Exception as exc:  # a bug or an unexpected failure is reported, never a silent pass
        _report_crash(client, job.release_id, name, exc, "failed with an internal error")
        raise
    if failed:
        outcome = steps.StepOutcome(steps.SKIPPED, f"skipped: {', '.join(failed)} did not pass", {})
    else:
        outcome = steps.StepOutcome(outcome.status, outcome.summary, {**outcome.evidence, "worker": capabilities()})
    try:
        client.finish_step(job.release_id, name, attestation.sign_step(job, name, outcome, signer))
    except TRANSIENT as exc:  # the registry failed to take the result (5xx, unreachable): the retry runs the step again
        if last_attempt:  # ...and with none left, the release says so rather than staying "running"
            _report_crash(client, job.release_id, name, exc, "ran, but the registry did not take its result and no retries are left")
        raise
    return outcome.status != steps.ERROR


def _earlier_failed(client: VerifierClient, job: Job, name: str, signer) -> list[str]:
    """The steps before `name` that this verifier's own signed results say failed. The registry
    names them when a step begins, but a step is skipped only on this verifier's own word: a
    registry that said "static did not pass" of a static step that passed would have the probes
    skipped, and a verdict with every check passed or skipped is PASSED."""
    held = replace(job, steps=tuple(client.job(job.release_id).get("steps") or ()))
    results = attestation.own_step_results(held, signer)
    return [n for n in CHECK_STEPS[:CHECK_STEPS.index(name)] if n in results and results[n].result == steps.FAILED]


def _report_crash(client: VerifierClient, release_id: int, step: str | None, exc: BaseException, what: str) -> None:
    log.error("step %s of release %s %s", step, release_id, what, exc_info=exc)
    _quietly(client.report_error, release_id, f"{step or 'attest'} step {what}: {type(exc).__name__}: {exc}", step,
             traceback.format_exc())


def _quietly(call, *args) -> None:
    """Report to the registry; if it cannot be reached, the step stays running for the retry or
    the periodic requeue."""
    try:
        call(*args)
    except (AssayError, ConnectionError) as exc:
        log.warning("could not report to the registry: %s", exc)


def attest(client: VerifierClient, release_id: int, fetched: _Fetcher | None = None, *, last_attempt: bool = True) -> str:
    """Sign the verdict (and provenance when reproduced) over this verifier's own step results;
    the registry checks and logs them and sets the final status."""
    try:
        job = Job.from_api(client.job(release_id))
        signer = signing_key()
        unfinished = [n for n in CHECK_STEPS if (job.step(n) or {}).get("status") not in ("passed", "failed", "skipped")]
        if unfinished:
            _quietly(client.report_error, release_id, f"cannot attest: steps not finished: {', '.join(unfinished)}", None, "")
            return "error"
        results = attestation.own_step_results(job, signer)
        max_age = attestation.step_result_max_age()
        stale = attestation.stale_results(results, max_age)
        if stale:
            _quietly(client.report_error, release_id,
                     f"cannot attest: this verifier's results of {', '.join(stale)} are older than {max_age.total_seconds() / 3600:g} hours "
                     f"({attestation.MAX_AGE_ENV}); it signs a verdict only over fresh checks: verify the release afresh "
                     "(manage.py reverify)", None, "")
            return "error"
        fetched = fetched or _Fetcher(client, job, Path(tempfile.mkdtemp(prefix="assay-attest-", dir=_jobs_dir())))
        level = release_level(job, lambda: fetched.files().candidate, results, registered_keys(client.verifiers(), signer))
        verdict, _ = attestation.sign_verdict(job, results, CHECK_STEPS, level, signer)
        reproduce = results.get("reproduce")
        provenance = attestation.sign_provenance(job, reproduce, signer) if reproduce is not None and reproduce.result == "passed" else None
        return client.post_verdict(release_id, verdict, provenance).get("status", "")
    except TRANSIENT as exc:
        if not last_attempt:
            log.warning("attest of release %s: transient %s, will be retried: %s", release_id, type(exc).__name__, exc)
            raise
        _report_crash(client, release_id, None, exc, "failed: no retries left")
        raise
    except Exception as exc:
        _report_crash(client, release_id, None, exc, "failed")
        raise



def second_opinion(client: VerifierClient, release_id: int, *, work_dir: Path | None = None) -> str:
    """Verify a release again, on this verifier alone, for a registry that asked for a further
    verdict: every check step runs here (nothing is taken from the verifier that decided the
    release's status), each result and the verdict are signed with this verifier's key, and
    all of it is posted at once. Returns PASSED or FAILED, or why nothing was posted."""
    release_id = _release_id(release_id)
    try:
        job = Job.from_api(client.job(release_id))
    except RegistryHTTPError as exc:
        if exc.status in (404, 409):
            log.warning("second opinion on release %s: %s", release_id, exc)
            return f"not taken: {exc}"
        raise
    except JobMismatch as exc:
        log.error("second opinion on release %s: %s", release_id, exc)
        return f"not judged: {exc}"
    signer = signing_key()
    jobs = _jobs_dir()  # and the children kept out of the rest of the verifier's folder
    workdir = Path(tempfile.mkdtemp(prefix=f"assay-second-{release_id}-", dir=work_dir or jobs))
    try:
        fetched = _Fetcher(client, job, workdir)
        envelopes, failed = [], []
        for name in CHECK_STEPS:
            if failed:
                outcome = steps.StepOutcome(steps.SKIPPED, f"skipped: {', '.join(failed)} did not pass", {})
            else:
                outcome = steps.run(name, job, fetched.files())
                if outcome.status == steps.ERROR:  # this verifier cannot judge it: it says nothing
                    log.warning("second opinion on release %s: %s could not run here: %s", release_id, name, outcome.summary)
                    return f"not judged: {name}: {outcome.summary}"
                outcome = steps.StepOutcome(outcome.status, outcome.summary, {**outcome.evidence, "worker": capabilities()})
                if outcome.status == steps.FAILED:
                    failed.append(name)
            envelopes.append(attestation.sign_step(job, name, outcome, signer))
        results = {name: statements.parse_step_result(dsse.parse_envelope(e).payload) for name, e in zip(CHECK_STEPS, envelopes)}
        level = release_level(job, lambda: fetched.files().candidate, results, registered_keys(client.verifiers(), signer))
        verdict, passed = attestation.sign_verdict(job, results, CHECK_STEPS, level, signer)
        reproduce = results["reproduce"]
        provenance = attestation.sign_provenance(job, reproduce, signer) if reproduce.result == "passed" else None
        client.post_second_opinion(release_id, verdict, provenance, envelopes)
        return "PASSED" if passed else "FAILED"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
