"""Who may do what: every API endpoint and every web view against every kind of caller.

Callers: anonymous, an org reader, publisher and owner, a member of another org, and tokens
that are expired, revoked, of too small a scope, or limited to another namespace. Private
namespaces are invisible (404) to non-members, never merely forbidden (403).
"""
from __future__ import annotations

import json
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.test import Client
from django.utils import timezone

from assay.core import dsse, keys, statements
from registry.models import ApiToken, Membership, PublisherKey, Release, Upload
from tests.support import factories as f
from tests.support.factories import registry_dirs  # noqa: F401  (fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("registry_dirs")]

API_PRINCIPALS = ["anon", "outsider", "reader", "publisher", "owner", "expired", "revoked", "read_scope", "publish_scope", "other_ns"]
WEB_PRINCIPALS = ["anon", "outsider", "reader", "publisher", "owner"]


@pytest.fixture
def world():
    """acme (public) and vault (private), both owned by olivia, with rita reading and paul
    publishing in both; oscar owns an unrelated org. Releases by paul: acme/open:q4 (verified),
    acme/pending:q4 (queued), vault/hidden:q4 (verified)."""
    w = SimpleNamespace()
    w.olivia, w.rita, w.paul, w.oscar = (f.user(n) for n in ("olivia", "rita", "paul", "oscar"))
    members = {w.rita: Membership.READER, w.paul: Membership.PUBLISHER}
    w.acme = f.organization(w.olivia, "acme", members=members)
    w.vault = f.organization(w.olivia, "vault", private=True, members=members)
    w.other = f.organization(w.oscar, "other")
    w.paul_key = f.publisher_key(w.paul, "paul's laptop")
    w.open = f.release(w.paul, w.paul_key, namespace="acme", model="open", status=Release.VERIFIED)
    w.pending = f.release(w.paul, w.paul_key, namespace="acme", model="pending", status=Release.QUEUED)
    w.hidden = f.release(w.paul, w.paul_key, namespace="vault", model="hidden", status=Release.VERIFIED)
    w.users = {"outsider": w.oscar, "reader": w.rita, "publisher": w.paul, "owner": w.olivia}
    return w


