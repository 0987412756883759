"""The JSON API under hostile or unlucky input: other people's blobs, mismatched bases, broken
headers, chunked bodies, odd token lifetimes, hidden releases, a broker that is down, and racing
key registrations. Django test client against real PostgreSQL (and Redis where a broker is used)."""
from __future__ import annotations

import io
import json
import logging
import threading
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
import redis
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test import Client, RequestFactory
from django.utils import timezone

from assay.core import dsse, keys, statements
from assay.core.digest import digest_bytes
from registry.api.common import api
from registry.models import ApiToken, Blob, LogEntry, Membership, PublisherKey, Release
from registry.publisher_keys import register_key
from tests.support import factories as f
from tests.support.factories import registry_dirs  # noqa: F401  (fixture)

JSON = "application/json"
RECIPE = {"tool": "llama.cpp", "llama_cpp_python_version": "0.3.36", "ggml_build": "x", "ftype": "Q4_K_M", "imatrix": None, "options": {}}

db = pytest.mark.django_db


def auth(u, **kw) -> dict:
    _, secret = f.token(u, **kw)
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def upload(client: Client, headers: dict, data: bytes) -> str:
    """Upload bytes through the API (start, one chunk, finalize); return the digest."""
    upload_id = client.post("/api/v1/uploads", **headers).json()["upload_id"]
    r = client.patch(f"/api/v1/uploads/{upload_id}", data, content_type="application/octet-stream",
                     HTTP_CONTENT_RANGE=f"bytes 0-{len(data) - 1}/{len(data)}", **headers)
    assert r.status_code == 202, r.content
    digest = digest_bytes(data)
    r = client.put(f"/api/v1/uploads/{upload_id}?digest={digest}", **headers)
    assert r.status_code == 201, r.content
    return digest


def post_release(client: Client, headers: dict, envelope: dict):
    return client.post("/api/v1/releases", json.dumps({"envelope": envelope}), content_type=JSON, **headers)


@pytest.fixture
def w(registry_dirs):  # noqa: F811
    """alice and bob (each with a personal namespace, a key and a token); vault, a private org
    owned by alice in which rita reads."""
    w = SimpleNamespace(c=Client())
    w.alice, w.bob, w.rita = f.user("alice"), f.user("bob"), f.user("rita")
    w.vault = f.organization(w.alice, "vault", private=True, members={w.rita: Membership.READER})
    w.alice_key, w.bob_key, w.rita_key = f.publisher_key(w.alice), f.publisher_key(w.bob), f.publisher_key(w.rita)
    w.alice_h, w.bob_h, w.rita_h = auth(w.alice), auth(w.bob), auth(w.rita)
    return w


# -- 1. a release may use only a blob its publisher uploaded or can read -------------------------

@db
def test_a_private_upload_cannot_be_claimed_by_someone_who_knows_its_digest(w):
    digest = upload(w.c, w.alice_h, b"alice's private weights")
    r = post_release(w.c, w.bob_h, f.release_envelope(w.bob_key, digest=digest, namespace="bob", model="stolen"))
    assert r.status_code == 400
    assert r.json()["error"] == f"release refused: the statement's subject {digest} was not uploaded by bob; upload the file first"
    assert not Release.objects.exists()
    assert w.c.get(f"/api/v1/blobs/{digest}", **w.bob_h).status_code == 404
    # The same answer as for a digest nobody uploaded: bob learns nothing about alice's blob.
    other = digest_bytes(b"nobody uploaded this")
    r = post_release(w.c, w.bob_h, f.release_envelope(w.bob_key, digest=other, namespace="bob", model="stolen"))
    assert r.status_code == 400 and "was not uploaded by bob" in r.json()["error"]

    r = post_release(w.c, w.alice_h, f.release_envelope(w.alice_key, digest=digest, namespace="alice", model="mine"))
    assert r.status_code == 201, r.content
    assert Release.objects.get().blob_id == digest


@db
def test_the_blob_of_a_private_release_is_usable_by_members_only(w):
    hidden = f.release(w.alice, w.alice_key, namespace="vault", model="hidden", data=b"vault weights", status=Release.VERIFIED)
    digest = hidden.blob_id
    r = post_release(w.c, w.bob_h, f.release_envelope(w.bob_key, digest=digest, namespace="bob", model="copy"))
    assert r.status_code == 400 and "was not uploaded by bob" in r.json()["error"]
    assert not Release.objects.filter(model__namespace__name="bob").exists()
    # rita reads the vault, so she may republish its verified file in her own namespace.
    r = post_release(w.c, w.rita_h, f.release_envelope(w.rita_key, digest=digest, namespace="rita", model="copy"))
    assert r.status_code == 201, r.content


@db
def test_a_verified_public_release_file_is_usable_by_anyone_and_a_pending_one_is_not(w):
    public = f.release(w.alice, w.alice_key, namespace="alice", model="open", data=b"open weights", status=Release.VERIFIED)
    pending = f.release(w.alice, w.alice_key, namespace="alice", model="wip", data=b"wip weights", status=Release.QUEUED)
    ok = post_release(w.c, w.bob_h, f.release_envelope(w.bob_key, digest=public.blob_id, namespace="bob", model="mirror"))
    assert ok.status_code == 201, ok.content
    no = post_release(w.c, w.bob_h, f.release_envelope(w.bob_key, digest=pending.blob_id, namespace="bob", model="early"))
    assert no.status_code == 400 and "was not uploaded by bob" in no.json()["error"]


