"""Blob storage on S3-compatible object storage, against a real SeaweedFS server started here
(tests/support/seaweed.py): chunked, resumable uploads with the same offset rules as the local
folder, verify-before-rename, and downloads from pre-signed URLs (Range included) that the Assay
client follows; end to end with a real verifier worker that fetches its inputs the same way."""
from __future__ import annotations

import hashlib
import io
import json
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.test import Client

from assay.client.http import RegistryClient
from assay.core.errors import DigestError
from registry.blobstore import ChunkTooLong, UploadError, get_blob_store
from registry.uploads import StorageFailure
from registry.models import Blob
from tests.support import factories as f
from tests.support.factories import registry_dirs  # noqa: F401  (fixture)
from tests.support.seaweed import SeaweedFS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def seaweed():
    server = SeaweedFS().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3(seaweed, settings):
    for name, value in seaweed.env().items():
        setattr(settings, name, value)
    store = get_blob_store()
    assert type(store).__name__ == "S3BlobStore"
    return store


def test_a_missing_bucket_is_made_on_first_use(seaweed, settings):
    """A fresh object store (docker-compose's SeaweedFS) has no bucket: the registry makes it."""
    import secrets

    for name, value in seaweed.env().items():
        setattr(settings, name, value)
    settings.ASSAY_S3_BUCKET = f"assay-fresh-{secrets.token_hex(4)}"
    store = get_blob_store()
    seaweed.client().head_bucket(Bucket=settings.ASSAY_S3_BUCKET)  # raises if it is missing
    upload = store.new_upload()
    store.append(upload, 0, io.BytesIO(b"GGUF"), 4)
    assert store.finalize(upload, digest_of(b"GGUF")) == 4 and store.exists(digest_of(b"GGUF"))


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_chunked_upload_resume_and_verify_before_rename(s3):
    data = bytes(range(256)) * (48 * 1024)  # 12 MiB: parts, a tail, small chunks between
    upload = s3.new_upload()
    assert s3.upload_offset(upload) == 0
    offset = s3.append(upload, 0, io.BytesIO(data[:1000]), 1000)  # smaller than a part: kept as the tail
    with pytest.raises(UploadError, match="resume from 1000"):
        s3.append(upload, 0, io.BytesIO(data[:10]), 10)  # a duplicated chunk is refused
    offset = s3.append(upload, offset, io.BytesIO(data[1000:7 * 2**20]), 7 * 2**20 - 1000)
    with pytest.raises(ChunkTooLong):
        s3.append(upload, offset, io.BytesIO(data[offset:]), None, limit=10)  # none of it kept
    assert s3.upload_offset(upload) == offset == 7 * 2**20
    offset = s3.append(upload, offset, io.BytesIO(data[offset:]), None, limit=len(data))
    assert offset == len(data) == s3.upload_offset(upload)
    assert s3.finalize(upload, digest_of(data)) == len(data)
    assert s3.exists(digest_of(data)) and s3.size(digest_of(data)) == len(data)
    assert b"".join(s3.iter_range(digest_of(data), 100, 199)) == data[100:200]
    part = httpx.get(s3.direct_url(digest_of(data)), headers={"Range": "bytes=5000000-5000099"})
    assert part.status_code == 206 and part.content == data[5000000:5000100]
    with pytest.raises(UploadError):
        s3.upload_offset(upload)  # gone once finalized


def test_a_wrong_digest_is_discarded_and_nothing_is_addressed(s3):
    upload = s3.new_upload()
    s3.append(upload, 0, io.BytesIO(b"tampered"), 8)
    with pytest.raises(DigestError, match="upload discarded"):
        s3.finalize(upload, digest_of(b"something else"))
    assert not s3.exists(digest_of(b"tampered")) and not s3.exists(digest_of(b"something else"))
    with pytest.raises(UploadError):
        s3.upload_offset(upload)
    empty = s3.new_upload()
    assert s3.finalize(empty, digest_of(b"")) == 0 and s3.size(digest_of(b"")) == 0
    aborted = s3.new_upload()
    s3.append(aborted, 0, io.BytesIO(b"x" * 10), 10)
    s3.abort(aborted)
    with pytest.raises(UploadError):
        s3.upload_offset(aborted)


