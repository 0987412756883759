"""CSRF on every form and session-authenticated API write; XSS through model cards, names,
status reasons and step summaries."""
from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest
from django.test import Client

from assay.core.errors import AssayError
from registry.errors import RegistryError
from registry.accounts import set_member
from registry.models import ApiToken, Membership, Organization, PublisherKey, Release, VerificationStep
from tests.support import factories as f
from tests.support.factories import registry_dirs  # noqa: F401  (fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("registry_dirs")]


@pytest.fixture
def alice():
    u = f.user("alice")
    f.organization(u, "acme")
    return u


def csrf_client(u=None) -> Client:
    c = Client(enforce_csrf_checks=True)
    if u is not None:
        c.force_login(u)
    return c


# -- CSRF ---------------------------------------------------------------------------------------
def _new_member(org_name: str):
    member = f.user(f"member{Membership.objects.count()}")
    set_member(Organization.objects.get(name=org_name), member, "reader")
    return member


FORMS = {
    "signup": (False, lambda u: ("/signup", {"username": "mallory", "password": "long enough pw"})),
    "login": (False, lambda u: ("/login/", {"username": "alice", "password": f.PASSWORD})),
    "logout": (True, lambda u: ("/logout/", {})),
    "settings token create": (True, lambda u: ("/settings", {"name": "t", "scopes": ["admin"], "expires_in_days": 7})),
    "token revoke": (True, lambda u: (f"/settings/tokens/{f.token(u)[0].pk}/revoke", {})),
    "key revoke": (True, lambda u: (f"/settings/keys/{f.publisher_key(u).keyid}/revoke", {})),
    "org create": (True, lambda u: ("/orgs/new", {"name": "evil", "display_name": ""})),
    "org members": (True, lambda u: ("/orgs/acme", {"username": "alice", "role": "owner"})),
    "org member remove": (True, lambda u: (f"/orgs/acme/members/{_new_member('acme').username}/remove", {})),
}


@pytest.mark.parametrize("form", list(FORMS))
def test_every_form_refuses_a_post_without_csrf_token(alice, form):
    logged_in, build = FORMS[form]
    c = csrf_client(alice if logged_in else None)
    path, data = build(alice)
    before = (ApiToken.objects.filter(revoked_at__isnull=True).count(), PublisherKey.objects.filter(revoked_at__isnull=True).count(),
              Organization.objects.count(), Membership.objects.count())
    assert c.post(path, data).status_code == 403
    after = (ApiToken.objects.filter(revoked_at__isnull=True).count(), PublisherKey.objects.filter(revoked_at__isnull=True).count(),
             Organization.objects.count(), Membership.objects.count())
    assert after == before


@pytest.mark.parametrize("form", list(FORMS))
def test_every_form_accepts_a_post_with_the_csrf_token(alice, form):
    logged_in, build = FORMS[form]
    c = csrf_client(alice if logged_in else None)
    c.get("/login/")  # sets the csrftoken cookie
    path, data = build(alice)
    response = c.post(path, {**data, "csrfmiddlewaretoken": c.cookies["csrftoken"].value})
    assert response.status_code in (200, 302), (form, response.status_code)


def _api_writes(u, model="m"):
    key = f.publisher_key(u)
    upload = Client()
    upload.force_login(u)
    upload_id = upload.post("/api/v1/uploads").json()["upload_id"]
    return {
        "upload start": ("post", "/api/v1/uploads", {}),
        "upload chunk": ("patch", f"/api/v1/uploads/{upload_id}", {"data": b"ab", "content_type": "application/octet-stream"}),
        "upload abort": ("delete", f"/api/v1/uploads/{upload_id}", {}),
        "release create": ("post", "/api/v1/releases", {"data": json.dumps({"envelope": f.release_envelope(key, digest=f.blob(uploaded_by=u), namespace="acme", model=model)}), "content_type": "application/json"}),
        "key revoke": ("post", f"/api/v1/keys/{key.keyid}/revoke", {"data": "{}", "content_type": "application/json"}),
        "token create": ("post", "/api/v1/tokens", {"data": json.dumps({"name": "x", "scopes": ["admin"]}), "content_type": "application/json"}),
        "token revoke": ("delete", f"/api/v1/tokens/{f.token(u)[0].pk}", {}),
    }