@db
def test_uploading_the_same_bytes_yourself_makes_them_yours_too(w):
    data = b"weights both of them have"
    digest = upload(w.c, w.alice_h, data)
    assert upload(w.c, w.bob_h, data) == digest
    assert set(Blob.objects.get(digest=digest).uploaders.values_list("username", flat=True)) == {"alice", "bob"}
    r = post_release(w.c, w.bob_h, f.release_envelope(w.bob_key, digest=digest, namespace="bob", model="same"))
    assert r.status_code == 201, r.content


@db
def test_a_quant_base_must_be_a_release_the_publisher_can_read(w):
    base = f.release(w.alice, w.alice_key, namespace="vault", model="base", tag="f16", data=b"vault base", status=Release.VERIFIED)
    digest = upload(w.c, w.bob_h, b"bob's quant")
    env = f.release_envelope(w.bob_key, digest=digest, namespace="bob", model="quant", base={"name": "vault/base:f16", "digest": base.blob_id}, recipe=RECIPE)
    r = post_release(w.c, w.bob_h, env)
    assert r.status_code == 400
    assert r.json()["error"] == f"release refused: base vault/base:f16 ({base.blob_id}) is not a release in this registry that you can read"
    assert not Release.objects.filter(model__namespace__name="bob").exists()
    digest = upload(w.c, w.rita_h, b"rita's quant")
    env = f.release_envelope(w.rita_key, digest=digest, namespace="rita", model="quant", base={"name": "vault/base:f16", "digest": base.blob_id}, recipe=RECIPE)
    r = post_release(w.c, w.rita_h, env)  # rita reads vault, but her namespace is public (tests/integration/test_private_names.py)
    assert r.status_code == 400 and "rita is public and its base vault/base:f16 is in a private namespace" in r.json()["error"]


# -- 2. the named base must be the release with the base digest ---------------------------------

@db
def test_a_quant_base_name_must_resolve_to_the_base_digest(w):
    base = f.release(w.alice, w.alice_key, namespace="alice", model="base", tag="f16", data=b"base f16", status=Release.VERIFIED)
    other = f.release(w.alice, w.alice_key, namespace="alice", model="other", tag="f16", data=b"other f16", status=Release.VERIFIED)
    digest = upload(w.c, w.bob_h, b"quant of something")
    env = f.release_envelope(w.bob_key, digest=digest, namespace="bob", model="q", base={"name": "alice/base:f16", "digest": other.blob_id}, recipe=RECIPE)
    r = post_release(w.c, w.bob_h, env)
    assert r.status_code == 400
    assert r.json()["error"] == (
        f"release refused: the statement's base digest {other.blob_id} is not the file of alice/base:f16 "
        f"(version 1 of alice/base:f16 is {base.blob_id})"
    )
    assert not Release.objects.filter(model__namespace__name="bob").exists()
    env = f.release_envelope(w.bob_key, digest=digest, namespace="bob", model="q", base={"name": "alice/base:f16", "digest": base.blob_id}, recipe=RECIPE)
    r = post_release(w.c, w.bob_h, env)
    assert r.status_code == 201, r.content
    assert Release.objects.get(model__namespace__name="bob").base_name == "alice/base:f16"


@db
def test_an_older_version_of_the_base_tag_is_a_valid_base(w):
    v1 = f.release(w.alice, w.alice_key, namespace="alice", model="base", tag="f16", version=1, data=b"base v1", status=Release.VERIFIED)
    f.release(w.alice, w.alice_key, namespace="alice", model="base", tag="f16", version=2, data=b"base v2", status=Release.VERIFIED)
    digest = upload(w.c, w.bob_h, b"quant of v1")
    env = f.release_envelope(w.bob_key, digest=digest, namespace="bob", model="q", base={"name": "alice/base:f16", "digest": v1.blob_id}, recipe=RECIPE)
    assert post_release(w.c, w.bob_h, env).status_code == 201


# -- 3. malformed headers and unexpected errors are JSON -----------------------------------------

@db
@pytest.mark.parametrize("value", ["abc", "-5", "12x", "1e3"])
def test_non_integer_content_length_is_a_json_400(w, value):
    r = w.c.post("/api/v1/releases", "{}", content_type=JSON, CONTENT_LENGTH=value, **w.alice_h)
    assert r.status_code == 400 and r["Content-Type"] == "application/json"
    assert r.json()["error"] == f"invalid Content-Length header {value!r}: expected a non-negative whole number of bytes"
    upload_id = w.c.post("/api/v1/uploads", **w.alice_h).json()["upload_id"]
    r = w.c.patch(f"/api/v1/uploads/{upload_id}", b"abcd", content_type="application/octet-stream", CONTENT_LENGTH=value, **w.alice_h)
    assert r.status_code == 400 and "invalid Content-Length" in r.json()["error"]
    assert w.c.get(f"/api/v1/uploads/{upload_id}", **w.alice_h).json()["offset"] == 0


@db
@pytest.mark.parametrize("path", ["/api/v1/releases", "/api/v1/keys", "/api/v1/tokens"])
def test_json_nested_too_deeply_is_a_400(w, path):
    body = "[" * 100_000 + "]" * 100_000
    r = w.c.post(path, '{"envelope": ' + body + "}", content_type=JSON, **w.alice_h)
    assert r.status_code == 400 and r.json()["error"] == "request body is nested too deeply"


