"""GET /api/v1/models (`assay list` / `assay search`): readers find verified releases of the
namespaces they may read, publishers their pending ones too, and a token only its namespaces."""
from __future__ import annotations

import pytest
from django.test import Client

from registry.models import Release
from tests.support import factories as f
from tests.support.factories import registry_dirs  # noqa: F401  (fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("registry_dirs")]


@pytest.fixture
def world():
    alice, bob = f.user("alice"), f.user("bob")
    f.organization(alice, "acme")
    f.organization(alice, "vault", private=True)
    key = f.publisher_key(alice)
    rel = f.release(alice, key, namespace="acme", model="smollm2", tag="q4", status=Release.VERIFIED)
    rel.level = "reproduced"
    rel.save()
    f.release(alice, key, namespace="acme", model="pending", tag="q4", data=b"p", status=Release.QUEUED)
    f.release(alice, key, namespace="vault", model="secret", tag="q4", data=b"s", status=Release.VERIFIED)
    return alice, bob


def names(client, query="", **headers):
    return {m["name"]: m for m in client.get("/api/v1/models", {"q": query} if query else {}, **headers).json()["models"]}


def test_readers_find_verified_public_releases_with_their_level(world):
    found = names(Client())
    assert set(found) == {"acme/smollm2"}
    [tag] = found["acme/smollm2"]["tags"]
    assert (tag["tag"], tag["version"], tag["status"], tag["level"]) == ("q4", 1, "verified", "reproduced")
    assert tag["digest"].startswith("sha256:") and isinstance(tag["size"], int)
    assert names(Client(), "smol").keys() == {"acme/smollm2"} and names(Client(), "nothing") == {}


def test_members_see_private_and_pending_and_tokens_stay_in_their_namespaces(world):
    alice, bob = world
    c = Client()
    c.force_login(alice)
    assert set(names(c)) == {"acme/smollm2", "acme/pending", "vault/secret"}
    outsider = Client()
    outsider.force_login(bob)
    assert set(names(outsider)) == {"acme/smollm2"}
    _, secret = f.token(alice, namespaces=["vault"])
    assert set(names(Client(), HTTP_AUTHORIZATION=f"Bearer {secret}")) == {"vault/secret"}