def test_session_api_writes_need_csrf_but_token_writes_do_not(alice):
    for name, (method, path, kwargs) in _api_writes(alice).items():
        r = getattr(csrf_client(alice), method)(path, **kwargs)
        assert r.status_code == 403 and r.json() == {"error": "CSRF check failed"}, name
    assert not Release.objects.exists() and not PublisherKey.objects.filter(revoked_at__isnull=False).exists()
    assert not ApiToken.objects.filter(revoked_at__isnull=False).exists() and ApiToken.objects.count() == 1  # none minted

    c = csrf_client(alice)
    c.get("/publish")
    header = {"HTTP_X_CSRFTOKEN": c.cookies["csrftoken"].value}
    for name, (method, path, kwargs) in _api_writes(alice, "m2").items():
        r = getattr(c, method)(path, **kwargs, **header)
        assert r.status_code < 300, (name, r.status_code, r.content[:300])

    _, secret = f.token(alice)
    for name, (method, path, kwargs) in _api_writes(alice, "m3").items():
        r = getattr(Client(enforce_csrf_checks=True), method)(path, **kwargs, HTTP_AUTHORIZATION=f"Bearer {secret}")
        assert r.status_code < 300, (name, r.status_code, r.content[:300])


def test_session_api_reads_need_no_csrf(alice):
    assert csrf_client(alice).get("/api/v1/whoami").json()["username"] == "alice"


# -- XSS ----------------------------------------------------------------------------------------

HOSTILE_CARD = """# Totally normal model

<script>alert("card-script")</script>

<img src=x onerror="alert('card-onerror')">

<a href="javascript:alert('card-js-href')">click me</a> and [a link](javascript:alert('md-js-link'))

<div onclick="alert('card-onclick')" style="background:url(javascript:alert(1))">hover</div>

<svg onload=alert('svg')></svg><iframe src="javascript:alert('iframe')"></iframe>

[fine](https://example.com/ok)
"""


class Inspector(HTMLParser):
    """Collects what a browser would execute: script bodies, handler attributes, script URLs."""

    def __init__(self):
        super().__init__()
        self.scripts: list[str] = []
        self.handlers: list[tuple[str, str]] = []
        self.urls: list[str] = []
        self.tags: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in_script = tag == "script"
        if tag == "script":
            self.scripts.append(dict(attrs).get("src") or "")
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append((name, value or ""))
            if name in ("href", "src", "action", "formaction", "style") and value and "javascript:" in value.replace(" ", "").lower():
                self.urls.append(value)

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data


def inert(html: str) -> Inspector:
    page = Inspector()
    page.feed(html)
    assert page.handlers == [], page.handlers
    assert page.urls == [], page.urls
    assert not any("alert" in s for s in page.scripts), page.scripts
    assert "iframe" not in page.tags and "svg" not in page.tags
    return page


@pytest.fixture
def hostile_release(alice):
    key = f.publisher_key(alice)
    return f.release(
        alice, key, namespace="acme", model="m", model_card=HOSTILE_CARD, status=Release.VERIFIED,
        status_reason='<script>alert("reason")</script><img src=x onerror=alert("reason-img")>',
        steps={"static": ("failed", '<b onmouseover="alert(\'summary\')">bold</b><script>alert("summary")</script>')},
    )


@pytest.mark.parametrize("who", ["anon", "owner"])
def test_model_card_is_rendered_inert_on_model_and_release_pages(alice, hostile_release, who):
    c = Client()
    if who == "owner":
        c.force_login(alice)
    for path in ("/acme/m", "/acme/m/releases/q4/1"):
        html = c.get(path).content.decode()
        inert(html)
        assert "Totally normal model" in html and 'href="https://example.com/ok"' in html  # still rendered
        assert "click me" in html  # link text kept, the javascript: href dropped