@db
def test_a_version_past_2_31_and_a_keyid_list_are_400s(w):
    digest = f.blob(b"version bytes", uploaded_by=w.alice)
    import base64

    from assay.core.canonical import canonical_json

    doc = json.loads(base64.b64decode(f.release_envelope(w.alice_key, digest=digest, namespace="alice", model="big")["payload"]))
    doc["predicate"]["version"] = 2**31  # signed by its key, but past what a version may be
    env = dsse.sign_envelope(canonical_json(doc), statements.PAYLOAD_TYPE, w.alice_key)
    r = post_release(w.c, w.alice_h, env)
    assert r.status_code == 400 and "predicate.version" in r.json()["error"] and "at most 2147483647" in r.json()["error"]
    env = f.release_envelope(w.alice_key, digest=digest, namespace="alice", model="big", version=1)
    env["signatures"][0]["keyid"] = [env["signatures"][0]["keyid"]]
    r = post_release(w.c, w.alice_h, env)
    assert r.status_code == 400 and "signatures[0].keyid must be a string, not a list" in r.json()["error"]


@db
def test_an_unexpected_exception_is_logged_and_answered_with_a_json_500(caplog):
    @api(("GET",))
    def broken(request):
        return {}["no such key"]

    with caplog.at_level(logging.ERROR, logger="registry.api.common"):
        r = broken(RequestFactory().get("/api/v1/broken"))
    assert r.status_code == 500
    assert json.loads(r.content) == {"error": "internal error (logged)"}
    assert b"Traceback" not in r.content and b"KeyError" not in r.content
    assert "unhandled error in GET /api/v1/broken" in caplog.text and "KeyError" in caplog.text


# -- 4. chunked uploads stream the body ----------------------------------------------------------

def chunked(client: Client, method: str, path: str, data: bytes, headers: dict, terminated: bool = True, **extra):
    """A request as gunicorn hands over a 'Transfer-Encoding: chunked' body: no CONTENT_LENGTH,
    the de-chunked bytes on wsgi.input, read to EOF (wsgi.input_terminated)."""
    environ = {"wsgi.input": io.BytesIO(data), "HTTP_TRANSFER_ENCODING": "chunked", **extra, **headers}
    if terminated:
        environ["wsgi.input_terminated"] = True
    return client.generic(method, path, b"", content_type="application/octet-stream", **environ)


@db
def test_a_chunked_upload_streams_the_whole_body(w):
    data = b"0123456789" * 300_000  # 3 MB: more than one read block
    upload_id = w.c.post("/api/v1/uploads", **w.alice_h).json()["upload_id"]
    r = chunked(w.c, "PATCH", f"/api/v1/uploads/{upload_id}", data[:1_000_000], w.alice_h)
    assert r.status_code == 202 and r.json()["offset"] == 1_000_000
    rest = data[1_000_000:]
    r = chunked(w.c, "PATCH", f"/api/v1/uploads/{upload_id}", rest, w.alice_h,
                HTTP_CONTENT_RANGE=f"bytes 1000000-{len(data) - 1}/{len(data)}")
    assert r.status_code == 202 and r.json()["offset"] == len(data)
    r = w.c.put(f"/api/v1/uploads/{upload_id}?digest={digest_bytes(data)}", **w.alice_h)
    assert r.status_code == 201 and r.json() == {"digest": digest_bytes(data), "size": len(data)}


@db
def test_a_chunked_finalize_carries_the_last_bytes(w):
    data = b"last bytes ride on the PUT"
    upload_id = w.c.post("/api/v1/uploads", **w.alice_h).json()["upload_id"]
    r = chunked(w.c, "PUT", f"/api/v1/uploads/{upload_id}?digest={digest_bytes(data)}", data, w.alice_h)
    assert r.status_code == 201 and r.json()["size"] == len(data)


@db
def test_a_chunked_body_longer_than_its_content_range_is_refused_and_not_kept(w):
    upload_id = w.c.post("/api/v1/uploads", **w.alice_h).json()["upload_id"]
    r = chunked(w.c, "PATCH", f"/api/v1/uploads/{upload_id}", b"0123456789", w.alice_h, HTTP_CONTENT_RANGE="bytes 0-3/10")
    assert r.status_code == 400
    assert r.json()["error"] == "the body is longer than the 4 bytes its Content-Range covers; none of it was kept"
    assert w.c.get(f"/api/v1/uploads/{upload_id}", **w.alice_h).json()["offset"] == 0


@db
def test_a_chunked_body_shorter_than_its_content_range_keeps_what_came_and_says_where_to_resume(w):
    upload_id = w.c.post("/api/v1/uploads", **w.alice_h).json()["upload_id"]
    r = chunked(w.c, "PATCH", f"/api/v1/uploads/{upload_id}", b"0123", w.alice_h, HTTP_CONTENT_RANGE="bytes 0-9/10")
    assert r.status_code == 416 and r.json()["offset"] == 4
    assert "6 bytes missing; resume from 4" in r.json()["error"]


@db
def test_a_chunked_body_past_the_upload_limit_is_413_and_not_kept(w, settings):
    settings.ASSAY_MAX_UPLOAD_BYTES = 8
    upload_id = w.c.post("/api/v1/uploads", **w.alice_h).json()["upload_id"]
    r = chunked(w.c, "PATCH", f"/api/v1/uploads/{upload_id}", b"0123456789", w.alice_h)
    assert r.status_code == 413 and "limit of 8 bytes" in r.json()["error"]
    assert w.c.get(f"/api/v1/uploads/{upload_id}", **w.alice_h).json()["offset"] == 0