def principal(w, name: str):
    """(acting user or None, Authorization headers) for an API caller."""
    if name == "anon":
        return None, {}
    if name in w.users:
        u = w.users[name]
        _, secret = f.token(u)
        return u, {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    u = w.olivia
    if name == "expired":
        tok, secret = f.token(u)
        ApiToken.objects.filter(pk=tok.pk).update(expires_at=timezone.now() - timedelta(days=1))
    elif name == "revoked":
        tok, secret = f.token(u)
        ApiToken.objects.filter(pk=tok.pk).update(revoked_at=timezone.now())
    elif name == "read_scope":
        _, secret = f.token(u, scopes=["read"])
    elif name == "publish_scope":
        _, secret = f.token(u, scopes=["read", "publish"])
    elif name == "other_ns":
        _, secret = f.token(u, namespaces=["olivia"])  # her personal namespace, not acme or vault
    else:
        raise AssertionError(name)
    return u, {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def expect(default: int, **overrides: int) -> dict:
    table = {p: default for p in API_PRINCIPALS}
    table.update(expired=401, revoked=401)  # a bad token is refused everywhere, even on public endpoints
    table.update(overrides)
    return table


def new_key_envelope(u) -> dict:
    signer = keys.Signer(keys.generate_private_key())
    payload = statements.build_key_event("register", keyid=signer.keyid, public_key=keys.public_key_to_text(signer.public_key), owner=u.username)
    return dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, signer)


def paul_upload(w) -> str:
    from registry.blobstore import get_blob_store

    upload_id = get_blob_store().new_upload()
    Upload.objects.create(id=upload_id, user=w.paul)
    return upload_id


def release_body(w, u, namespace: str) -> dict:
    if u is None:
        signer, digest = keys.Signer(keys.generate_private_key()), f.blob()
    else:
        signer, digest = f.publisher_key(u), f.blob(uploaded_by=u)
    return {"envelope": f.release_envelope(signer, digest=digest, namespace=namespace, model="fresh")}


JSON = "application/json"

# name -> (request builder (world, acting user) -> (method, path, kwargs), expected status per principal)
API_CASES = {
    "upload start": (lambda w, u: ("post", "/api/v1/uploads", {}), expect(201, anon=401, read_scope=403)),
    "upload offset (paul's)": (lambda w, u: ("get", f"/api/v1/uploads/{paul_upload(w)}", {}),
                               expect(404, anon=401, publisher=200, read_scope=403)),
    "upload chunk (paul's)": (lambda w, u: ("patch", f"/api/v1/uploads/{paul_upload(w)}", {"data": b"abcd", "content_type": "application/octet-stream", "HTTP_CONTENT_RANGE": "bytes 0-3/4"}),
                              expect(404, anon=401, publisher=202, read_scope=403)),
    "upload abort (paul's)": (lambda w, u: ("delete", f"/api/v1/uploads/{paul_upload(w)}", {}),
                              expect(404, anon=401, publisher=204, read_scope=403)),
    "blob of a verified public release": (lambda w, u: ("get", f"/api/v1/blobs/{w.open.blob_id}", {}), expect(200, other_ns=404)),
    "blob of a queued public release": (lambda w, u: ("get", f"/api/v1/blobs/{w.pending.blob_id}", {}),
                                        expect(200, anon=403, outsider=403, reader=403, other_ns=404)),
    "blob of a verified private release": (lambda w, u: ("get", f"/api/v1/blobs/{w.hidden.blob_id}", {}),
                                           expect(200, anon=404, outsider=404, other_ns=404)),
    "release create (public ns)": (lambda w, u: ("post", "/api/v1/releases", {"data": json.dumps(release_body(w, u, "acme")), "content_type": JSON}),
                                   expect(201, anon=401, outsider=403, reader=403, read_scope=403, other_ns=403)),
    "release create (private ns)": (lambda w, u: ("post", "/api/v1/releases", {"data": json.dumps(release_body(w, u, "vault")), "content_type": JSON}),
                                    expect(201, anon=401, outsider=404, reader=403, read_scope=403, other_ns=403)),
    "resolve verified public": (lambda w, u: ("get", "/api/v1/releases/acme/open:q4", {}), expect(200, other_ns=404)),
    "resolve verified private": (lambda w, u: ("get", "/api/v1/releases/vault/hidden:q4", {}), expect(200, anon=404, outsider=404, other_ns=404)),
    # Releases that are not verified are invisible (404) to those who may not publish there, as on the web.
    "resolve queued (pull)": (lambda w, u: ("get", "/api/v1/releases/acme/pending:q4", {}), expect(409, anon=404, outsider=404, reader=404, other_ns=404)),
    "resolve queued (?any=1)": (lambda w, u: ("get", "/api/v1/releases/acme/pending:q4?any=1", {}),
                                expect(200, anon=404, outsider=404, reader=404, other_ns=404)),
    "status verified public": (lambda w, u: ("get", "/api/v1/releases/acme/open:q4/status", {}), expect(200, other_ns=404)),
    "status verified private": (lambda w, u: ("get", "/api/v1/releases/vault/hidden:q4/status", {}), expect(200, anon=404, outsider=404, other_ns=404)),
    "status queued": (lambda w, u: ("get", "/api/v1/releases/acme/pending:q4/status", {}),
                      expect(200, anon=404, outsider=404, reader=404, other_ns=404)),
    "status missing": (lambda w, u: ("get", "/api/v1/releases/acme/nothing:q4/status", {}), expect(404)),
    "keys list": (lambda w, u: ("get", "/api/v1/keys", {}), expect(200, anon=401)),
    "key register": (lambda w, u: ("post", "/api/v1/keys", {"data": json.dumps({"envelope": new_key_envelope(u or w.olivia)}), "content_type": JSON}),
                     expect(201, anon=401, read_scope=403, other_ns=403)),  # keys are account-wide
    "key detail (public)": (lambda w, u: ("get", f"/api/v1/keys/{w.paul_key.keyid}", {}), expect(200)),
    "key revoke (paul's)": (lambda w, u: ("post", f"/api/v1/keys/{w.paul_key.keyid}/revoke", {"data": "{}", "content_type": JSON}),
                            expect(404, anon=401, publisher=200, read_scope=403, other_ns=403)),
    "trust": (lambda w, u: ("get", "/api/v1/trust", {}), expect(200)),
    "well-known trust": (lambda w, u: ("get", "/.well-known/assay.json", {}), expect(200)),
    "log checkpoint": (lambda w, u: ("get", "/api/v1/log/checkpoint", {}), expect(200)),
    "log entries": (lambda w, u: ("get", "/api/v1/log/entries?start=0&end=2", {}), expect(200)),
    "log inclusion": (lambda w, u: ("get", "/api/v1/log/proof/inclusion?index=0&size=2", {}), expect(200)),
    "log consistency": (lambda w, u: ("get", "/api/v1/log/proof/consistency?old=1&new=2", {}), expect(200)),
    "tokens list": (lambda w, u: ("get", "/api/v1/tokens", {}), expect(200, anon=401, read_scope=403, publish_scope=403)),
    "token create (all namespaces)": (lambda w, u: ("post", "/api/v1/tokens", {"data": json.dumps({"name": "n", "scopes": ["read"]}), "content_type": JSON}),
                                      expect(201, anon=401, read_scope=403, publish_scope=403, other_ns=403)),
    # an account-wide token of one's own: a token limited to some namespaces cannot revoke it
    "token revoke (own)": (lambda w, u: ("delete", f"/api/v1/tokens/{f.token(u or w.olivia)[0].pk}", {}),
                           expect(200, anon=401, read_scope=403, publish_scope=403, other_ns=404)),
    "token revoke (someone else's)": (lambda w, u: ("delete", f"/api/v1/tokens/{f.token(w.rita if u != w.rita else w.paul)[0].pk}", {}),
                                      expect(404, anon=401, read_scope=403, publish_scope=403)),
    "whoami": (lambda w, u: ("get", "/api/v1/whoami", {}), expect(200, anon=401)),
}


@pytest.mark.parametrize("who", API_PRINCIPALS)
@pytest.mark.parametrize("case", list(API_CASES))
def test_api_matrix(world, case, who):
    build, expected = API_CASES[case]
    u, headers = principal(world, who)
    method, path, kwargs = build(world, u)
    response = getattr(Client(), method)(path, **kwargs, **headers)
    assert response.status_code == expected[who], f"{case} as {who}: {response.status_code} {response.content[:300]!r}"
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body.get("error"), str) and body["error"], body
        if who == "expired":
            assert "expired" in body["error"]
        if who == "revoked":
            assert "revoked" in body["error"]
        if who in ("anon", "outsider") and "vault" in path:
            assert "vault" not in body["error"] or "not found" in body["error"]