def test_status_reason_step_summary_and_evidence_are_escaped(alice, hostile_release):
    VerificationStep.objects.filter(release=hostile_release, name="probes").update(evidence={"note": "<script>alert('evidence')</script>"})
    c = Client()
    c.force_login(alice)
    html = c.get("/acme/m/releases/q4/1").content.decode()
    inert(html)
    assert "&lt;script&gt;alert(&quot;reason&quot;)&lt;/script&gt;" in html
    assert "&lt;b onmouseover=" in html
    assert "&lt;script&gt;alert(&#x27;evidence&#x27;)" in html or "&lt;script&gt;alert(\\&#x27;evidence" in html
    data = c.get("/acme/m/releases/q4/1/status.json").json()  # JSON for the page's textContent updates
    assert data["status_reason"].startswith("<script>")


def test_polling_script_uses_text_not_html_for_server_strings(alice, hostile_release):
    Release.objects.filter(pk=hostile_release.pk).update(status=Release.VERIFYING)
    c = Client()
    c.force_login(alice)
    html = c.get("/acme/m/releases/q4/1").content.decode()
    script = [s for s in inert(html).scripts if "status.json" in s][0]
    assert "textContent = data.status_reason" in script and "textContent = s.summary" in script
    assert "innerHTML = data" not in script and "innerHTML = s." not in script


@pytest.mark.parametrize("name", ["<script>", "a<b>c", 'x"onload=1', "ja vascript", "UPPER", "../etc", "x/y", ".hidden", "a&b"])
def test_names_with_markup_are_refused_everywhere(alice, name):
    with pytest.raises(RegistryError) as exc:
        f.user(name)
    assert exc.value.status == 400
    with pytest.raises(RegistryError):
        f.organization(alice, name)
    with pytest.raises(AssayError):
        f.release_envelope(f.publisher_key(alice), digest=f.blob(), namespace="acme", model=name)
    r = Client().post("/signup", {"username": name, "password": "long enough pw"})
    assert r.status_code == 200 and not Release.objects.exists()
    assert "<script>" not in r.content.decode().split("<main>")[1] or name != "<script>"
    c = Client()
    c.force_login(alice)
    assert c.post("/orgs/new", {"name": name}).status_code == 200
    assert not Organization.objects.filter(name=name).exists()


def test_tags_with_markup_are_refused(alice):
    with pytest.raises(AssayError):
        f.release_envelope(f.publisher_key(alice), digest=f.blob(), namespace="acme", model="m", tag="<img src=x>")


def test_markup_in_display_name_and_search_query_is_escaped(alice):
    org = f.organization(alice, "org2", display_name='<img src=x onerror=alert("dn")>')
    c = Client()
    c.force_login(alice)
    html = c.get(f"/orgs/{org.name}").content.decode()
    inert(html)
    assert "&lt;img src=x onerror=" in html
    html = Client().get("/", {"q": '"><script>alert("q")</script>'}).content.decode()
    inert(html)
    assert "&lt;script&gt;" in html


# -- security headers and the secret key -----------------------------------------------------------

