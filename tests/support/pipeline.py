"""Helpers for tests that drive verifier.pipeline with real Release rows (use with the `db` and
`registry_dirs` fixtures)."""
from __future__ import annotations

from pathlib import Path

import pytest

from assay import dsse, keys, statements
from assay.digest import digest_file
from registry.blobstore import get_blob_store
from registry.models import Blob, Release, VerificationStep
from registry.releases import create_release
from registry.serverkeys import verifier_key
from tests.support import factories
from verifier import pipeline


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
            recipe: dict | None = None) -> Release:
    env = factories.release_envelope(signer, digest=digest, namespace=publisher.username, model=model,
                                     quantization=quantization, base=base, recipe=recipe)
    return create_release(publisher, None, env)


@pytest.fixture
def alice():
    user = factories.user("alice")
    return user, factories.publisher_key(user)


def run_all(release: Release) -> Release:
    for name in pipeline.CHECK_STEPS:
        pipeline.execute_step(release.pk, name)
    pipeline.attest(release.pk)
    return Release.objects.get(pk=release.pk)


def step(release: Release, name: str) -> VerificationStep:
    return VerificationStep.objects.get(release=release, name=name)


def verdict(release: Release) -> statements.VerdictStatement:
    trusted = {keys.key_id(verifier_key().public_key()): verifier_key().public_key()}
    return statements.parse_verdict_statement(dsse.verify_envelope(release.verdict_envelope, trusted).payload)