def test_api_side_effects_only_for_the_allowed(world):
    """Denied writes leave nothing behind; allowed ones do what they say."""
    _, rita = principal(world, "reader")
    body = release_body(world, world.rita, "acme")
    assert Client().post("/api/v1/releases", json.dumps(body), content_type=JSON, **rita).status_code == 403
    assert not Release.objects.filter(model__name="fresh").exists()
    _, ro = principal(world, "read_scope")
    Client().post(f"/api/v1/keys/{world.paul_key.keyid}/revoke", "{}", content_type=JSON, **ro)
    assert not PublisherKey.objects.get(keyid=world.paul_key.keyid).revoked
    _, paul = principal(world, "publisher")
    assert Client().post(f"/api/v1/keys/{world.paul_key.keyid}/revoke", "{}", content_type=JSON, **paul).status_code == 200
    assert PublisherKey.objects.get(keyid=world.paul_key.keyid).revoked


def test_namespace_limited_token_can_only_mint_narrower_tokens(world):
    _, headers = principal(world, "other_ns")
    c = Client()
    ok = c.post("/api/v1/tokens", json.dumps({"name": "n", "scopes": ["read"], "namespaces": ["olivia"]}), content_type=JSON, **headers)
    assert ok.status_code == 201 and ok.json()["namespaces"] == ["olivia"]
    wider = c.post("/api/v1/tokens", json.dumps({"name": "n", "scopes": ["read"], "namespaces": ["olivia", "acme"]}), content_type=JSON, **headers)
    assert wider.status_code == 403 and "error" in wider.json()