@db
def test_a_chunked_body_the_server_cannot_delimit_is_411(w):
    upload_id = w.c.post("/api/v1/uploads", **w.alice_h).json()["upload_id"]
    r = chunked(w.c, "PATCH", f"/api/v1/uploads/{upload_id}", b"0123", w.alice_h, terminated=False)
    assert r.status_code == 411 and "send a Content-Length" in r.json()["error"]
    assert w.c.get(f"/api/v1/uploads/{upload_id}", **w.alice_h).json()["offset"] == 0


@db
def test_a_chunked_json_body_is_411(w):
    r = chunked(w.c, "POST", "/api/v1/keys", b"{}", w.alice_h)
    assert r.status_code == 411 and "Content-Length" in r.json()["error"]


@db
def test_a_full_or_unwritable_blob_folder_is_a_clear_507_or_503_and_a_retry_works(w, monkeypatch):
    """The blob folder fills up during a chunk: 507 with the store's reason and the offset to
    resume from (none of the chunk kept); it cannot be written when the upload is finalized: 503,
    no blob recorded. Once there is room, the same requests go through."""
    import errno
    import os

    from tests.unit.test_blobstore import _disk_full_after

    data = b"GGUF" + bytes(3 * 1024 * 1024)
    upload_id = w.c.post("/api/v1/uploads", **w.alice_h).json()["upload_id"]
    _disk_full_after(monkeypatch, 1024 * 1024)
    r = w.c.patch(f"/api/v1/uploads/{upload_id}", data, content_type="application/octet-stream",
                  HTTP_CONTENT_RANGE=f"bytes 0-{len(data) - 1}/{len(data)}", **w.alice_h)
    assert r.status_code == 507, r.content
    assert r.json() == {"error": "the registry's blob storage is full (No space left on device): none of this chunk was kept; "
                                 "try again when it has room", "offset": 0}
    monkeypatch.undo()
    r = w.c.patch(f"/api/v1/uploads/{upload_id}", data, content_type="application/octet-stream",
                  HTTP_CONTENT_RANGE=f"bytes 0-{len(data) - 1}/{len(data)}", **w.alice_h)
    assert r.status_code == 202 and r.json()["offset"] == len(data)

    def refused(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied", str(dst))
    monkeypatch.setattr(os, "replace", refused)
    r = w.c.put(f"/api/v1/uploads/{upload_id}?digest={digest_bytes(data)}", **w.alice_h)
    assert r.status_code == 503, r.content
    assert r.json()["error"].startswith("the registry's blob storage cannot be written (Permission denied): the upload is kept")
    assert r.json()["offset"] == len(data)
    assert not Blob.objects.filter(digest=digest_bytes(data)).exists()
    monkeypatch.undo()
    r = w.c.put(f"/api/v1/uploads/{upload_id}?digest={digest_bytes(data)}", **w.alice_h)
    assert r.status_code == 201 and r.json() == {"digest": digest_bytes(data), "size": len(data)}



@db
def test_a_recorded_blob_whose_bytes_are_gone_is_a_clear_500_before_any_byte(w, settings):
    """The blob folder lost a file the database records (a disk replaced, a bad restore): the
    download is a JSON 500 naming the blob, not a 200 that breaks off (which a client retries
    as a dropped connection, then calls interrupted)."""
    from registry.blobstore import get_blob_store

    settings.ASSAY_NGINX = False
    digest = upload(w.c, w.alice_h, b"GGUF" + bytes(4096))
    get_blob_store().local_path(digest).unlink()
    r = w.c.get(f"/api/v1/blobs/{digest}", **w.alice_h)
    assert r.status_code == 500 and r["Content-Type"] == "application/json"
    assert r.json()["error"].startswith(f"blob {digest} is recorded but the registry cannot read its bytes from storage (No such file")


# -- 5. token lifetimes --------------------------------------------------------------------------

def new_token(w, headers, **body):
    return w.c.post("/api/v1/tokens", json.dumps({"name": "t", "scopes": ["read"], **body}), content_type=JSON, **headers)


@db
@pytest.mark.parametrize("days", [None, 0, -1, 366, 10**20, "30", 7.5, True])
def test_token_lifetime_must_be_1_to_365_days(w, days):
    r = new_token(w, w.alice_h, expires_in_days=days)
    assert r.status_code == 400
    assert r.json()["error"] == f"expires_in_days must be a whole number of days from 1 to 365, not {days!r}"
    assert ApiToken.objects.filter(user=w.alice).count() == 1  # only the one making the request


@db
def test_token_lifetime_default_and_explicit(w):
    r = new_token(w, w.alice_h)
    assert r.status_code == 201
    expires = ApiToken.objects.get(pk=r.json()["id"]).expires_at
    assert abs(expires - (timezone.now() + timedelta(days=90))) < timedelta(minutes=1)
    r = new_token(w, w.alice_h, expires_in_days=7)
    assert r.status_code == 201
    assert abs(ApiToken.objects.get(pk=r.json()["id"]).expires_at - (timezone.now() + timedelta(days=7))) < timedelta(minutes=1)


@db
def test_a_token_cannot_mint_one_that_outlives_it(w):
    parent, secret = f.token(w.alice, expires_in_days=10)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    r = new_token(w, headers, expires_in_days=30)
    assert r.status_code == 400
    assert r.json()["error"] == (
        f"expires_in_days=30 would outlive the token that creates it (it expires on {parent.expires_at:%Y-%m-%d %H:%M} UTC); choose a shorter lifetime"
    )
    r = new_token(w, headers)  # the default 90 days is cut to the parent's expiry
    assert r.status_code == 201 and ApiToken.objects.get(pk=r.json()["id"]).expires_at == parent.expires_at
    r = new_token(w, headers, expires_in_days=5)
    assert r.status_code == 201 and ApiToken.objects.get(pk=r.json()["id"]).expires_at < parent.expires_at


# -- 6. releases that are not verified are invisible to non-publishers ---------------------------

@db
@pytest.mark.parametrize("path", ["/api/v1/releases/{ref}", "/api/v1/releases/{ref}?any=1", "/api/v1/releases/{ref}/status"])
def test_unverified_releases_are_404_to_non_publishers_and_explained_to_publishers(w, path):
    f.release(w.alice, w.alice_key, namespace="vault", model="secret", data=b"v", status=Release.REJECTED, status_reason="probe found a trigger in vault")
    f.release(w.alice, w.alice_key, namespace="alice", model="bad", data=b"b", status=Release.REJECTED, status_reason="probe found a trigger")
    for ref, who in [("alice/bad:q4", {}), ("alice/bad:q4", w.bob_h), ("vault/secret:q4", {}), ("vault/secret:q4", w.bob_h), ("vault/secret:q4", w.rita_h)]:
        r = w.c.get(path.format(ref=ref), **who)
        assert r.status_code == 404, (ref, who, r.content)
        assert r.json() == {"error": f"release {ref} not found"}
    r = w.c.get(path.format(ref="alice/bad:q4"), **w.alice_h)
    if path.endswith("/status") or "any=1" in path:
        assert r.status_code == 200 and r.json()["status"] == "rejected"
    else:
        assert r.status_code == 409 and "probe found a trigger" in r.json()["error"]


@db
def test_an_older_verified_version_is_still_served_to_everyone(w):
    f.release(w.alice, w.alice_key, namespace="alice", model="m", version=1, data=b"v1", status=Release.VERIFIED)
    f.release(w.alice, w.alice_key, namespace="alice", model="m", version=2, data=b"v2", status=Release.REJECTED, status_reason="bad")
    for headers in ({}, w.bob_h):
        r = w.c.get("/api/v1/releases/alice/m:q4", **headers)
        assert r.status_code == 200 and r.json()["version"] == 1


# -- 7. a broker that is down does not fail the release ------------------------------------------

@pytest.fixture
def broker():
    """Point the registry's Celery app at a URL for a while (the app reads Django settings only once)."""
    from registry.queueing import app

    original = app.conf.broker_url

    def point(url: str) -> None:
        app.conf.broker_url = url
        app._pool = None
        app.amqp._producer_pool = None

    yield SimpleNamespace(point=point, original=original, queue=app.conf.task_default_queue)
    point(original)


@pytest.mark.django_db(transaction=True)  # the release must really commit for on_commit to queue it
def test_release_is_created_when_the_broker_is_down_and_requeue_queues_it_later(w, broker, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    broker.point(settings.CELERY_BROKER_URL)  # a closed port: a real connection failure
    digest = upload(w.c, w.alice_h, b"weights published while redis is down")
    r = post_release(w.c, w.alice_h, f.release_envelope(w.alice_key, digest=digest, namespace="alice", model="m"))
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["status"] == "uploaded"
    assert "verification could not be queued yet" in body["warning"] and "manage.py requeue" in body["warning"]
    release = Release.objects.get()
    assert release.status == Release.UPLOADED and "manage.py requeue" in release.status_reason
    status = w.c.get("/api/v1/releases/alice/m:q4/status", **w.alice_h).json()
    assert status["status"] == "uploaded" and "manage.py requeue" in status["status_reason"]

    with pytest.raises(CommandError, match="1 release\\(s\\) could not be queued"):
        call_command("requeue", stdout=io.StringIO())
    assert Release.objects.get().status == Release.UPLOADED

    broker.point(broker.original)
    r = redis.Redis.from_url(broker.original)
    before = r.llen(broker.queue)
    out = io.StringIO()
    call_command("requeue", "--status", "uploaded", stdout=out)
    try:
        assert "re-enqueued 1 release(s)" in out.getvalue()
        assert r.llen(broker.queue) == before + 1
        release.refresh_from_db()
        assert release.status == Release.QUEUED and release.status_reason == "waiting for a verifier: none is registered with this registry yet"
    finally:
        r.lpop(broker.queue)  # the message this test queued (no worker of this test consumes it)


# -- 8. registering a key twice ------------------------------------------------------------------

def key_envelope(u) -> tuple[keys.Signer, dict]:
    signer = keys.Signer(keys.generate_private_key())
    payload = statements.build_key_event("register", keyid=signer.keyid, public_key=keys.public_key_to_text(signer.public_key), owner=u.username)
    return signer, dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, signer)


@db
def test_registering_the_same_key_twice_is_idempotent(w):
    signer, env = key_envelope(w.alice)
    logged = LogEntry.objects.filter(kind="key-register").count()
    answers = [w.c.post("/api/v1/keys", json.dumps({"envelope": env}), content_type=JSON, **w.alice_h) for _ in range(2)]
    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].json() == answers[1].json()
    assert PublisherKey.objects.filter(keyid=signer.keyid).count() == 1
    assert LogEntry.objects.filter(kind="key-register").count() == logged + 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_registrations_of_one_key_give_one_key_and_no_error(registry_dirs):  # noqa: F811
    alice = f.user("alice")
    signer, env = key_envelope(alice)
    inserted, release_first, results = threading.Event(), threading.Event(), {}

    def first():
        try:
            with transaction.atomic():
                results["first"] = register_key(alice, env)
                inserted.set()
                release_first.wait(30)  # hold the uncommitted row until the second one waits for it
        finally:
            connection.close()

    def second():
        try:
            results["second"] = register_key(alice, env)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results["second"] = exc
        finally:
            connection.close()

    t1 = threading.Thread(target=first)
    t1.start()
    assert inserted.wait(30)
    t2 = threading.Thread(target=second)
    t2.start()
    deadline = time.monotonic() + 30
    with connection.cursor() as cur:  # wait until the second INSERT blocks on the first's row
        while time.monotonic() < deadline:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
            if cur.fetchone()[0]:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the second registration never waited for the first")
    release_first.set()
    t1.join(30)
    t2.join(30)
    assert isinstance(results["second"], PublisherKey), results["second"]
    assert results["second"].pk == results["first"].pk
    assert PublisherKey.objects.filter(keyid=signer.keyid).count() == 1
    assert LogEntry.objects.filter(kind="key-register").count() == 1


