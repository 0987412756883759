"""`assay log verify` and `assay log watch` against the registry's real log views, and what a
dishonest registry can do to its database: tamper with entries, truncate, fork, log releases
signed by a key of its own, hide a revocation. `assay verify` (the pull path's verification)
is run against the same registry for forks and hidden revocations.

The CLI's HTTP client is routed into Django's test client (same process, same test transaction).
"""
from __future__ import annotations

import importlib
import json

import httpx
import pytest
from click.testing import CliRunner
from django.test import Client

from assay.core import dsse, keys, statements
from assay.core.canonical import canonical_json
from assay.cli.main import cli
from assay.client.http import RegistryClient
from assay.cli import trustlog
from assay.core.errors import AssayError
from registry import serverkeys, tlog
from registry.accounts import create_user
from registry.models import LogEntry, LogNode, LogState, PublisherKey, Release
from registry.publisher_keys import register_key, revoke_key
from tests.support import factories as f
from tests.support.factories import registry_dirs  # noqa: F401  (fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("registry_dirs")]
URL = "http://testserver"


class DjangoTransport(httpx.BaseTransport):
    def __init__(self):
        self.client = Client()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        response = self.client.generic(
            request.method, request.url.raw_path.decode(), data=body, content_type=request.headers.get("content-type", ""),
            headers={k: v for k, v in request.headers.items() if k.lower() == "authorization"},
        )
        return httpx.Response(response.status_code, headers=dict(response.items()), content=response.content)


class LocalRegistryClient(RegistryClient):
    def __init__(self, url, token=None, timeout=300.0):
        super().__init__(url, token, timeout)
        headers = dict(self.http.headers)
        self.http.close()
        self.http = httpx.Client(base_url=self.url, headers=headers, transport=DjangoTransport())


@pytest.fixture
def assay(monkeypatch, tmp_path):
    monkeypatch.setenv("ASSAY_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("ASSAY_REGISTRY", raising=False)
    monkeypatch.delenv("ASSAY_TOKEN", raising=False)
    monkeypatch.setattr(trustlog, "RegistryClient", LocalRegistryClient)
    monkeypatch.setattr(importlib.import_module("assay.cli.main"), "RegistryClient", LocalRegistryClient)

    def run(*args: str, fails: str | None = None) -> str:
        result = CliRunner().invoke(cli, list(args), standalone_mode=False, catch_exceptions=True)
        if fails is None:
            assert result.exception is None, f"{args}: {result.exception!r}\n{result.output}"
            return result.output
        assert isinstance(result.exception, AssayError), f"{args}: expected a refusal, got {result.exception!r}\n{result.output}"
        assert fails in str(result.exception), str(result.exception)
        return str(result.exception)

    return run


def verifier_signer():
    """The test verifier's key (registered with the registry, and logged, on first use)."""
    from tests.support.pipeline import verifier_client
    from verifier import identity

    verifier_client()
    return identity.signing_key()


def verdict(i: int) -> dict:
    """A verdict statement signed by the registered test verifier's key."""
    payload = statements.build_verdict_statement(
        subject_name="m.gguf", subject_digest="sha256:%064x" % i, verifier_id="v", time_created="2026-11-24T00:00:00Z",
        resource_uri="assay:test", policy_uri="urn:test", release_statement_digest="sha256:%064x" % (i + 1000),
        passed=True, checks=[],
    )
    return dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, verifier_signer())


def registration(signer, owner: str) -> dict:
    payload = statements.build_key_event("register", keyid=signer.keyid, public_key=keys.public_key_to_text(signer.public_key), owner=owner)
    return dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, signer)


def release(signer, version: int = 1) -> dict:
    return f.release_envelope(signer, digest="sha256:%064x" % version, namespace="alice", model="m", version=version)


@pytest.fixture
def log():
    """A log with every kind of signer: the verifier's key registration (0, its own key), alice's
    role in her namespace (1, log key), her key's registration (2) and a release (3) signed by
    that key, verdicts (verifier key), the registry's revocation of the key (8, log key), more
    verdicts. Returns the publisher's signer."""
    verifier_signer()
    user = create_user("alice", "pw-alice-123456")
    signer = keys.Signer(keys.generate_private_key())
    register_key(user, registration(signer, "alice"))
    tlog.append("release", release(signer))
    for i in range(4):
        tlog.append("verdict", verdict(i))
    revoke_key(user, signer.keyid, "test")
    for i in range(4, 9):
        tlog.append("verdict", verdict(i))
    assert tlog.size() == 14
    return signer


def rewrite(entries: list[tuple[str, bytes]]) -> None:
    """The registry rebuilds its log from `entries` (as a dishonest operator could)."""
    LogEntry.objects.all().delete()
    LogNode.objects.all().delete()
    LogState.objects.update(size=0)
    tlog.append_many([(kind, json.loads(data)) for kind, data in entries])


def current() -> list[tuple[str, bytes]]:
    return [(e.kind, bytes(e.data)) for e in tlog.entries(0, tlog.size())]


