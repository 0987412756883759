"""Bad input end to end: each gets a clear error and leaves nothing half-written."""
from __future__ import annotations

import json
import os

import httpx
import pytest

from assay.core import dsse, keys, statements
from assay.client.http import RegistryClient
from assay.core.digest import digest_bytes, digest_file
from tests.support.tiny_gguf import truncated_copy, write_hostile, write_tiny_llama

pytestmark = pytest.mark.slow


def _blob_exists(stack, digest: str) -> bool:
    r = httpx.head(f"{stack.url}/api/v1/blobs/{digest}", headers={"Authorization": f"Bearer {stack.token}"})
    return r.status_code == 200


@pytest.mark.parametrize("kind", ["truncated", "huge_tensor_count", "huge_string", "not_gguf"])
def test_cli_refuses_bad_gguf_before_uploading(stack, user_home, smollm2, tmp_path, kind):
    if kind == "truncated":
        bad = truncated_copy(smollm2, tmp_path / "cut.gguf", 5_000_000)
    elif kind == "not_gguf":
        bad = tmp_path / "notes.gguf"
        bad.write_text("this is not a model")
    else:
        bad = write_hostile(tmp_path, kind)
    result = stack.assay(user_home, "publish", str(bad), "demo/bad:x", check=False)
    assert result.returncode == 1, result
    assert "error:" in result.stderr and "Traceback" not in result.stderr
    assert not _blob_exists(stack, digest_file(bad))


def test_upload_with_wrong_digest_is_discarded(stack):
    headers = {"Authorization": f"Bearer {stack.token}"}
    start = httpx.post(f"{stack.url}/api/v1/uploads", headers=headers).json()
    url = f"{stack.url}/api/v1/uploads/{start['upload_id']}"
    r = httpx.patch(url, content=b"real bytes", headers={**headers, "Content-Range": "bytes 0-9/10"})
    assert r.status_code == 202 and r.json()["offset"] == 10
    wrong = digest_bytes(b"other bytes")
    r = httpx.put(url, params={"digest": wrong}, headers=headers)
    assert r.status_code == 400
    assert "digest mismatch" in r.json()["error"]
    assert not _blob_exists(stack, wrong) and not _blob_exists(stack, digest_bytes(b"real bytes"))
    assert httpx.get(url, headers=headers).status_code == 404  # the upload is gone too


def test_upload_resumes_after_a_cut(stack, tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_CACHE_DIR", str(tmp_path / "cache"))
    blob = tmp_path / "blob.bin"
    blob.write_bytes(os.urandom(20 * 1024 * 1024))
    digest = digest_file(blob)

    class Cut(Exception):
        pass

    sent = 0

    def cut_after_two_chunks(n):
        nonlocal sent
        sent += n
        if sent > 9 * 1024 * 1024:
            raise Cut()

    with RegistryClient(stack.url, stack.token) as client:
        with pytest.raises(Cut):
            client.upload_blob(blob, digest, cut_after_two_chunks, chunk_size=4 * 1024 * 1024)
        state = next((tmp_path / "cache" / "uploads").glob("*.json"))
        upload_id = json.loads(state.read_text())["upload_id"]
        resumed_from = client.get_json(f"/api/v1/uploads/{upload_id}")["offset"]
        assert 8 * 1024 * 1024 <= resumed_from <= sent  # two whole chunks, and what arrived of the third
        progress = []
        result = client.upload_blob(blob, digest, progress.append, chunk_size=4 * 1024 * 1024)
    assert progress[0] >= resumed_from  # the re-run asked the server and started where it stopped
    assert result == {"digest": digest, "size": blob.stat().st_size}


def _publish_raw(stack, home, path, reference):
    """Publish bypassing the CLI's local checks, as a hostile publisher could."""
    signer = keys.Signer(keys.load_private_key(home / "config" / "keys" / "default.key", None))
    ns, model, tag = reference.split("/")[0], reference.split("/")[1].split(":")[0], reference.split(":")[1]
    with RegistryClient(stack.url, stack.token) as client:
        digest = digest_file(path)
        client.upload_blob(path, digest)
        payload = statements.build_release_statement(
            subject_name=path.name, subject_digest=digest, namespace=ns, model=model, tag=tag, version=1,
            quantization="F32", base=None, recipe=None, model_card_digest=None, created=None,
        )
        return client.create_release(dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, signer))


def test_worker_rejects_truncated_gguf_and_pull_refuses_it(stack, user_home, tmp_path):
    good = tmp_path / "tiny.gguf"
    write_tiny_llama(good)
    bad = truncated_copy(good, tmp_path / "tiny-cut.gguf", good.stat().st_size - 7)
    _publish_raw(stack, user_home, bad, "demo/cut:v1")
    status = stack.wait_status("demo/cut:v1")
    assert status["status"] == "rejected", status
    static = next(s for s in status["steps"] if s["name"] == "static")
    assert static["status"] == "failed" and "truncated" in static["summary"]
    out = user_home / "out"
    result = stack.assay(user_home, "pull", "demo/cut:v1", "-o", str(out) + "/", check=False)
    assert result.returncode != 0
    assert "not verified" in result.stderr and "rejected" in result.stderr
    assert not out.exists() or not any(out.iterdir())
    blob = httpx.get(f"{stack.url}/api/v1/blobs/{digest_file(bad)}")
    assert blob.status_code in (403, 404)  # the server refuses too


def test_pull_interrupted_then_resumed(stack, smollm2, published_smollm2, user_home, tmp_path):
    digest = digest_file(smollm2)

    class Cut(Exception):
        pass

    got = 0

    def cut(n):
        nonlocal got
        got += n
        if got > 30 * 1024 * 1024:
            raise Cut()

    partial = user_home / "cache" / "partial"
    with RegistryClient(stack.url, stack.token) as client:
        import hashlib

        name = f"{hashlib.sha256(client.url.encode()).hexdigest()[:16]}-{digest[7:]}.part"
        with pytest.raises(Cut):
            client.download_blob(digest, partial / name, cut)
    cut_size = (partial / name).stat().st_size
    assert 0 < cut_size < smollm2.stat().st_size
    target = user_home / "resumed"
    stack.assay(user_home, "pull", "demo/smollm2:q4_1", "-o", str(target) + "/")
    assert digest_file(target / smollm2.name) == digest
    assert not (partial / name).exists()
    assert " 206 " in stack.logs()  # the second run asked for the rest with a Range request
