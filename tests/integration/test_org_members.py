"""Organization membership through the web UI: add, change, remove; an organization always
keeps an owner; only owners manage members."""
from __future__ import annotations

import pytest
from django.test import Client

from registry.accounts import remove_member, set_member
from registry.errors import RegistryError
from registry.models import Membership
from tests.support import factories as f
from tests.support.factories import registry_dirs  # noqa: F401  (fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("registry_dirs")]


@pytest.fixture
def org():
    alice, bob = f.user("alice"), f.user("bob")
    return f.organization(alice, "acme", members={bob: "publisher"}), alice, bob


def client(u) -> Client:
    c = Client()
    c.force_login(u)
    return c


def roles(org) -> dict:
    return {m.user.username: m.role for m in Membership.objects.filter(organization=org).select_related("user")}


def test_owner_adds_changes_and_removes_members(org):
    org, alice, bob = org
    carol = f.user("carol")
    c = client(alice)
    assert c.post("/orgs/acme", {"username": "carol", "role": "reader"}).status_code == 302
    assert c.post("/orgs/acme", {"username": "bob", "role": "owner"}).status_code == 302
    assert roles(org) == {"alice": "owner", "bob": "owner", "carol": "reader"}
    page = c.get("/orgs/acme").content.decode()
    assert 'action="/orgs/acme/members/carol/remove"' in page
    assert c.post("/orgs/acme/members/carol/remove").status_code == 302
    assert roles(org) == {"alice": "owner", "bob": "owner"}
    assert "carol is no longer a member of acme" in c.get("/orgs/acme").content.decode()
    assert not Membership.objects.filter(user=carol).exists()


def test_the_last_owner_can_neither_step_down_nor_be_removed(org):
    org, alice, bob = org
    c = client(alice)
    r = c.post("/orgs/acme", {"username": "alice", "role": "reader"})
    assert r.status_code == 400 and "last owner of acme" in r.content.decode()
    r = c.post("/orgs/acme/members/alice/remove", follow=True)
    assert "last owner of acme" in r.content.decode()
    assert roles(org)["alice"] == "owner"
    with pytest.raises(RegistryError, match="last owner"):
        set_member(org, alice, "publisher")
    with pytest.raises(RegistryError, match="last owner"):
        remove_member(org, alice)
    set_member(org, bob, "owner")  # with a second owner, alice may step down
    set_member(org, alice, "reader")
    assert roles(org) == {"alice": "reader", "bob": "owner"}


@pytest.mark.parametrize("who", ["publisher", "outsider", "anon"])
def test_only_owners_manage_members(org, who):
    org, alice, bob = org
    c = {"publisher": lambda: client(bob), "outsider": lambda: client(f.user("mallory")), "anon": Client}[who]()
    r = c.post("/orgs/acme/members/alice/remove")
    assert r.status_code in (302, 404) and (r.status_code == 404 or "/login" in r["Location"])
    r = c.post("/orgs/acme", {"username": "bob", "role": "owner"})
    assert r.status_code in (302, 404) and (r.status_code == 404 or "/login" in r["Location"])
    assert roles(org) == {"alice": "owner", "bob": "publisher"}


def test_adding_an_unknown_user_says_so(org):
    org, alice, _ = org
    r = client(alice).post("/orgs/acme", {"username": "nobody", "role": "reader"})
    assert r.status_code == 400 and "no such user" in r.content.decode()