def test_api_wrong_method_and_bad_header_are_json_errors(world):
    c = Client()
    r = c.put("/api/v1/trust")
    assert r.status_code == 405 and "not allowed" in r.json()["error"]
    r = c.get("/api/v1/whoami", HTTP_AUTHORIZATION="Basic abc")
    assert r.status_code == 401 and "Bearer" in r.json()["error"]
    r = c.get("/api/v1/whoami", HTTP_AUTHORIZATION="Bearer assay_not-a-real-token")
    assert r.status_code == 401 and r.json()["error"] == "invalid API token"


# -- web views (session login) ------------------------------------------------------------------

def web_expect(default, **overrides) -> dict:
    return {p: overrides.get(p, default) for p in WEB_PRINCIPALS}


LOGIN = "login"  # a redirect to the login page

WEB_CASES = {
    "home": (lambda w, u: ("get", "/", {}), web_expect(200)),
    "trust page": (lambda w, u: ("get", "/trust", {}), web_expect(200)),
    "login page": (lambda w, u: ("get", "/login/", {}), web_expect(200)),
    "signup page": (lambda w, u: ("get", "/signup", {}), web_expect(200)),
    "settings": (lambda w, u: ("get", "/settings", {}), web_expect(200, anon=LOGIN)),
    "token create": (lambda w, u: ("post", "/settings", {"data": {"name": "t", "scopes": ["read"], "expires_in_days": 7}}), web_expect(200, anon=LOGIN)),
    "publish page": (lambda w, u: ("get", "/publish", {}), web_expect(200, anon=LOGIN)),
    "token revoke": (lambda w, u: ("post", f"/settings/tokens/{f.token(u or w.olivia)[0].pk}/revoke", {}), web_expect(302, anon=LOGIN)),
    "token revoke by GET": (lambda w, u: ("get", f"/settings/tokens/{f.token(u or w.olivia)[0].pk}/revoke", {}), web_expect(405, anon=LOGIN)),
    "key revoke (paul's)": (lambda w, u: ("post", f"/settings/keys/{w.paul_key.keyid}/revoke", {}), web_expect(302, anon=LOGIN)),
    "org create page": (lambda w, u: ("get", "/orgs/new", {}), web_expect(200, anon=LOGIN)),
    "org page (public org)": (lambda w, u: ("get", "/orgs/acme", {}), web_expect(200, anon=LOGIN, outsider=404)),
    "org page (private org)": (lambda w, u: ("get", "/orgs/vault", {}), web_expect(200, anon=LOGIN, outsider=404)),
    "org page (missing)": (lambda w, u: ("get", "/orgs/nope", {}), web_expect(404, anon=LOGIN)),
    "org member add": (lambda w, u: ("post", "/orgs/vault", {"data": {"username": "oscar", "role": "reader"}}),
                       web_expect(404, anon=LOGIN, owner=302)),
    "model page (public)": (lambda w, u: ("get", "/acme/open", {}), web_expect(200)),
    "model page (private)": (lambda w, u: ("get", "/vault/hidden", {}), web_expect(200, anon=404, outsider=404)),
    "model page (missing)": (lambda w, u: ("get", "/acme/nothing", {}), web_expect(404)),
    "release page (verified public)": (lambda w, u: ("get", "/acme/open/releases/q4/1", {}), web_expect(200)),
    "release page (queued public)": (lambda w, u: ("get", "/acme/pending/releases/q4/1", {}), web_expect(404, publisher=200, owner=200)),
    "release page (verified private)": (lambda w, u: ("get", "/vault/hidden/releases/q4/1", {}), web_expect(200, anon=404, outsider=404)),
    "release status.json (queued public)": (lambda w, u: ("get", "/acme/pending/releases/q4/1/status.json", {}), web_expect(404, publisher=200, owner=200)),
    "release status.json (verified private)": (lambda w, u: ("get", "/vault/hidden/releases/q4/1/status.json", {}), web_expect(200, anon=404, outsider=404)),
    "logout": (lambda w, u: ("post", "/logout/", {}), web_expect(302)),
}


