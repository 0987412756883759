"""The API's JSON inputs under property-based fuzzing (Hypothesis, bounded): any JSON body on any
endpoint that reads one is answered with a JSON error of a 4xx status or a success, never a 500,
and nothing half-made is left behind by a refusal."""
from __future__ import annotations

import json
import os

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.models import ApiToken, PublisherKey, Release
from tests.support import factories as f
from tests.support.factories import registry_dirs  # noqa: F401  (fixture)
from tests.unit.test_fuzz import JSON

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("registry_dirs")]
FUZZ = settings(max_examples=int(os.environ.get("ASSAY_FUZZ_EXAMPLES", "120")), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
ENDPOINTS = ["/api/v1/releases", "/api/v1/keys", "/api/v1/tokens", "/api/v1/keys/sha256:" + "a" * 64 + "/revoke"]


@pytest.fixture
def alice():
    user = f.user("alice")
    _, secret = f.token(user)
    return user, {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def _check(response) -> None:
    assert response.status_code < 500, response.content[:300]
    if response.status_code >= 400:
        assert isinstance(response.json()["error"], str) and response.json()["error"]


@FUZZ
@given(endpoint=st.sampled_from(ENDPOINTS), body=JSON)
def test_any_json_body_is_a_clear_4xx(alice, endpoint, body):
    _, headers = alice
    before = (Release.objects.count(), PublisherKey.objects.count(), ApiToken.objects.count())
    response = Client().post(endpoint, json.dumps(body), content_type="application/json", **headers)
    _check(response)
    if response.status_code >= 400:
        assert (Release.objects.count(), PublisherKey.objects.count(), ApiToken.objects.count()) == before


@FUZZ
@given(endpoint=st.sampled_from(ENDPOINTS), field=st.sampled_from(["envelope", "namespaces", "scopes", "name", "expires_in_days", "reason"]),
       value=JSON)
def test_any_value_in_a_known_field_is_a_clear_4xx(alice, endpoint, field, value):
    _, headers = alice
    body = {"envelope": {"payloadType": "application/vnd.in-toto+json", "payload": "e30=", "signatures": [{"keyid": "k", "sig": "AA=="}]},
            "name": "t", "scopes": ["read"]}
    body[field] = value
    _check(Client().post(endpoint, json.dumps(body), content_type="application/json", **headers))


@FUZZ
@given(raw=st.binary(max_size=300))
def test_any_bytes_as_a_json_body_are_a_clear_4xx(alice, raw):
    _, headers = alice
    _check(Client().post("/api/v1/releases", raw, content_type="application/json", **headers))