def _store_fails(operation: str):
    """What botocore raises when the store answers 500 to `operation` (after its own retries)."""
    from botocore.exceptions import ClientError

    def fail(*args, **kwargs):
        raise ClientError({"Error": {"Code": "InternalError", "Message": "We encountered an internal error"}}, operation)
    return fail


def test_a_finalize_the_store_fails_after_completing_is_taken_up_by_the_next(s3, monkeypatch):
    """The multipart upload was completed, then the copy to the content address failed (a 503 to
    the client): the upload is kept whole (not discarded, as before), its offset is its size, a
    further chunk is refused, and the same finalize again gives it its address."""
    data = bytes(range(256)) * (24 * 1024) + b"tail" * 250  # 6 MiB and 1,000 bytes: a part and a tail
    upload = s3.new_upload()
    s3.append(upload, 0, io.BytesIO(data), len(data))
    monkeypatch.setattr(s3.s3, "copy", _store_fails("CopyObject"))
    with pytest.raises(StorageFailure, match="InternalError"):
        s3.finalize(upload, digest_of(data))
    assert not s3.exists(digest_of(data))
    assert s3.upload_offset(upload) == len(data)
    with pytest.raises(UploadError, match="complete"):
        s3.append(upload, len(data), io.BytesIO(b"more"), 4)
    monkeypatch.undo()
    assert s3.finalize(upload, digest_of(data)) == len(data)
    assert s3.size(digest_of(data)) == len(data)
    with pytest.raises(UploadError):
        s3.upload_offset(upload)


def test_a_finalize_that_fails_before_completing_sends_the_tail_once(s3, monkeypatch):
    """The tail became the last part, then completing failed: the next finalize completes the
    same parts, with the tail in the object once."""
    data = bytes(range(256)) * (24 * 1024) + b"tail" * 250
    upload = s3.new_upload()
    s3.append(upload, 0, io.BytesIO(data), len(data))
    monkeypatch.setattr(s3.s3, "complete_multipart_upload", _store_fails("CompleteMultipartUpload"))
    with pytest.raises(StorageFailure):
        s3.finalize(upload, digest_of(data))
    assert s3.upload_offset(upload) == len(data)
    monkeypatch.undo()
    assert s3.finalize(upload, digest_of(data)) == len(data)
    assert b"".join(s3.iter_range(digest_of(data), len(data) - 1000, len(data) - 1)) == b"tail" * 250


@pytest.mark.django_db
def test_api_upload_and_download_through_a_presigned_url(s3, registry_dirs):  # noqa: F811
    alice = f.user("alice")
    _, secret = f.token(alice)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    c, data = Client(), b"GGUF" + bytes(range(256)) * 4000
    upload_id = c.post("/api/v1/uploads", **headers).json()["upload_id"]
    r = c.patch(f"/api/v1/uploads/{upload_id}", data, content_type="application/octet-stream",
                HTTP_CONTENT_RANGE=f"bytes 0-{len(data) - 1}/{len(data)}", **headers)
    assert r.status_code == 202, r.content
    r = c.put(f"/api/v1/uploads/{upload_id}?digest={digest_of(data)}", **headers)
    assert r.status_code == 201 and Blob.objects.get(pk=digest_of(data)).size == len(data)
    r = c.get(f"/api/v1/blobs/{digest_of(data)}", **headers)
    assert r.status_code == 302 and r["Docker-Content-Digest"] == digest_of(data)
    assert httpx.get(r["Location"]).content == data  # the bytes come from the object store
    assert parse_qs(urlsplit(r["Location"]).query)["X-Amz-Expires"] == ["600"]  # withdrawn access ends within minutes
    assert c.get(f"/api/v1/blobs/{digest_of(data)}").status_code in (403, 404)  # strangers get no URL
    head = c.head(f"/api/v1/blobs/{digest_of(data)}", **headers)
    assert head.status_code == 200 and head["Content-Length"] == str(len(data))
    assert json.loads(c.get(f"/api/v1/blobs/{digest_of(data)}", HTTP_RANGE="bytes=99999999-", **headers).content)["error"]