def test_a_registry_without_a_verifier_has_nothing_to_trust_yet(assay):
    """(Found running docker-compose: `trust add` before the verifier had registered said only
    "invalid trust policy ...: verifier_keys must have at least 1 entries".)"""
    assay("trust", "add", URL, "--yes", fails="has no registered verifier yet, so there is no verifier key to pin; start a verifier")
    verifier_signer()
    assert "trusted http://testserver" in assay("trust", "add", URL, "--yes")


def test_honest_log_verifies_and_grows(assay, log):
    assay("trust", "add", URL, "--yes")
    assert "OK: entries 0..13 verified against checkpoint of size 14" in assay("log", "verify", "-r", URL)
    assay("log", "verify", "-r", URL, "--start", "4", "--end", "8")  # with inclusion proofs
    assay("log", "verify", "-r", URL, "--start", "3", "--end", "4")  # the release's key registration is before --start
    tlog.append("verdict", verdict(10))
    assert "tree size 15" in assay("log", "watch", "-r", URL, "--count", "1", "--interval", "0")
    assay("log", "verify", "-r", URL)


def test_tampered_entry_changes_the_root(assay, log):
    assay("trust", "add", URL, "--yes")
    # Same envelope, re-encoded: the signature still verifies, the leaf hash does not.
    entry = LogEntry.objects.get(index=5)
    LogEntry.objects.filter(index=5).update(data=json.dumps(json.loads(bytes(entry.data)), indent=1).encode())
    assay("log", "verify", "-r", URL, fails="gives a different root than the signed checkpoint")
    assay("log", "verify", "-r", URL, "--start", "5", "--end", "6", fails="log entry 5 as served is not in the signed checkpoint")


def test_tampered_envelope_fails_its_signature(assay, log):
    assay("trust", "add", URL, "--yes")
    envelope = json.loads(bytes(LogEntry.objects.get(index=9).data))
    envelope["payload"] = verdict(99)["payload"]
    LogEntry.objects.filter(index=9).update(data=canonical_json(envelope))
    assay("log", "verify", "-r", URL, fails="log entry 9 (verdict) does not verify")


def test_swapped_entries_change_the_root(assay, log):
    assay("trust", "add", URL, "--yes")
    a, b = bytes(LogEntry.objects.get(index=4).data), bytes(LogEntry.objects.get(index=5).data)
    LogEntry.objects.filter(index=4).update(data=b)
    LogEntry.objects.filter(index=5).update(data=a)
    assay("log", "verify", "-r", URL, fails="different root")


def test_truncated_log_is_refused(assay, log):
    assay("trust", "add", URL, "--yes")
    assay("log", "verify", "-r", URL)  # the client has now seen size 14
    rewrite(current()[:10])
    assay("log", "verify", "-r", URL, fails="shrank from 14 to 10 entries")
    assay("log", "watch", "-r", URL, "--count", "1", "--interval", "0", fails="shrank from 14 to 10 entries")


def test_fork_at_the_same_size_is_refused(assay, log):
    assay("trust", "add", URL, "--yes")
    assay("log", "watch", "-r", URL, "--count", "1", "--interval", "0")
    entries = current()
    entries[9] = ("verdict", canonical_json(verdict(42)))  # validly signed, but not the history seen
    rewrite(entries)
    assay("log", "watch", "-r", URL, "--count", "1", "--interval", "0", fails="two different roots at size 14")
    assay("log", "verify", "-r", URL, fails="two different roots at size 14")


def test_rewritten_and_extended_history_is_refused(assay, log):
    assay("trust", "add", URL, "--yes")
    assay("log", "verify", "-r", URL)
    entries = current()
    entries[11] = ("verdict", canonical_json(verdict(42)))
    rewrite(entries + [("verdict", canonical_json(verdict(43)))])
    assay("log", "watch", "-r", URL, "--count", "1", "--interval", "0", fails="at size 15 is not an extension of the one seen at size 14")


def test_checkpoint_signed_by_another_key_is_refused(assay, log, settings, tmp_path):
    assay("trust", "add", URL, "--yes")
    settings.ASSAY_KEY_DIR = tmp_path / "other-keys"  # the server's log key is replaced
    serverkeys.log_key.cache_clear()
    assay("log", "watch", "-r", URL, "--count", "1", "--interval", "0", fails="not signed by the pinned log key")


def test_malformed_start_is_refused(assay, log):
    assay("trust", "add", URL, "--yes")
    assay("log", "verify", "-r", URL, "--start", "20", fails="outside the log")


# ---------------------------------------------------------------- who may sign what

def forge_release(kind: str = "release") -> str:
    """The registry makes a key of its own, serves it as a publisher key, and logs a release
    signed by it (the key is never registered in the log with proof of possession)."""
    signer = keys.Signer(keys.generate_private_key())
    mallory = create_user("mallory", "pw-mallory-123456")
    PublisherKey.objects.create(keyid=signer.keyid, public_key=keys.public_key_to_text(signer.public_key), user=mallory)
    tlog.append(kind, release(signer, 7))
    return signer.keyid


