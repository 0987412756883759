"""Log privacy: a private namespace's release, verdict and provenance are logged as sealed
entries (a salted commitment signed by the log key); the public log reveals no namespace, model,
file name, digest or verifier output, while a reader of the release checks its statements
against the commitments, and a log auditor still verifies every entry."""
from __future__ import annotations

import base64
import json
from importlib import import_module

import pytest
from django.apps import apps as django_apps
from django.test import Client

from assay.core import dsse, statements
from assay.core.keys import key_id
from assay.client.bundle_verify import unseal
from assay.client.keystate import KeyState
from assay.core.errors import VerificationError
from registry import tlog
from registry.accounts import remove_member, set_member
from registry.bundles import release_bundle
from registry.models import LogEntry, Namespace, Organization, Release
from registry.roles import sync_roles
from registry.serverkeys import log_key
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
        text = dsse.parse_envelope(json.loads(bytes(entry.data))).payload.decode()  # the payload, decoded
        assert entry.kind == "sealed"
        for secret in ("vault", "secret-model", rel.file_name, rel.blob_id[7:], "hunter2", "private completion", "probes passed"):
            assert secret not in text, secret
        sealed = statements.parse_sealed_entry(text.encode())
        assert sealed.kind in ("release", "verdict")
    served = Client().get("/api/v1/log/entries", {"start": 0, "end": tlog.size()}).json()["entries"]
    payloads = [dsse.parse_envelope(json.loads(base64.b64decode(e["data"]))).payload.decode() for e in served]
    assert payloads and not any(s in p for p in payloads for s in ("vault", "hunter2", "secret-model", rel.file_name))


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


def _logged_payloads():
    """(index, kind, decoded DSSE payload) of every log entry: what anyone reading the log sees."""
    for e in LogEntry.objects.order_by("index"):
        yield e.index, e.kind, dsse.parse_envelope(json.loads(bytes(e.data))).payload


def _replayed_roles(key: str | None = None, namespace: str = "") -> KeyState:
    """The role events of the whole log, each checked against the log key, as a client learns them."""
    state = KeyState()
    if key:
        state.pin_blinding(namespace, key)
    log_public = log_key().public_key()
    for e in LogEntry.objects.filter(kind="namespace-role").order_by("index"):
        verified = dsse.verify_envelope(json.loads(bytes(e.data)), {key_id(log_public): log_public})
        state.set_role(e.index, statements.parse_role_event(verified.payload))
    return state


def test_a_private_namespace_and_its_members_are_named_nowhere_in_the_log(private_release):
    rel, _, _ = private_release
    carol, dave = f.user("carol"), f.user("dave")
    vault = Organization.objects.get(name="vault")
    set_member(vault, carol, "publisher")
    set_member(vault, dave, "reader")
    remove_member(vault, dave)
    key = vault.namespace.role_blinding_key
    assert len(key) == 64
    for index, kind, payload in _logged_payloads():
        text = payload.decode()
        assert "vault" not in text and "secret-model" not in text and "hunter2" not in text, (index, kind)
    blinded = [statements.parse_role_event(p) for _, k, p in _logged_payloads() if k == "namespace-role"
               and statements.is_blinded(statements.parse_role_event(p).namespace)]
    assert [e.role for e in blinded] == ["owner", "publisher", "reader", "none"]
    assert len({e.namespace for e in blinded}) == 1
    # Without the key, a reader of the log learns nothing of vault; with it, every role in order.
    assert _replayed_roles().role_at("vault", "carol", tlog.size()) == "none"
    state = _replayed_roles(key, "vault")
    assert [state.role_at("vault", m, tlog.size()) for m in ("alice", "carol", "dave")] == ["owner", "publisher", "none"]
    # Readers get the key in the release's bundle; a public namespace's bundle carries none.
    assert release_bundle(rel)["role_blinding"] == {"namespace": "vault", "key": key}
    assert sync_roles() == []  # the log already says what the database says


def test_a_reader_pins_the_key_and_refuses_a_registry_that_changes_it(private_release, assay):  # noqa: F811
    rel, path, secret = private_release
    assay("login", URL, "--token", secret)
    assay("trust", "add", URL, "--yes")
    assert "OK:" in assay("verify", str(path), "--release", REF, "-r", URL)
    ns = Namespace.objects.get(name="vault")
    old_key = ns.role_blinding_key
    Namespace.objects.filter(pk=ns.pk).update(role_blinding_key="5a" * 32)  # a registry showing a second history
    sync_roles()  # logs the members again under the new key: alice may publish in that history
    assay("verify", str(path), "--release", REF, "-r", URL, fails="another role-blinding key than the one this client pinned")
    Namespace.objects.filter(pk=ns.pk).update(role_blinding_key=old_key)
    assert "OK:" in assay("verify", str(path), "--release", REF, "-r", URL)


def test_a_private_namespace_from_before_blinding_keeps_its_named_events_and_goes_on_blinded():
    """Its earlier events stay in the log by name; the migration gives it a key, sync_roles logs
    its current roles blinded, and a client with the key reads both histories in log order."""
    alice, carol = f.user("alice"), f.user("carol")
    org = f.organization(alice, "legacy", members={carol: "publisher"})
    Namespace.objects.filter(name="legacy").update(private=True)  # as a private namespace was made before
    assert Namespace.objects.get(name="legacy").role_blinding_key == ""
    import_module("registry.migrations.0013_namespace_role_blinding_key").give_private_namespaces_a_key(django_apps, None)
    key = Namespace.objects.get(name="legacy").role_blinding_key
    assert len(key) == 64
    logged = sync_roles()
    assert sorted(role for _, _, role in logged) == ["owner", "publisher"]
    assert all(statements.is_blinded(ns) for ns, _, _ in logged)  # nothing new by name, no "none" for the named events
    assert sync_roles() == []
    before_removal = tlog.size()
    org.refresh_from_db()
    remove_member(org, carol)
    state = _replayed_roles(key, "legacy")
    assert state.role_at("legacy", "carol", before_removal) == "publisher"
    assert state.role_at("legacy", "carol", tlog.size()) == "none"
    assert _replayed_roles().role_at("legacy", "carol", tlog.size()) == "publisher"  # the named history alone is stale