@pytest.mark.django_db
def test_a_client_on_the_registrys_network_asks_for_the_internal_address(seaweed, s3, registry_dirs, settings):  # noqa: F811
    """With a public endpoint that this network cannot reach (docker-compose's `localhost:8333`,
    seen from a verifier's container), a client sending `Assay-Storage-Address: internal` gets
    URLs on the store's own address, for downloads and for upload parts; others the public one."""
    unreachable = f"http://127.0.0.2:{seaweed.s3_port}"  # the store listens on 127.0.0.1 only
    settings.ASSAY_S3_PUBLIC_ENDPOINT = unreachable
    alice = f.user("alice")
    _, secret = f.token(alice)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    internal = {**headers, "HTTP_ASSAY_STORAGE_ADDRESS": "internal"}
    c, data = Client(), b"GGUF" + bytes(range(256)) * 100
    started = c.post("/api/v1/uploads", **headers).json()
    part = json.dumps({"offset": 0, "size": len(data), "final": True})
    assert c.post(started["direct"]["parts"], part, content_type="application/json", **headers).json()["url"].startswith(unreachable)
    url = c.post(started["direct"]["parts"], part, content_type="application/json", **internal).json()["url"]
    assert url.startswith(seaweed.endpoint + "/") and httpx.put(url, content=data).status_code == 200
    assert c.put(f"{started['location']}?digest={digest_of(data)}", **headers).status_code == 201

    public = c.get(f"/api/v1/blobs/{digest_of(data)}", **headers)
    assert public.status_code == 302 and public["Location"].startswith(unreachable + "/")
    with pytest.raises(httpx.ConnectError):
        httpx.get(public["Location"])
    inside = c.get(f"/api/v1/blobs/{digest_of(data)}", **internal)
    assert inside.status_code == 302 and httpx.get(inside["Location"]).content == data
    bad = c.get(f"/api/v1/blobs/{digest_of(data)}", HTTP_ASSAY_STORAGE_ADDRESS="intranet", **headers)
    assert bad.status_code == 400 and "must be 'public' or 'internal'" in bad.json()["error"]


