"""Log privacy: a private namespace's release, verdict and provenance are logged as sealed
entries (a salted commitment signed by the log key); the public log reveals no namespace, model,
file name, digest or verifier output, while a reader of the release checks its statements
against the commitments, and a log auditor still verifies every entry."""
from __future__ import annotations

import json

import pytest
from django.test import Client

from assay.core import dsse, statements
from assay.client.bundle_verify import unseal
from assay.core.errors import VerificationError
from registry import tlog
from registry.bundles import release_bundle
from registry.models import LogEntry, Release
from tests.integration.test_tlog_cli import URL, assay  # noqa: F401  (fixture: the CLI against this registry)
from tests.support import factories as f
from tests.support.factories import registry_dirs  # noqa: F401  (fixture)
from tests.support.pipeline import attest, posted, verifier_client

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("registry_dirs")]
DATA = b"GGUF the secret weights of a private model"
REF = "vault/secret-model:q4"


@pytest.fixture
def private_release(tmp_path):
    verifier_client()
    alice = f.user("alice")
    f.organization(alice, "vault", private=True)
    signer = f.publisher_key(alice)
    rel = f.release(alice, signer, namespace="vault", model="secret-model", data=DATA)
    posted(rel, "static", "passed", "ok", {"summary": {"tensor_types": {"F16": 1}}, "outputs": "THE MODEL SAID: hunter2"})
    posted(rel, "reproduce", "skipped", "original")
    posted(rel, "probes", "passed", "probes passed", {"generated": "a private completion"})
    assert attest(rel.pk) == Release.VERIFIED
    path = tmp_path / "m.gguf"
    path.write_bytes(DATA)
    _, secret = f.token(alice)
    return Release.objects.get(pk=rel.pk), path, secret


def test_the_public_log_holds_only_commitments_for_a_private_namespace(private_release):
    rel, _, _ = private_release
    for index in (rel.release_log_index, rel.verdict_log_index):
        entry = LogEntry.objects.get(index=index)
        text = bytes(entry.data).decode()
        assert entry.kind == "sealed"
        for secret in ("vault", "secret-model", rel.file_name, rel.blob_id[7:], "hunter2", "private completion", "probes passed"):
            assert secret not in text, secret
        sealed = statements.parse_sealed_entry(dsse.parse_envelope(json.loads(text)).payload)
        assert sealed.kind in ("release", "verdict")
    served = Client().get("/api/v1/log/entries", {"start": 0, "end": tlog.size()}).content.decode()
    assert "vault" not in served and "hunter2" not in served and "secret-model" not in served


def test_a_reader_checks_the_statements_against_the_sealed_entries(private_release, assay):  # noqa: F811
    rel, path, secret = private_release
    assay("login", URL, "--token", secret)
    assay("trust", "add", URL, "--yes")
    assert "OK:" in assay("verify", str(path), "--release", REF, "-r", URL)
    assert "OK: entries 0.." in assay("log", "verify", "-r", URL)  # the auditor checks sealed entries' signatures
    bundle = release_bundle(rel)
    assert set(bundle["sealed"]) == {"release", "verdict"}
    with pytest.raises(VerificationError, match="not the one the log's sealed entry commits to"):
        unseal({**bundle["sealed"]["release"], "salt": "00" * 32}, bundle["release_envelope"], "release", "release")
    with pytest.raises(VerificationError, match="is for a release"):
        unseal(bundle["sealed"]["release"], bundle["release_envelope"], "verdict", "verdict")


def test_public_namespaces_are_logged_in_the_clear(tmp_path):
    verifier_client()
    bob = f.user("bob")
    rel = f.release(bob, f.publisher_key(bob), namespace="bob", model="open", data=b"GGUF open weights")
    assert LogEntry.objects.get(index=rel.release_log_index).kind == "release" and rel.seal_salts == {}
    assert release_bundle(rel)["sealed"] == {}
