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
from registry.logbrowser import describe
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


def _replayed_roles(keys: list[str] | None = None, namespace: str = "") -> KeyState:
    """The role events of the whole log, each checked against the log key, as a client learns
    them; then `namespace`'s role-blinding keys pinned (their links checked against the log)."""
    state = KeyState()
    log_public = log_key().public_key()
    for e in LogEntry.objects.filter(kind="namespace-role").order_by("index"):
        verified = dsse.verify_envelope(json.loads(bytes(e.data)), {key_id(log_public): log_public})
        state.set_role(e.index, statements.parse_role_event(verified.payload))
    if keys:
        state.pin_blinding(namespace, keys)
    return state


def _blinded_events() -> list[statements.RoleEvent]:
    events = [statements.parse_role_event(p) for _, k, p in _logged_payloads() if k == "namespace-role"]
    return [e for e in events if statements.is_blinded(e.namespace)]


def test_a_private_namespace_and_its_members_are_named_nowhere_in_the_log(private_release):
    rel, _, _ = private_release
    carol, dave = f.user("carol"), f.user("dave")
    vault = Organization.objects.get(name="vault")
    set_member(vault, carol, "publisher")
    set_member(vault, dave, "reader")
    [key] = Namespace.objects.get(name="vault").role_blinding_keys
    for index, kind, payload in _logged_payloads():
        text = payload.decode()
        assert "vault" not in text and "secret-model" not in text and "hunter2" not in text, (index, kind)
    assert [e.role for e in _blinded_events()] == ["owner", "publisher", "reader"]
    assert len({e.namespace for e in _blinded_events()}) == 1
    last = LogEntry.objects.filter(kind="namespace-role").order_by("-index").first()
    assert describe(bytes(last.data))[0] == "role reader in a private namespace (blinded names)"  # the /log/ page
    # Without the key, a reader of the log learns nothing of vault; with it, every role in order.
    assert _replayed_roles().role_at("vault", "carol", tlog.size()) == "none"
    state = _replayed_roles([key], "vault")
    assert [state.role_at("vault", m, tlog.size()) for m in ("alice", "carol", "dave")] == ["owner", "publisher", "reader"]
    # Readers get the key in the release's bundle; a public namespace's bundle carries none.
    assert release_bundle(rel)["role_blinding"] == {"namespace": "vault", "keys": [key]}
    assert sync_roles() == []  # the log already says what the database says


def test_a_member_who_leaves_keeps_an_old_key_that_shows_nothing_new(private_release):
    """dave, a reader, knew vault's key; once removed, vault's events are blinded with a new key,
    linked to the old by a logged "rekeyed" event that only a holder of both keys can check."""
    rel, _, _ = private_release
    carol, dave, erin = f.user("carol"), f.user("dave"), f.user("erin")
    vault = Organization.objects.get(name="vault")
    set_member(vault, dave, "reader")
    [old] = Namespace.objects.get(name="vault").role_blinding_keys
    remove_member(vault, dave)
    set_member(vault, carol, "publisher")
    set_member(vault, erin, "reader")
    keys = Namespace.objects.get(name="vault").role_blinding_keys
    assert len(keys) == 2 and keys[0] == old
    assert [e.role for e in _blinded_events()] == ["owner", "reader", "none", "rekeyed", "owner", "publisher", "reader"]
    now = tlog.size()
    as_dave_sees_it = _replayed_roles([old], "vault")
    assert [as_dave_sees_it.role_at("vault", m, now) for m in ("alice", "dave", "carol", "erin")] == ["owner", "none", "none", "none"]
    state = _replayed_roles(keys, "vault")
    assert [state.role_at("vault", m, now) for m in ("alice", "dave", "carol", "erin")] == ["owner", "none", "publisher", "reader"]
    assert release_bundle(rel)["role_blinding"] == {"namespace": "vault", "keys": keys}
    assert sync_roles() == []  # nothing under the old key is taken for a member who left


def test_a_reader_pins_the_keys_and_refuses_a_registry_that_changes_them(private_release, assay):  # noqa: F811
    rel, path, secret = private_release
    assay("login", URL, "--token", secret)
    assay("trust", "add", URL, "--yes")
    assert "OK:" in assay("verify", str(path), "--release", REF, "-r", URL)
    ns = Namespace.objects.get(name="vault")
    keys = ns.role_blinding_keys
    Namespace.objects.filter(pk=ns.pk).update(role_blinding_keys=["5a" * 32])  # a registry showing a second history
    sync_roles()  # logs the members again under that key: alice may publish in that history
    assay("verify", str(path), "--release", REF, "-r", URL, fails="do not continue the ones this client pinned")
    Namespace.objects.filter(pk=ns.pk).update(role_blinding_keys=[*keys, "6b" * 32])  # a new key with no logged link
    assay("verify", str(path), "--release", REF, "-r", URL, fails="has no logged 'rekeyed' event")
    Namespace.objects.filter(pk=ns.pk).update(role_blinding_keys=keys)
    assert "OK:" in assay("verify", str(path), "--release", REF, "-r", URL)
    # An honest replacement (a member left) is taken: the link is in the log.
    dave = f.user("dave")
    vault = Organization.objects.get(name="vault")
    set_member(vault, dave, "reader")
    remove_member(vault, dave)
    assert "OK:" in assay("verify", str(path), "--release", REF, "-r", URL)


def test_a_private_namespace_from_before_blinding_keeps_its_named_events_and_goes_on_blinded():
    """Its earlier events stay in the log by name; the migration gives it a key, sync_roles logs
    its current roles blinded, and a client with the key reads both histories in log order."""
    alice, carol = f.user("alice"), f.user("carol")
    org = f.organization(alice, "legacy", members={carol: "publisher"})
    Namespace.objects.filter(name="legacy").update(private=True)  # as a private namespace was made before
    assert Namespace.objects.get(name="legacy").role_blinding_keys == []
    import_module("registry.migrations.0013_namespace_role_blinding_keys").give_private_namespaces_a_key(django_apps, None)
    keys = Namespace.objects.get(name="legacy").role_blinding_keys
    assert len(keys) == 1 and len(keys[0]) == 64
    logged = sync_roles()
    assert sorted(role for _, _, role in logged) == ["owner", "publisher"]
    assert all(statements.is_blinded(ns) for ns, _, _ in logged)  # nothing new by name, no "none" for the named events
    assert sync_roles() == []
    before_removal = tlog.size()
    org.refresh_from_db()
    remove_member(org, carol)
    state = _replayed_roles(Namespace.objects.get(name="legacy").role_blinding_keys, "legacy")
    assert state.role_at("legacy", "carol", before_removal) == "publisher"
    assert state.role_at("legacy", "carol", tlog.size()) == "none"
    assert _replayed_roles().role_at("legacy", "carol", tlog.size()) == "publisher"  # the named history alone is stale