# -- tokens and keys: each token acts only within what it names ------------------------------------

@db
def test_namespaces_must_be_a_list_of_names(w):
    for bad in ("alice", [1], ["Bad NS"], {"alice": 1}):
        r = w.c.post("/api/v1/tokens", json.dumps({"name": "t", "scopes": ["read"], "namespaces": bad}), content_type=JSON, **w.alice_h)
        assert r.status_code == 400, (bad, r.json())
    assert not ApiToken.objects.filter(name="t").exists()


@db
def test_a_namespace_limited_admin_token_manages_only_tokens_within_its_namespaces(w):
    f.organization(w.alice, "lab")
    limited = auth(w.alice, scopes=["admin"], namespaces=["lab"])
    inside = w.c.post("/api/v1/tokens", json.dumps({"name": "inside", "scopes": ["read"], "namespaces": ["lab"]}),
                      content_type=JSON, **limited).json()
    listed = {t["name"] for t in w.c.get("/api/v1/tokens", **limited).json()["tokens"]}
    assert "inside" in listed and all(ApiToken.objects.get(pk=t["id"]).namespaces == ["lab"]
                                      for t in w.c.get("/api/v1/tokens", **limited).json()["tokens"])
    account_wide = ApiToken.objects.filter(user=w.alice, namespaces=[]).first()
    assert w.c.delete(f"/api/v1/tokens/{account_wide.pk}", **limited).status_code == 404
    assert ApiToken.objects.get(pk=account_wide.pk).revoked_at is None
    assert w.c.delete(f"/api/v1/tokens/{inside['id']}", **limited).status_code == 200


