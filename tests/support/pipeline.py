"""Helpers for tests that drive the verifier with real Release rows (use with the `db` and
`registry_dirs` fixtures).

The verifier is the real one (verifier.pipeline, its own key in its own folder, registered with
the registry as a verifier would be) and talks to the real registry views over HTTP semantics:
httpx's WSGI transport calls the Django application in this process, inside the test's
transaction, instead of over a socket."""
from __future__ import annotations

import tempfile
from pathlib import Path

import httpx
import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from assay.core import dsse, keys, statements
from assay.core.digest import digest_file
from registry.blobstore import get_blob_store
from registry.models import Blob, Release, VerificationStep
from registry.releases import create_release
from registry.verifiers import register_verifier
from tests.support import factories
from verifier import identity, pipeline
from verifier.job import Job
from verifier.registry_api import VerifierClient

URL = "http://testserver"


def stored_file(path: Path, uploaded_by=None) -> str:
    """Put a file in the blob store the way an upload does (streamed, hashed) and add its Blob row."""
    store, size = get_blob_store(), path.stat().st_size
    upload = store.new_upload()
    with open(path, "rb") as f:
        store.append(upload, 0, f, size)
    digest = digest_file(path)
    Blob.objects.get_or_create(digest=digest, defaults={"size": store.finalize(upload, digest), "uploaded_by": uploaded_by})
    return digest


def publish(publisher, signer, digest: str, *, model: str, quantization: str = "Q4_1", base: dict | None = None,
            recipe: dict | None = None, blake3: str | None = None) -> Release:
    env = factories.release_envelope(signer, digest=digest, namespace=publisher.username, model=model,
                                     quantization=quantization, base=base, recipe=recipe, blake3=blake3)
    return create_release(publisher, None, env)


def base_decided(digest: str) -> None:
    """Take the verification of the original holding `digest` as decided: a quant's job waits while
    its base is undecided (registry/routing.waiting_for_base), and the tests that call this are
    about the quant's steps. Rejected, so the quant's job carries no base verdict, as before."""
    Release.objects.filter(blob_id=digest, base_digest="").update(status=Release.REJECTED)


@pytest.fixture
def alice():
    user = factories.user("alice")
    return user, factories.publisher_key(user)


class _InProcessWSGI(httpx.WSGITransport):
    """The registry's WSGI app in this thread and this test's database transaction (as Django's
    test client runs it: the per-request connection cleanup would close the test's connection)."""

    def handle_request(self, request):
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            response = super().handle_request(request)
            response.read()
            return response
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)


def verifier_client(name: str = "test-verifier") -> VerifierClient:
    """A verifier registered under `name` (its key in ASSAY_VERIFIER_DIR, made on first use) and
    its client, talking to the registry in this process."""
    from registry.models import Verifier

    existing = Verifier.objects.filter(name=name).first()
    if existing is None or existing.keyid != identity.verifier_id():
        _, token = register_verifier(identity.registration_envelope(name), name=name)
        _TOKENS[name] = token
    client = VerifierClient(URL, _TOKENS[name])
    client.http = httpx.Client(base_url=URL, headers=dict(client.http.headers), transport=_InProcessWSGI(app=WSGIHandler()))
    return client


_TOKENS: dict[str, str] = {}


def claim(release_id: int, client: VerifierClient | None = None) -> tuple[VerifierClient, Job | None]:
    client = client or verifier_client()
    answer = client.claim(release_id, {})
    return client, None if answer.get("done") else Job.from_api(answer)


def execute_step(release_id: int, name: str, *, last_attempt: bool = True) -> bool:
    """What the verifier's task does for one step of a release."""
    client, job = claim(release_id)
    if job is None:
        return True
    workdir = Path(tempfile.mkdtemp(prefix="assay-test-job-", dir=pipeline._jobs_dir()))
    return pipeline.execute_step(client, job, name, pipeline._Fetcher(client, job, workdir), last_attempt=last_attempt)


def attest(release_id: int, *, last_attempt: bool = True) -> str:
    client, job = claim(release_id)
    if job is None:
        return "done"
    return pipeline.attest(client, release_id, last_attempt=last_attempt)


def run_all(release: Release) -> Release:
    client, _ = claim(release.pk)
    pipeline.verify_release(client, release.pk, work_dir=pipeline._jobs_dir())
    return Release.objects.get(pk=release.pk)


def step(release: Release, name: str) -> VerificationStep:
    return VerificationStep.objects.get(release=release, name=name)


def trusted_verifier_keys() -> dict:
    public = identity.signing_key().public_key()
    return {keys.key_id(public): public}


def verdict(release: Release) -> statements.VerdictStatement:
    return statements.parse_verdict_statement(dsse.verify_envelope(release.verdict_envelope, trusted_verifier_keys()).payload)


def posted(release: Release, name: str, status: str, summary: str = "ok", evidence: dict | None = None) -> None:
    """A step result as the test verifier would have reported it (signed with its key), without
    running the step: for tests about what comes after a step."""
    from verifier import attestation, steps

    _, job = claim(release.pk)
    outcome = steps.StepOutcome(status, summary, evidence or {})
    VerificationStep.objects.filter(release=release, name=name).update(
        status=status, summary=summary, evidence=evidence or {},
        envelope=attestation.sign_step(job, name, outcome, identity.signing_key()))


@pytest.fixture
def task_client(monkeypatch):
    """The verifier's Celery task, run eagerly, with its client talking to this process's registry."""
    import verifier.tasks

    monkeypatch.setattr(verifier.tasks, "registry_client", lambda: verifier_client())