@pytest.mark.parametrize("who", WEB_PRINCIPALS)
@pytest.mark.parametrize("case", list(WEB_CASES))
def test_web_matrix(world, case, who):
    build, expected = WEB_CASES[case]
    c = Client()
    u = world.users.get(who)
    if u is not None:
        c.force_login(u)
    method, path, kwargs = build(world, u)
    response = getattr(c, method)(path, **kwargs)
    want = expected[who]
    if want == LOGIN:
        assert response.status_code == 302 and response["Location"].startswith("/login/?next="), (case, who, response.status_code)
    else:
        assert response.status_code == want, f"{case} as {who}: {response.status_code}"
    if response.status_code == 404:
        assert b"vault" not in response.content and b"hidden" not in response.content


def test_web_writes_take_effect_only_for_the_allowed(world):
    c = Client()
    c.force_login(world.olivia)
    c.post(f"/settings/keys/{world.paul_key.keyid}/revoke")
    assert not PublisherKey.objects.get(keyid=world.paul_key.keyid).revoked  # not her key
    rita_token, _ = f.token(world.rita)
    c.post(f"/settings/tokens/{rita_token.pk}/revoke")
    rita_token.refresh_from_db()
    assert rita_token.revoked_at is None  # not her token
    c.force_login(world.paul)
    assert c.post("/orgs/vault", {"username": "oscar", "role": "owner"}).status_code == 404
    assert not world.vault.memberships.filter(user=world.oscar).exists()
    c.force_login(world.olivia)
    assert c.post("/orgs/vault", {"username": "oscar", "role": "reader"}).status_code == 302
    assert world.vault.memberships.get(user=world.oscar).role == "reader"


def test_private_models_are_not_listed_or_searchable_for_outsiders(world):
    for who, sees in (("anon", False), ("outsider", False), ("reader", True), ("owner", True)):
        c = Client()
        if who in world.users:
            c.force_login(world.users[who])
        for path in ("/", "/?q=hidden"):
            assert (b"vault/hidden" in c.get(path).content) is sees, (who, path)
        assert b"acme/open" in c.get("/").content


def test_queued_releases_are_hidden_from_non_publishers_on_the_model_page(world):
    c = Client()
    c.force_login(world.rita)
    assert b"releases/q4/1" not in c.get("/acme/pending").content
    c.force_login(world.paul)
    assert b"releases/q4/1" in c.get("/acme/pending").content


def test_publish_page_offers_only_namespaces_the_user_may_publish_in(world):
    c = Client()
    c.force_login(world.rita)
    page = c.get("/publish").content.decode()
    assert "<option>rita</option>" in page and "<option>acme</option>" not in page
    c.force_login(world.paul)
    page = c.get("/publish").content.decode()
    assert "<option>acme</option>" in page and "<option>vault</option>" in page


def test_session_login_and_logout_through_the_forms(world):
    c = Client()
    r = c.post("/login/", {"username": "rita", "password": f.PASSWORD})
    assert r.status_code == 302
    assert c.get("/api/v1/whoami").json()["username"] == "rita"
    assert c.post("/login/", {"username": "rita", "password": "wrong"}).status_code == 200
    c.post("/logout/")
    assert c.get("/api/v1/whoami").status_code == 401


def test_signup_creates_account_and_namespace(world):
    c = Client()
    r = c.post("/signup", {"username": "newbie", "password": "long enough pw"})
    assert r.status_code == 302 and r["Location"] == "/settings"
    assert c.get("/api/v1/whoami").json()["username"] == "newbie"
    taken = c.post("/signup", {"username": "acme", "password": "long enough pw"})
    assert taken.status_code == 200 and b"taken" in taken.content
    reserved = c.post("/signup", {"username": "settings", "password": "long enough pw"})
    assert reserved.status_code == 200 and b"reserved" in reserved.content


def test_token_created_in_settings_is_shown_once_and_works(world):
    c = Client()
    c.force_login(world.rita)
    page = c.post("/settings", {"name": "ci", "scopes": ["read"], "namespaces": "acme", "expires_in_days": 7}).content.decode()
    import re

    secret = re.search(r'id="new-token">(assay_[^<]+)<', page).group(1)
    assert Client().get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {secret}").json()["token"]["namespaces"] == ["acme"]
    assert secret not in c.get("/settings").content.decode()