@db
def test_a_namespace_limited_publish_token_cannot_manage_account_keys(w):
    limited = auth(w.alice, scopes=["publish"], namespaces=["alice"])
    signer = keys.Signer(keys.generate_private_key())
    env = dsse.sign_envelope(statements.build_key_event("register", keyid=signer.keyid, public_key=keys.public_key_to_text(signer.public_key),
                                                        owner="alice"), statements.PAYLOAD_TYPE, signer)
    r = w.c.post("/api/v1/keys", json.dumps({"envelope": env}), content_type=JSON, **limited)
    assert r.status_code == 403 and "belong to the whole account" in r.json()["error"]
    r = w.c.post(f"/api/v1/keys/{w.alice_key.keyid}/revoke", json.dumps({}), content_type=JSON, **limited)
    assert r.status_code == 403 and not PublisherKey.objects.get(keyid=w.alice_key.keyid).revoked
    assert w.c.post("/api/v1/keys", json.dumps({"envelope": env}), content_type=JSON, **w.alice_h).status_code == 201


@pytest.mark.django_db(transaction=True)
def test_releases_whose_tasks_were_lost_are_requeued_by_the_periodic_task(w, broker, settings):
    """Redis restarted without persistence: queued messages are gone, releases stay queued. The
    periodic task queues again only those stalled longer than a task can be invisible."""
    from django.utils import timezone

    from registry.tasks import requeue_stalled
    from verifier.celery_app import app as verifier_app

    assert settings.CELERY_BEAT_SCHEDULE["requeue-stalled"]["task"] == "registry.tasks.requeue_stalled"
    # the verifier service reads the same broker settings without Django (assay/core/queueconfig.py)
    assert verifier_app.conf.broker_transport_options["visibility_timeout"] >= 3 * settings.ASSAY_VERIFY_TIMEOUT_S  # outlasts a whole job
    old = timezone.now() - timedelta(seconds=settings.ASSAY_STALLED_AFTER_S + 60)
    rels = [f.release(w.alice, w.alice_key, namespace="alice", model=f"m{i}", data=b"stalled %d" % i) for i in range(3)]
    Release.objects.filter(pk=rels[0].pk).update(status=Release.QUEUED, updated=old)     # lost in the broker
    Release.objects.filter(pk=rels[1].pk).update(status=Release.VERIFYING, updated=old)  # its worker and message gone
    Release.objects.filter(pk=rels[2].pk).update(status=Release.QUEUED, updated=timezone.now())  # just queued: left alone
    r = redis.Redis.from_url(broker.original)
    before = r.llen(broker.queue)
    try:
        assert sorted(requeue_stalled.apply().get()) == sorted([rels[0].pk, rels[1].pk])
        assert r.llen(broker.queue) == before + 2
        for rel in rels[:2]:
            rel.refresh_from_db()
            assert rel.status == Release.QUEUED and rel.updated > old
        assert requeue_stalled.apply().get() == []  # requeued ones are fresh again: not queued twice
    finally:
        for _ in range(r.llen(broker.queue) - before):
            r.lpop(broker.queue)


