"""The Hub-compatible endpoints keep the registry's access rules: a private namespace's model does
not exist for an anonymous client (401) or an outsider's token (404), both with the Hub's
RepoNotFound code; a member's token reads it; a release that is not verified is no revision."""
from __future__ import annotations

import pytest
from django.test import Client

from registry.models import Release
from tests.support import factories as f
from tests.support.factories import registry_dirs  # noqa: F401  (fixture)
from tests.support.pipeline import attest, posted, verifier_client

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("registry_dirs")]


@pytest.fixture
def vault():
    verifier_client()
    alice = f.user("alice")
    f.organization(alice, "vault", private=True)
    signer = f.publisher_key(alice)
    rel = f.release(alice, signer, namespace="vault", model="m", data=b"GGUF private weights")
    for step, status in (("static", "passed"), ("reproduce", "skipped"), ("probes", "passed")):
        posted(rel, step, status, "ok", {"summary": {"tensor_types": {"F16": 1}}})
    assert attest(rel.pk) == Release.VERIFIED
    f.release(alice, signer, namespace="vault", model="m", tag="wip", data=b"GGUF not verified yet")
    return alice, Release.objects.get(pk=rel.pk)


def _get(path, secret=None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret else {}
    return Client().get(path, **headers)


def test_a_private_model_is_not_found_without_read_access(vault):
    alice, rel = vault
    anonymous = _get("/api/models/vault/m")
    assert anonymous.status_code == 401 and anonymous["X-Error-Code"] == "RepoNotFound"
    _, outsider = f.token(f.user("mallory"))
    other = _get(f"/vault/m/resolve/main/{rel.file_name}", outsider)
    assert other.status_code == 404 and other["X-Error-Code"] == "RepoNotFound"
    assert "GGUF" not in other.content.decode()


def test_a_member_reads_the_verified_release_and_nothing_else(vault):
    alice, rel = vault
    _, secret = f.token(alice)
    info = _get("/api/models/vault/m", secret).json()
    assert [s["rfilename"] for s in info["siblings"]] == [rel.file_name] and info["private"] is True
    resolved = _get(f"/vault/m/resolve/main/{rel.file_name}", secret)
    assert resolved.status_code == 302 and resolved["Location"].endswith(f"/api/v1/blobs/{rel.blob_id}")
    assert resolved["X-Repo-Commit"] == info["sha"] and resolved["X-Linked-Etag"] == f'"{rel.blob_id[7:]}"'
    wip = _get("/api/models/vault/m/revision/wip", secret)
    assert wip.status_code == 404 and wip["X-Error-Code"] == "RevisionNotFound"
    assert _get("/vault/m/resolve/main/other.gguf", secret)["X-Error-Code"] == "EntryNotFound"
    assert Client().post("/api/models/vault/m").status_code == 405
