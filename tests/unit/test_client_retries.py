"""The HTTP client against a server whose connections fail: idempotent requests are tried again
with backoff (a keep-alive connection closed as it was reused made `publish --wait` die before),
a POST is not, and a download cut in the middle resumes by itself with a Range request."""
from __future__ import annotations

import hashlib

import pytest

from assay.client.http import RegistryClient
from assay.core.digest import format_digest
from assay.core.errors import AssayError


def test_a_get_is_tried_again_when_the_connection_drops(flaky):
    server = flaky(drops=2)
    with RegistryClient(server.url) as client:
        assert client.whoami()["username"] == "alice"
    assert len(server.requests) == 3


def test_a_post_is_not_repeated(flaky):
    server = flaky(drops=1)
    with RegistryClient(server.url) as client, pytest.raises(AssayError, match="cannot reach the registry"):
        client.post_json("/api/v1/keys", {"envelope": {}})
    assert len(server.requests) == 1


def test_a_registry_that_stays_down_is_one_clear_error(flaky, monkeypatch):
    import assay.client.http

    monkeypatch.setattr(assay.client.http, "RETRY_DELAYS", (0.01,) * 5)
    server = flaky(drops=100)
    with RegistryClient(server.url) as client, pytest.raises(AssayError, match="cannot reach the registry"):
        client.whoami()
    assert len(server.requests) == 6  # the first try and five more, with backoff


def test_a_download_cut_in_the_middle_resumes_by_itself(flaky, tmp_path):
    blob = bytes(range(256)) * 4096
    digest = format_digest(hashlib.sha256(blob).hexdigest())
    server = flaky(drops=1, blob=blob)
    seen = []
    with RegistryClient(server.url) as client:
        assert client.download_blob(digest, tmp_path / "x.part", seen.append, expected_size=len(blob)) == digest
    assert (tmp_path / "x.part").read_bytes() == blob
    assert sum(seen) == len(blob)  # progress counts each byte once across the retry
    assert len(server.requests) == 2


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_a_download_cut_without_a_content_length_resumes_too(flaky, tmp_path, framing):
    """A chunked body cut inside a chunk, or a body read to the close that stops before the signed
    size, is a dropped connection to resume, not tampered bytes to discard."""
    blob = bytes(range(256)) * 4096
    digest = format_digest(hashlib.sha256(blob).hexdigest())
    server = flaky(drops=1, blob=blob, framing=framing)
    with RegistryClient(server.url) as client:
        assert client.download_blob(digest, tmp_path / "x.part", expected_size=len(blob)) == digest
    assert (tmp_path / "x.part").read_bytes() == blob
    assert len(server.requests) == 2 and f"bytes={len(blob) // 2}-" in server.requests_headers[1].lower()


def test_a_resume_answered_with_another_range_starts_over(flaky, tmp_path, monkeypatch):
    import assay.client.http

    monkeypatch.setattr(assay.client.http, "RETRY_DELAYS", (0.01,) * 5)
    blob = bytes(range(256)) * 4096
    digest = format_digest(hashlib.sha256(blob).hexdigest())
    server = flaky(drops=1, blob=blob, range_shift=100)
    with RegistryClient(server.url) as client:
        assert client.download_blob(digest, tmp_path / "x.part", expected_size=len(blob)) == digest
    assert (tmp_path / "x.part").read_bytes() == blob
    assert len(server.requests) == 3 and "range:" not in server.requests_headers[2].lower()


def test_a_download_alone_never_imports_httpx(flaky, tmp_path):
    """A pull's download runs on a plain socket (assay/client/fastget.py); httpx (whose import
    pulls in click and rich, most of a short process's start) is imported only for the JSON API,
    http.client (with email's parser) not at all. Fifty pulls at once pay each import fifty times."""
    import subprocess
    import sys

    blob = b"weights" * 1000
    digest = format_digest(hashlib.sha256(blob).hexdigest())
    server = flaky(drops=0, blob=blob)
    script = (
        "import sys; from pathlib import Path; from assay.client.http import RegistryClient\n"
        "with RegistryClient(sys.argv[1], 'token') as c:\n"
        "    assert c.download_blob(sys.argv[2], Path(sys.argv[3])) == sys.argv[2]\n"
        "print(sorted(m for m in ('httpx', 'rich', 'click', 'http.client', 'email.parser') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, server.url, digest, str(tmp_path / "blob")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert (tmp_path / "blob").read_bytes() == blob
    assert "authorization: bearer token" in server.requests_headers[-1].lower()


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999", "http://", "https://:80/x"])
def test_a_registry_url_that_is_not_a_url_is_refused_at_once(url):
    with pytest.raises(AssayError, match="is not a valid URL"):
        RegistryClient(url)


def test_a_blake3_checked_download_imports_neither_openssl_nor_json_nor_typing(flaky, tmp_path):
    """A pull checked by BLAKE3 (every release a current verifier vouches for) needs no SHA-256:
    hashlib (OpenSSL), json and typing stay unimported, as fifty short processes at once pay for
    each import (about 9 ms of a start of 38 here)."""
    import subprocess
    import sys

    from assay.core.digest import digest_bytes

    blob = b"weights" * 1000
    from blake3 import blake3
    check = f"blake3:{blake3(blob).hexdigest()}"
    server = flaky(drops=0, blob=blob)
    script = (
        "import sys; from pathlib import Path; from assay.client.http import RegistryClient\n"
        "with RegistryClient(sys.argv[1], 'token') as c:\n"
        "    assert c.download_blob(sys.argv[2], Path(sys.argv[3]), algorithm='blake3') == sys.argv[4]\n"
        "print(sorted(m for m in ('hashlib', '_hashlib', 'json', 'typing', 'httpx') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, server.url, digest_bytes(blob), str(tmp_path / "blob"), check],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert (tmp_path / "blob").read_bytes() == blob