# -- storage quotas and garbage collection ---------------------------------------------------------

@db
def test_an_upload_past_the_users_quota_is_refused_and_not_kept(w, settings):
    settings.ASSAY_USER_QUOTA_BYTES = 1000
    upload(w.c, w.alice_h, b"x" * 600)  # 600 of alice's 1000 bytes
    upload_id = w.c.post("/api/v1/uploads", **w.alice_h).json()["upload_id"]
    r = w.c.patch(f"/api/v1/uploads/{upload_id}", b"y" * 500, content_type="application/octet-stream", **w.alice_h)
    assert r.status_code == 413 and "storage quota exceeded: alice may store 1000 bytes" in r.json()["error"]
    assert w.c.get(f"/api/v1/uploads/{upload_id}", **w.alice_h).json()["offset"] == 0  # nothing of it kept
    r = w.c.patch(f"/api/v1/uploads/{upload_id}", b"y" * 300, content_type="application/octet-stream", **w.alice_h)
    assert r.status_code == 202  # what fits is fine
    assert upload(w.c, w.bob_h, b"z" * 900)  # the quota is per user


@db
def test_a_release_past_the_organizations_quota_is_refused_before_anything_is_made(w, settings):
    settings.ASSAY_ORG_QUOTA_BYTES = 1000
    f.organization(w.alice, "lab")
    first, second = upload(w.c, w.alice_h, b"a" * 700), upload(w.c, w.alice_h, b"b" * 400)
    assert post_release(w.c, w.alice_h, f.release_envelope(w.alice_key, digest=first, namespace="lab", model="m")).status_code == 201
    r = post_release(w.c, w.alice_h, f.release_envelope(w.alice_key, digest=second, namespace="lab", model="n"))
    assert r.status_code == 413 and "organization lab would use 1100 bytes of its 1000-byte storage quota" in r.json()["error"]
    assert not Release.objects.filter(model__name="n").exists()
    again = f.release_envelope(w.alice_key, digest=first, namespace="lab", model="m", tag="other")  # the same bytes: no new storage
    assert post_release(w.c, w.alice_h, again).status_code == 201


@db
def test_the_quota_counts_a_releases_inputs_too(w, settings):
    """A split release's later parts (inputs of the release) count like its first file."""
    settings.ASSAY_ORG_QUOTA_BYTES = 1000
    f.organization(w.alice, "lab2")
    one, two = upload(w.c, w.alice_h, b"p" * 300), upload(w.c, w.alice_h, b"q" * 800)
    names = ["m-00001-of-00002.gguf", "m-00002-of-00002.gguf"]
    payload = statements.build_release_statement(
        subject_name=names[0], subject_digest=one, namespace="lab2", model="split", tag="f16", version=1, quantization="F16",
        base=None, recipe=None, model_card_digest=None, parts=list(zip(names, [one, two])))
    r = post_release(w.c, w.alice_h, dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, w.alice_key))
    assert r.status_code == 413 and "would use 1100 bytes" in r.json()["error"] and "this release adds 1100" in r.json()["error"]
    assert not Release.objects.filter(model__name="split").exists()


@db
def test_garbage_collection_removes_old_uploads_and_unused_blobs_only(w, settings):
    from registry.blobstore import get_blob_store
    from registry.models import Upload

    store = get_blob_store()
    used = upload(w.c, w.alice_h, b"used by a release")
    post_release(w.c, w.alice_h, f.release_envelope(w.alice_key, digest=used, namespace="alice", model="m"))
    base = f.blob(b"a base", uploaded_by=w.alice)
    Release.objects.filter(blob_id=used).update(base_digest=base, base_name="alice/b:f16")  # used as a base
    unused, fresh = f.blob(b"never published", uploaded_by=w.alice), f.blob(b"just uploaded", uploaded_by=w.alice)
    stale_upload = w.c.post("/api/v1/uploads", **w.alice_h).json()["upload_id"]
    live_upload = w.c.post("/api/v1/uploads", **w.alice_h).json()["upload_id"]
    week_ago = timezone.now() - timedelta(days=8)
    Blob.objects.exclude(digest=fresh).update(created=week_ago)
    Upload.objects.filter(pk=stale_upload).update(created=week_ago)
    out = io.StringIO()
    call_command("gc", "--dry-run", stdout=out)
    assert f"would delete blob {unused}" in out.getvalue() and Blob.objects.filter(digest=unused).exists()
    call_command("gc", stdout=io.StringIO())
    assert set(Blob.objects.values_list("digest", flat=True)) >= {used, base, fresh}
    assert not Blob.objects.filter(digest=unused).exists() and not store.exists(unused)
    assert store.exists(used) and store.exists(base)
    assert not Upload.objects.filter(pk=stale_upload).exists() and Upload.objects.filter(pk=live_upload).exists()


