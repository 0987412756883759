"""Input that passes a first look and broke the server further in (each was a 500 before): a
lone surrogate escape ("\\ud800", valid JSON, no text), NaN/Infinity/1e999 in a JSON body,
numbers of thousands of digits in Range and Content-Range (int() refuses over 4,300 digits),
"²" (str.isdigit() says yes, int() says no), a quantization longer than the old column while the
signed statement allows it. Each is now a 4xx naming the problem, with nothing created.
Django test client against real PostgreSQL."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from django.test import Client

from assay.core import dsse, keys, statements
from assay.core.digest import digest_bytes
from registry.models import LogEntry, PublisherKey, Release
from tests.support import factories as f
from tests.support.factories import registry_dirs  # noqa: F401  (fixture)

JSON = "application/json"
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("registry_dirs")]


@pytest.fixture
def w():
    w = SimpleNamespace(c=Client(raise_request_exception=False))
    w.alice = f.user("alice")
    w.key = f.publisher_key(w.alice)
    _, secret = f.token(w.alice)
    w.h = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    return w


def _upload(w, data: bytes) -> str:
    upload_id = w.c.post("/api/v1/uploads", **w.h).json()["upload_id"]
    r = w.c.patch(f"/api/v1/uploads/{upload_id}", data, content_type="application/octet-stream",
                  HTTP_CONTENT_RANGE=f"bytes 0-{len(data) - 1}/{len(data)}", **w.h)
    assert r.status_code == 202, r.content
    digest = digest_bytes(data)
    assert w.c.put(f"/api/v1/uploads/{upload_id}?digest={digest}", **w.h).status_code == 201
    return digest


def test_a_lone_surrogate_in_a_model_card_is_a_400_naming_the_field(w):
    digest = _upload(w, b"weights for a surrogate")
    body = json.dumps({"file_name": "m.gguf", "digest": digest, "reference": "alice/m:q8", "quantization": "Q8_0"})
    r = w.c.post("/api/v1/releases/statement", body[:-1] + ', "model_card": "\\udc80"}', content_type=JSON, **w.h)
    assert r.status_code == 400 and "'model_card' holds an unpaired surrogate" in r.json()["error"]


def test_a_lone_surrogate_in_a_key_name_registers_and_logs_nothing(w):
    signer = keys.Signer(keys.generate_private_key())
    payload = statements.build_key_event("register", keyid=signer.keyid, public_key=keys.public_key_to_text(signer.public_key),
                                         owner="alice")
    envelope = dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, signer)
    entries = LogEntry.objects.count()
    r = w.c.post("/api/v1/keys", json.dumps({"envelope": envelope})[:-1] + ', "name": "\\ud800"}', content_type=JSON, **w.h)
    assert r.status_code == 400 and "'name' holds an unpaired surrogate" in r.json()["error"]
    assert not PublisherKey.objects.filter(keyid=signer.keyid).exists() and LogEntry.objects.count() == entries


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_a_number_json_cannot_hold_is_a_400(w, number):
    r = w.c.post("/api/v1/tokens", '{"name": "t", "scopes": ["read"], "expires_in_days": %s}' % number, content_type=JSON, **w.h)
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]


def test_a_range_of_thousands_of_digits_is_refused_not_a_500(w):
    digest = _upload(w, b"0123456789")
    r = w.c.get(f"/api/v1/blobs/{digest}", HTTP_RANGE="bytes=" + "1" * 4400 + "-", **w.h)
    assert r.status_code == 416 and "unsupported Range header" in r.json()["error"]
    assert w.c.get(f"/api/v1/blobs/{digest}", HTTP_RANGE="bytes=2-4", **w.h).status_code == 206


def test_a_content_range_of_thousands_of_digits_is_a_400(w):
    upload_id = w.c.post("/api/v1/uploads", **w.h).json()["upload_id"]
    big = "9" * 4400
    r = w.c.patch(f"/api/v1/uploads/{upload_id}", b"abc", content_type="application/octet-stream",
                  HTTP_CONTENT_RANGE=f"bytes 0-{big}/{big}", **w.h)
    assert r.status_code == 400 and "invalid Content-Range" in r.json()["error"] and len(r.json()["error"]) < 300


def test_a_quantization_as_long_as_the_statement_allows_is_stored(w):
    digest = _upload(w, b"weights with a long quantization name")
    quantization = "Q" * 32 + "(1234567890)"  # 44 characters: the statement allows 48, the column held 32
    payload = statements.build_release_statement(
        subject_name="m.gguf", subject_digest=digest, namespace="alice", model="m", tag="q", version=1,
        quantization=quantization, base=None, recipe=None, model_card_digest=None)
    envelope = dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, w.key)
    r = w.c.post("/api/v1/releases", json.dumps({"envelope": envelope}), content_type=JSON, **w.h)
    assert r.status_code == 201, r.content
    assert Release.objects.get().quantization == quantization


@pytest.mark.parametrize("before", ["\u00b2", "1" * 30, "-1"])
def test_a_log_page_before_no_ascii_number_is_a_404(w, before):
    assert w.c.get("/log/", {"before": before}).status_code == 404