def test_release_signed_by_an_unregistered_key_is_detected(assay, log):
    assay("trust", "add", URL, "--yes")
    keyid = forge_release()
    message = assay("log", "verify", "-r", URL, fails="log entry 15 (release) does not verify")
    assert f"signed by key {keyid}, which has no earlier key-registration entry in the log" in message
    assay("log", "verify", "-r", URL, "--start", "15", fails="no earlier key-registration entry")


def test_entry_kind_is_read_from_the_signed_statement(assay, log):
    """The registry's kind label is not in the leaf hash: a forged release labelled as a key
    registration, or a relabelled entry, is caught by what its statement says."""
    assay("trust", "add", URL, "--yes")
    LogEntry.objects.filter(index=3).update(kind="verdict")
    assay("log", "verify", "-r", URL, fails="the registry labels it 'verdict', but its signed statement is a release")
    LogEntry.objects.filter(index=3).update(kind="release")
    forge_release(kind="key-register")
    assay("log", "verify", "-r", URL, fails="log entry 15 (release) does not verify: the registry labels it 'key-register'")


def test_release_after_the_key_was_revoked_is_detected(assay, log):
    assay("trust", "add", URL, "--yes")
    tlog.append("release", release(log, 2))
    assay("log", "verify", "-r", URL, fails="was revoked in log entry 8, before this release")
    assay("log", "verify", "-r", URL, "--start", "11", fails="was revoked in log entry 8, before this release")


def test_log_verify_remembers_revocations(assay, log, tmp_path):
    assay("trust", "add", URL, "--yes")
    assert "1 revoked publisher key(s) remembered" in " ".join(assay("log", "verify", "-r", URL).split())
    state = json.loads(next((tmp_path / "config").rglob("state.json")).read_text())
    assert state["revoked_keys"][log.keyid]["index"] == 8


# ---------------------------------------------------------------- the pull path (`assay verify`)

DATA = b"GGUF pretend model bytes for the pull path"
REF = "bob/m:q4"


@pytest.fixture
def verified(tmp_path):
    """A verified release bob/m:q4 (log: the verifier's registration, a filler verdict, bob's role,
    key registration, release, verdict) and its file on disk. Returns (signer, file path)."""
    from tests.support.pipeline import attest, posted

    tlog.append("verdict", verdict(0))
    bob = f.user("bob")
    signer = f.publisher_key(bob)
    rel = f.release(bob, signer, namespace="bob", model="m", data=DATA)
    posted(rel, "static", "passed", "ok", {"summary": {"tensor_types": {"F16": 1}}})  # as a verifier reports an original
    posted(rel, "reproduce", "skipped", "original")
    posted(rel, "probes", "passed")
    assert attest(rel.pk) == Release.VERIFIED
    assert tlog.size() == 6
    path = tmp_path / "m.gguf"
    path.write_bytes(DATA)
    return signer, path


def test_pull_path_refuses_a_rewritten_history(assay, verified):
    _, path = verified
    assay("trust", "add", URL, "--yes")
    assert "OK:" in assay("verify", str(path), "--release", REF, "-r", URL)  # the client now holds a checkpoint of size 6
    entries = current()
    entries[0] = ("verdict", canonical_json(verdict(42)))  # history rewritten, the release's entries kept in place
    rewrite(entries + [("verdict", canonical_json(verdict(43)))])
    assay("verify", str(path), "--release", REF, "-r", URL,
          fails="the registry's log at size 7 is not an extension of the one seen at size 6: history was rewritten or forked")
    rewrite(entries)  # the same size as the client saw, another root
    assay("verify", str(path), "--release", REF, "-r", URL, fails="the registry's log has two different roots at size 6: history was forked")


def hide_revocation(keyid: str) -> None:
    """The registry forgets, in its database, that the key was revoked (the log entry stays)."""
    PublisherKey.objects.filter(keyid=keyid).update(revoked_at=None, revoke_reason="", revocation_log_index=None)


def test_pull_path_refuses_a_revoked_key_even_when_the_registry_hides_it(assay, verified):
    signer, path = verified
    assay("trust", "add", URL, "--yes")
    assay("verify", str(path), "--release", REF, "-r", URL)
    revoke_key(PublisherKey.objects.get(keyid=signer.keyid).user, signer.keyid, "key leaked")
    assay("verify", str(path), "--release", REF, "-r", URL, fails=f"publisher key {signer.keyid} was revoked on")
    hide_revocation(signer.keyid)
    assay("verify", str(path), "--release", REF, "-r", URL, fails="does not include that revocation: the registry is hiding it")


def test_log_replay_catches_a_revocation_hidden_from_every_bundle(assay, verified):
    """The client never saw the revocation in a bundle; `assay log verify` finds it in the log."""
    signer, path = verified
    assay("trust", "add", URL, "--yes")
    revoke_key(PublisherKey.objects.get(keyid=signer.keyid).user, signer.keyid, "key leaked")
    hide_revocation(signer.keyid)
    assert "1 revoked publisher key(s) remembered" in " ".join(assay("log", "verify", "-r", URL).split())
    message = assay("verify", str(path), "--release", REF, "-r", URL, fails="the registry is hiding it")
    assert "revoked in log entry 6 (key leaked)" in message