def test_pages_carry_a_content_security_policy_with_a_fresh_nonce(alice):
    import re as _re

    signer = f.publisher_key(alice)
    f.release(alice, signer, namespace="acme", model="m", status=Release.QUEUED)  # its page polls with a script
    c = Client()
    c.force_login(alice)
    pages = [c.get("/acme/m/releases/q4/1"), c.get("/acme/m/releases/q4/1")]
    nonces = []
    for page in pages:
        csp = page["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
        assert "'unsafe-inline'" not in csp
        nonce = _re.search(r"'nonce-([^']+)'", csp).group(1)
        assert f'<script nonce="{nonce}">' in page.content.decode()  # the live-status script runs
        nonces.append(nonce)
        assert page["X-Frame-Options"] == "DENY" and page["X-Content-Type-Options"] == "nosniff"
        assert page["Referrer-Policy"] == "same-origin"
    assert nonces[0] != nonces[1]
    assert "Content-Security-Policy" not in c.get("/api/v1/trust")  # JSON needs none
    assert "wasm-unsafe-eval" not in pages[0]["Content-Security-Policy"]


def test_only_the_publish_page_may_compile_webassembly(alice):
    """The publish page hashes in WebAssembly (hash-wasm): its policy adds 'wasm-unsafe-eval', never
    'unsafe-eval' (no string runs as script), and no other page gets it."""
    c = Client()
    c.force_login(alice)
    page = c.get("/publish")
    assert page.status_code == 200
    csp = page["Content-Security-Policy"]
    assert "'wasm-unsafe-eval'" in csp and "'unsafe-eval'" not in csp.replace("'wasm-unsafe-eval'", "")
    assert "hash-wasm-4.13.0/blake3.umd.min.js" in page.content.decode()
    assert "wasm-unsafe-eval" not in c.get("/")["Content-Security-Policy"]


def test_hsts_and_secure_cookies_when_served_over_tls(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 31536000
    r = Client().get("/trust", HTTP_X_FORWARDED_PROTO="https")
    assert r["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "Strict-Transport-Security" not in Client().get("/trust")  # plain http: HSTS means nothing there


def test_development_secret_key_is_refused_for_a_public_host():
    import os
    import subprocess
    import sys

    env = {**{k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "ASSAY_SECRET_KEY", "ALLOWED_HOSTS")},
           "DJANGO_SETTINGS_MODULE": "registry.settings"}
    code = "import django; django.setup()"
    public = subprocess.run([sys.executable, "-c", code], env={**env, "ALLOWED_HOSTS": "models.example.org"}, capture_output=True, text=True)
    assert public.returncode != 0 and "refusing to start: SECRET_KEY is a development default while serving models.example.org" in public.stderr
    loopback = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert loopback.returncode == 0, loopback.stderr  # `make up` and the tests on 127.0.0.1
    real = subprocess.run([sys.executable, "-c", code], env={**env, "ALLOWED_HOSTS": "models.example.org", "SECRET_KEY": "x" * 50},
                          capture_output=True, text=True)
    assert real.returncode == 0, real.stderr


# -- rate limits -----------------------------------------------------------------------------------

def test_login_attempts_are_limited_per_address_and_per_user_name(settings):
    settings.ASSAY_RATE_LOGIN = "3/m"
    f.user("carol")
    c = Client()
    for _ in range(3):
        assert c.post("/login/", {"username": "carol", "password": "wrong"}).status_code == 200  # the form again, with its error
    r = c.post("/login/", {"username": "carol", "password": "wrong"})
    assert r.status_code == 429 and "Too many login attempts" in r.content.decode() and r["Retry-After"]
    assert c.get("/login/").status_code == 200  # reading the page is not an attempt


def test_signups_are_limited_per_address(settings):
    settings.ASSAY_RATE_SIGNUP = "2/h"
    c = Client()
    for name in ("dana", "erin"):
        assert c.post("/signup", {"username": name, "password": "pw-long-enough"}).status_code == 302
        c.logout()
    r = c.post("/signup", {"username": "fred", "password": "pw-long-enough"})
    assert r.status_code == 429
    from django.contrib.auth import get_user_model
    assert not get_user_model().objects.filter(username="fred").exists()  # nothing half-made


def test_token_creation_is_limited_per_account(settings):
    import json

    settings.ASSAY_RATE_TOKENS = "2/h"
    user = f.user("gina")
    _, secret = f.token(user, scopes=["admin"])
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    body = json.dumps({"name": "t", "scopes": ["read"]})
    for _ in range(2):
        assert Client().post("/api/v1/tokens", body, content_type="application/json", **headers).status_code == 201
    r = Client().post("/api/v1/tokens", body, content_type="application/json", **headers)
    assert r.status_code == 429 and "too many new tokens for this account" in r.json()["error"]
    web = Client()
    web.force_login(user)
    assert web.post("/settings", {"name": "w", "scopes": ["read"], "expires_in_days": 30}).status_code == 429