# -- finding the releases of a file by its digest (the publish page names a recipe's base so) -------

@db
def test_releases_of_a_digest_are_those_the_caller_may_see(w):
    public = f.release(w.alice, w.alice_key, namespace="alice", model="open", data=b"shared weights", status=Release.VERIFIED)
    pending = f.release(w.alice, w.alice_key, namespace="alice", model="wip", data=b"pending weights", status=Release.QUEUED)
    hidden = f.release(w.alice, w.alice_key, namespace="vault", model="hidden", data=b"vault file", status=Release.VERIFIED)

    def found(digest, headers):
        r = w.c.get(f"/api/v1/releases?digest={digest}", **headers)
        assert r.status_code == 200, r.content
        return [x["reference"] for x in r.json()["releases"]]

    assert found(public.blob_id, {}) == ["alice/open:q4"]
    assert found(pending.blob_id, {}) == [] and found(pending.blob_id, w.alice_h) == ["alice/wip:q4"]
    assert found(hidden.blob_id, w.bob_h) == [] and found(hidden.blob_id, w.rita_h) == ["vault/hidden:q4"]
    bad = w.c.get("/api/v1/releases?digest=sha256:XYZ")
    assert bad.status_code == 400 and "must be sha256:" in bad.json()["error"]
    assert w.c.post("/api/v1/releases", "{}", content_type=JSON).status_code == 401
    assert w.c.delete("/api/v1/releases").status_code == 405


# -- the statement the publish page signs is built by the registry's one builder ------------------

@db
def test_the_publish_page_gets_its_statement_from_the_one_builder(w):
    digest = upload(w.c, w.alice_h, b"page weights")
    fields = {"file_name": "m.gguf", "digest": digest, "reference": "alice/page:q8", "quantization": "Q8_0", "model_card": "# Card"}
    r = w.c.post("/api/v1/releases/statement", json.dumps(fields), content_type=JSON, **w.alice_h)
    assert r.status_code == 200, r.content
    payload = __import__("base64").b64decode(r.json()["payload"])
    stmt = statements.parse_release_statement(payload)
    assert (stmt.namespace, stmt.model, stmt.tag, stmt.version, stmt.subject_digest) == ("alice", "page", "q8", 1, digest)
    assert stmt.model_card_digest == digest_bytes(b"# Card") and r.json()["statement"] == json.loads(payload)
    # Signed in the browser (here: with alice's key), it makes a release like one from the CLI.
    envelope = dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, w.alice_key)
    made = w.c.post("/api/v1/releases", json.dumps({"envelope": envelope, "model_card": "# Card"}), content_type=JSON, **w.alice_h)
    assert made.status_code == 201, made.content
    again = w.c.post("/api/v1/releases/statement", json.dumps(fields), content_type=JSON, **w.alice_h)
    assert statements.parse_release_statement(__import__("base64").b64decode(again.json()["payload"])).version == 2
    # Refused: another's namespace, a bad name, a base nobody shows, no login.
    assert w.c.post("/api/v1/releases/statement", json.dumps({**fields, "reference": "bob/page:q8"}), content_type=JSON,
                    **w.alice_h).status_code == 403
    bad = w.c.post("/api/v1/releases/statement", json.dumps({**fields, "file_name": "../evil.gguf"}), content_type=JSON, **w.alice_h)
    assert bad.status_code == 400 and "statement refused" in bad.json()["error"]
    assert w.c.post("/api/v1/releases/statement", json.dumps({**fields, "base": "vault/nothing:f16"}), content_type=JSON,
                    **w.bob_h).status_code in (403, 404)
    assert w.c.post("/api/v1/releases/statement", json.dumps(fields), content_type=JSON).status_code == 401


@db
def test_the_publish_pages_statement_declares_the_blake3_it_computed(w):
    """The page hashes the file with BLAKE3 too; the statement declares it beside the SHA-256 (the
    verifier checks it against the bytes before any client checks a download by it)."""
    from assay.core.digest import new_hash

    data = b"page weights, both digests"
    b3_hash = new_hash("blake3")
    b3_hash.update(data)
    digest, b3 = upload(w.c, w.alice_h, data), "blake3:" + b3_hash.hexdigest()
    fields = {"file_name": "m.gguf", "digest": digest, "blake3": b3, "reference": "alice/b3:q8", "quantization": "Q8_0"}
    r = w.c.post("/api/v1/releases/statement", json.dumps(fields), content_type=JSON, **w.alice_h)
    assert r.status_code == 200, r.content
    stmt = statements.parse_release_statement(__import__("base64").b64decode(r.json()["payload"]))
    assert stmt.blake3 == {digest: b3} and r.json()["statement"]["subject"][0]["digest"]["blake3"] == b3[7:]
    bad = w.c.post("/api/v1/releases/statement", json.dumps({**fields, "blake3": "blake3:xyz"}), content_type=JSON, **w.alice_h)
    assert bad.status_code == 400 and "statement refused" in bad.json()["error"] and "blake3" in bad.json()["error"]
    not_text = w.c.post("/api/v1/releases/statement", json.dumps({**fields, "blake3": 7}), content_type=JSON, **w.alice_h)
    assert not_text.status_code == 400 and "'blake3'" in not_text.json()["error"]