@pytest.mark.django_db
def test_parts_go_straight_to_the_store_within_limits(s3, registry_dirs, settings):  # noqa: F811
    """The client PUTs each part to a pre-signed URL; the registry checks offsets, part sizes,
    its size limit and the quota before it gives one, and the bytes again at finalize."""
    from registry.s3store import PART

    alice = f.user("alice")
    _, secret = f.token(alice)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    c = Client()
    started = c.post("/api/v1/uploads", **headers).json()
    assert started["direct"]["part_size"] == PART
    parts = started["direct"]["parts"]
    data = bytes(range(256)) * (PART // 256) + b"tail of the file"

    def part_url(offset, size, final=False):
        return c.post(parts, json.dumps({"offset": offset, "size": size, "final": final}), content_type="application/json", **headers)

    assert part_url(0, 1000).status_code == 416  # only the final part may be smaller
    assert part_url(5, PART).json()["offset"] == 0  # and it starts where the upload is
    r = httpx.put(part_url(0, PART).json()["url"], content=data[:PART])
    assert r.status_code == 200, r.text
    assert c.get(f"/api/v1/uploads/{started['upload_id']}", **headers).json()["offset"] == PART
    r = httpx.put(part_url(PART, len(data) - PART, final=True).json()["url"], content=data[PART:])
    assert r.status_code == 200, r.text
    r = c.put(f"{started['location']}?digest={digest_of(data)}", **headers)
    assert r.status_code == 201 and r.json()["size"] == len(data)
    assert httpx.get(c.get(f"/api/v1/blobs/{digest_of(data)}", **headers)["Location"]).content == data

    settings.ASSAY_USER_QUOTA_BYTES = len(data) + PART - 1  # what alice holds, plus less than a part
    other = c.post("/api/v1/uploads", **headers).json()
    over = c.post(other["direct"]["parts"], json.dumps({"offset": 0, "size": PART, "final": False}),
                  content_type="application/json", **headers)
    assert over.status_code == 413 and "storage quota exceeded" in over.json()["error"]
    settings.ASSAY_MAX_UPLOAD_BYTES = 100
    over = c.post(other["direct"]["parts"], json.dumps({"offset": 0, "size": 1000, "final": True}),
                  content_type="application/json", **headers)
    assert over.status_code == 413 and "limit of 100 bytes" in over.json()["error"]


def test_whole_stack_on_object_storage(seaweed, tmp_path, monkeypatch):
    """Publish, verify (the verifier fetches its inputs through pre-signed URLs) and pull, with
    no blob folder at all: every byte is in SeaweedFS."""
    from tests.support.stack import Stack
    from tests.support.tiny_gguf import write_tiny_llama

    # The store's public name is one this machine cannot reach, as `localhost:8333` is from a
    # verifier's container in docker-compose: the verifier (and this test's client) ask for the
    # internal address, ASSAY_STORAGE_ADDRESS=internal, as the compose file sets for verifiers.
    unreachable = f"http://127.0.0.2:{seaweed.s3_port}"
    stack = Stack(extra_env={**seaweed.env(), "ASSAY_S3_PUBLIC_ENDPOINT": unreachable, "ASSAY_STORAGE_ADDRESS": "internal"}).start()
    try:
        home = stack.client_home(tmp_path / "home")
        model = write_tiny_llama(tmp_path / "tiny.gguf")
        stack.assay(home, "publish", str(model), "demo/tiny-s3:f16", "--wait")
        stack.assay(home, "pull", "demo/tiny-s3:f16", "-o", str(tmp_path / "got") + "/")
        assert (tmp_path / "got" / model.name).read_bytes() == model.read_bytes()
        assert not list((stack.root / "var" / "blobs").rglob("*.gguf")) and not any(
            p.is_file() for p in (stack.root / "var" / "blobs" / "sha256").rglob("*")) if (stack.root / "var" / "blobs").exists() else True
        web_log = (stack.root / "logs" / "web.log").read_text()
        assert "/parts HTTP/1.1\" 200" in web_log and "PATCH /api/v1/uploads" not in web_log  # the bytes went straight to the store
        stored = seaweed.client().head_object(Bucket=seaweed.bucket, Key="sha256/" + digest_of(model.read_bytes())[7:])
        assert stored["ContentLength"] == model.stat().st_size
        outside = stack.assay(home, "pull", "demo/tiny-s3:f16", "-o", str(tmp_path / "outside") + "/", check=False,
                              env={"ASSAY_STORAGE_ADDRESS": "public", "ASSAY_CACHE_DIR": str(tmp_path / "empty-cache")})
        assert outside.returncode != 0 and f"object storage at 127.0.0.2:{seaweed.s3_port}" in outside.stderr and "Traceback" not in outside.stderr
        assert not (tmp_path / "outside" / model.name).exists()
        monkeypatch.setenv("ASSAY_STORAGE_ADDRESS", "internal")
        with RegistryClient(stack.url, stack.token) as client:  # the client resumes from the pre-signed URL
            partial = tmp_path / "resume.partial"
            partial.write_bytes(model.read_bytes()[:1000])
            assert client.download_blob(digest_of(model.read_bytes()), partial) == digest_of(model.read_bytes())
    finally:
        stack.stop()


@pytest.mark.django_db
def test_unreachable_object_storage_is_a_503_with_the_reason(registry_dirs, settings):  # noqa: F811
    """An object store that does not answer (down, wrong address) is a 503 naming it, never a bare 500."""
    import socket

    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for name, value in {"ASSAY_STORAGE": "s3", "ASSAY_S3_ENDPOINT": f"http://127.0.0.1:{port}", "ASSAY_S3_BUCKET": "b",
                        "ASSAY_S3_ACCESS_KEY": "k", "ASSAY_S3_SECRET_KEY": "s"}.items():
        setattr(settings, name, value)
    _, secret = f.token(f.user("alice"))
    r = Client().post("/api/v1/uploads", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert r.status_code == 503, r.content
    assert "the registry's object storage failed" in r.json()["error"] and str(port) in r.json()["error"]
