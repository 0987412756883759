"""`assay log verify` and `assay log watch` against the registry's real log views, and what a
dishonest registry can do to its database: tamper with entries, truncate, fork.

The CLI's HTTP client is routed into Django's test client (same process, same test transaction).
"""
from __future__ import annotations

import json

import httpx
import pytest
from click.testing import CliRunner
from django.test import Client

from assay import dsse, keys, statements
from assay.canonical import canonical_json
from assay.cli import cli
from assay.client import RegistryClient
from assay.commands import trustlog
from assay.errors import AssayError
from registry import serverkeys, tlog
from registry.accounts import create_user
from registry.models import LogEntry, LogNode, LogState
from registry.publisher_keys import register_key, revoke_key
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
        self.http.close()
        self.http = httpx.Client(base_url=self.url, transport=DjangoTransport())


@pytest.fixture
def assay(monkeypatch, tmp_path):
    monkeypatch.setenv("ASSAY_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("ASSAY_REGISTRY", raising=False)
    monkeypatch.delenv("ASSAY_TOKEN", raising=False)
    monkeypatch.setattr(trustlog, "RegistryClient", LocalRegistryClient)

    def run(*args: str, fails: str | None = None) -> str:
        result = CliRunner().invoke(cli, list(args), standalone_mode=False, catch_exceptions=True)
        if fails is None:
            assert result.exception is None, f"{args}: {result.exception!r}\n{result.output}"
            return result.output
        assert isinstance(result.exception, AssayError), f"{args}: expected a refusal, got {result.exception!r}\n{result.output}"
        assert fails in str(result.exception), str(result.exception)
        return str(result.exception)

    return run


def verdict(i: int) -> dict:
    payload = json.dumps({"_type": "test", "n": i}).encode()
    return dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, serverkeys.verifier_key())


@pytest.fixture
def log():
    """A log with every kind of signer: a publisher's key registration, the registry's revocation
    of it (log key), and verdicts (verifier key)."""
    user = create_user("alice", "pw-alice-123456")
    signer = keys.Signer(keys.generate_private_key())
    payload = statements.build_key_event("register", keyid=signer.keyid, public_key=keys.public_key_to_text(signer.public_key), owner="alice")
    register_key(user, dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, signer))
    for i in range(5):
        tlog.append("verdict", verdict(i))
    revoke_key(user, signer.keyid, "test")
    for i in range(5, 10):
        tlog.append("verdict", verdict(i))
    assert tlog.size() == 12


def rewrite(entries: list[tuple[str, bytes]]) -> None:
    """The registry rebuilds its log from `entries` (as a dishonest operator could)."""
    LogEntry.objects.all().delete()
    LogNode.objects.all().delete()
    LogState.objects.update(size=0)
    tlog.append_many([(kind, json.loads(data)) for kind, data in entries])


def current() -> list[tuple[str, bytes]]:
    return [(e.kind, bytes(e.data)) for e in tlog.entries(0, tlog.size())]


def test_honest_log_verifies_and_grows(assay, log):
    assay("trust", "add", URL, "--yes")
    assert "OK: entries 0..11 verified against checkpoint of size 12" in assay("log", "verify", "-r", URL)
    assay("log", "verify", "-r", URL, "--start", "3", "--end", "7")  # with inclusion proofs
    tlog.append("verdict", verdict(10))
    assert "tree size 13" in assay("log", "watch", "-r", URL, "--count", "1", "--interval", "0")
    assay("log", "verify", "-r", URL)


def test_tampered_entry_changes_the_root(assay, log):
    assay("trust", "add", URL, "--yes")
    # Same envelope, re-encoded: the signature still verifies, the leaf hash does not.
    entry = LogEntry.objects.get(index=4)
    LogEntry.objects.filter(index=4).update(data=json.dumps(json.loads(bytes(entry.data)), indent=1).encode())
    assay("log", "verify", "-r", URL, fails="gives a different root than the signed checkpoint")
    assay("log", "verify", "-r", URL, "--start", "4", "--end", "5", fails="log entry 4 as served is not in the signed checkpoint")


def test_tampered_envelope_fails_its_signature(assay, log):
    assay("trust", "add", URL, "--yes")
    envelope = json.loads(bytes(LogEntry.objects.get(index=7).data))
    envelope["payload"] = verdict(99)["payload"]
    LogEntry.objects.filter(index=7).update(data=canonical_json(envelope))
    assay("log", "verify", "-r", URL, fails="log entry 7 (verdict) does not verify")


def test_swapped_entries_change_the_root(assay, log):
    assay("trust", "add", URL, "--yes")
    a, b = bytes(LogEntry.objects.get(index=2).data), bytes(LogEntry.objects.get(index=3).data)
    LogEntry.objects.filter(index=2).update(data=b)
    LogEntry.objects.filter(index=3).update(data=a)
    assay("log", "verify", "-r", URL, fails="different root")


def test_truncated_log_is_refused(assay, log):
    assay("trust", "add", URL, "--yes")
    assay("log", "verify", "-r", URL)  # the client has now seen size 12
    rewrite(current()[:9])
    assay("log", "verify", "-r", URL, fails="shrank from 12 to 9 entries")
    assay("log", "watch", "-r", URL, "--count", "1", "--interval", "0", fails="shrank from 12 to 9 entries")


def test_fork_at_the_same_size_is_refused(assay, log):
    assay("trust", "add", URL, "--yes")
    assay("log", "watch", "-r", URL, "--count", "1", "--interval", "0")
    entries = current()
    entries[8] = ("verdict", canonical_json(verdict(42)))  # validly signed, but not the history seen
    rewrite(entries)
    assay("log", "watch", "-r", URL, "--count", "1", "--interval", "0", fails="two different roots at size 12")
    assay("log", "verify", "-r", URL, fails="two different roots at size 12")


def test_rewritten_and_extended_history_is_refused(assay, log):
    assay("trust", "add", URL, "--yes")
    assay("log", "verify", "-r", URL)
    entries = current()
    entries[10] = ("verdict", canonical_json(verdict(42)))
    rewrite(entries + [("verdict", canonical_json(verdict(43)))])
    assay("log", "watch", "-r", URL, "--count", "1", "--interval", "0", fails="at size 13 is not an extension of the one seen at size 12")


def test_checkpoint_signed_by_another_key_is_refused(assay, log, settings, tmp_path):
    assay("trust", "add", URL, "--yes")
    settings.ASSAY_KEY_DIR = tmp_path / "other-keys"  # the server's log key is replaced
    serverkeys.log_key.cache_clear()
    assay("log", "watch", "-r", URL, "--count", "1", "--interval", "0", fails="not signed by the pinned log key")


def test_malformed_start_is_refused(assay, log):
    assay("trust", "add", URL, "--yes")
    assay("log", "verify", "-r", URL, "--start", "20", fails="outside the log")
