"""A NUL character (U+0000) anywhere a request carries text: PostgreSQL stores none, in text or in
jsonb, so each is a 400 in the route's own error form (registry.security.RefuseNulMiddleware for
paths, query strings and web forms; registry.api.common.json_body for JSON bodies; the statement
parser for signed payloads), never a 500. And the verifier, whose evidence quotes a publisher's
file, writes each NUL as "␀" before it signs, so a file with one is still judged.
Django test client and the in-process verifier against real PostgreSQL."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from django.test import Client

from assay.core import dsse, keys, statements
from assay.core.canonical import canonical_json
from assay.core.errors import FormatError
from assay.core.nul import NUL_SYMBOL, nul_path, visible_nul
from registry.models import Membership, Release, VerificationStep
from tests.support import factories as f
from tests.support import pipeline
from tests.support.factories import registry_dirs  # noqa: F401  (fixture)
from tests.support.pipeline import alice as publisher  # noqa: F401  (fixture)

JSON = "application/json"
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("registry_dirs")]


@pytest.fixture
def w():
    """alice owns the private org vault (a verified release secret-model:q4 v1); rita reads it."""
    w = SimpleNamespace()
    w.alice, w.rita = f.user("alice"), f.user("rita")
    w.vault = f.organization(w.alice, "vault", private=True, members={w.rita: Membership.READER})
    w.key = f.publisher_key(w.alice)
    f.release(w.alice, w.key, namespace="vault", model="secret-model", data=b"vault weights", status=Release.VERIFIED)
    _, secret = f.token(w.alice)
    w.alice_h = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    return w


def client(w, who: str) -> Client:
    c = Client()
    if who == "alice":
        c.force_login(w.alice)
    return c


WEB = ["/vault%00/secret-model", "/vault/secret-model%00", "/vault/secret-model/releases/q4%00/1",
       "/vault%00/secret-model/releases/q4/1", "/vault%00/secret-model/releases/q4/1/status.json",
       "/orgs/vault%00", "/settings/keys/ab%00c/revoke", "/log/%00"]
WEB_QUERY = ["/?q=a%00b", "/?q=a\x00b", "/log/?before=%00", "/vault/secret-model?x=%00"]
API = ["/api/v1/models?q=%00", "/api/v1/keys/ab%00c", "/api/v1/uploads/ab%00c", "/api/v1/uploads/ab%00c/parts",
       "/api/v1/releases/vault%00/secret-model:q4", "/api/v1/releases/vault/secret-model:q4%00/status",
       "/api/v1/blobs/sha256:%00", "/api/v1/verifiers/x%00/revoke", "/api/v1/log/entries?start=%00"]
HF = ["/api/models/vault%00/m", "/api/models/vault%00/m/tree/main", "/api/models/vault/secret-model/tree/main%00",
      "/vault%00/m/resolve/main/x.gguf", "/vault/secret-model/resolve/main/x%00.gguf"]
OCI = ["/v2/vault%00/m/tags/list", "/v2/vault%00/m/manifests/q4", "/v2/vault/secret-model/tags/list?n=%00"]


@pytest.mark.parametrize("who", ["anonymous", "alice"])
@pytest.mark.parametrize("url", WEB + WEB_QUERY)
def test_a_nul_in_a_web_url_is_a_plain_400(w, who, url):
    r = client(w, who).get(url)
    assert r.status_code == 400, r.content[:300]
    assert r["Content-Type"].startswith("text/plain")
    part = "query string" if "?" in url else "path"
    assert f"the request's {part} holds a NUL character".encode() in r.content


@pytest.mark.parametrize("who", ["anonymous", "alice", "token"])
@pytest.mark.parametrize("url", API)
def test_a_nul_in_an_api_url_is_a_json_400(w, who, url):
    headers = w.alice_h if who == "token" else {}
    r = client(w, who).get(url, **headers)
    assert r.status_code == 400, r.content[:300]
    part = "query string" if "?" in url else "path"
    assert r.json()["error"].startswith(f"the request's {part} holds a NUL character (U+0000)")


@pytest.mark.parametrize("who", ["anonymous", "alice", "token"])
@pytest.mark.parametrize("url", HF)
def test_a_nul_in_a_hub_url_is_a_400_in_the_hubs_form(w, who, url):
    r = client(w, who).get(url, **(w.alice_h if who == "token" else {}))
    assert r.status_code == 400, r.content[:300]
    assert "holds a NUL character" in r.json()["error"] and "holds a NUL character" in r["X-Error-Message"]


@pytest.mark.parametrize("who", ["anonymous", "alice", "token"])
@pytest.mark.parametrize("url", OCI)
def test_a_nul_in_an_oci_url_is_a_400_in_the_distribution_specs_form(w, who, url):
    r = client(w, who).get(url, **(w.alice_h if who == "token" else {}))
    assert r.status_code == 400, r.content[:300]
    (error,) = r.json()["errors"]
    assert error["code"] == ("UNSUPPORTED" if "?" in url else "NAME_INVALID") and "holds a NUL character" in error["message"]


def test_the_same_urls_without_the_nul_still_answer(w):
    c = client(w, "alice")
    assert c.get("/vault/secret-model").status_code == 200
    assert c.get("/?q=secret").status_code == 200
    assert c.get("/orgs/vault").status_code == 200
    assert c.get("/api/v1/models?q=secret", **w.alice_h).status_code == 200
    assert c.get("/v2/vault/secret-model/tags/list", **w.alice_h).status_code == 200
    assert c.get("/api/models/vault/secret-model", **w.alice_h).status_code == 200


# -- JSON bodies ------------------------------------------------------------------------------------

BODIES = [
    ("/api/v1/keys", {"name": "a\x00b", "envelope": {}}, "name"),
    ("/api/v1/keys", {"envelope": {"payload\x00": "x"}}, "envelope.payload␀ (the key)"),
    ("/api/v1/tokens", {"name": "t\x00", "scopes": ["read"]}, "name"),
    ("/api/v1/tokens", {"name": "t", "scopes": ["read", "\x00"]}, "scopes[1]"),
    ("/api/v1/keys/sha256:" + "a" * 64 + "/revoke", {"reason": "lost\x00"}, "reason"),
    ("/api/v1/releases", {"envelope": {}, "model_card": "# card\x00"}, "model_card"),
    ("/api/v1/releases", {"\x00": 1}, "␀ (the key)"),
    ("/api/v1/verifiers/any/revoke", {"reason": "\x00"}, "reason"),
]


@pytest.mark.parametrize(("url", "body", "where"), BODIES)
def test_a_nul_in_a_json_body_value_or_key_is_a_400_naming_the_field(w, url, body, where):
    w.alice.is_staff = True  # who may revoke a verifier
    w.alice.save(update_fields=["is_staff"])
    r = Client().post(url, json.dumps(body), content_type=JSON, **w.alice_h)
    assert r.status_code == 400, r.content[:300]
    assert r.json()["error"] == f"request body field {where!r} holds a NUL character (U+0000), which this registry does not accept"


def test_the_escape_sequence_without_a_nul_is_fine():
    assert nul_path({"a": ["\\u0000", {"b": "x"}]}) is None
    assert nul_path({"a": [{"b": "x\x00"}]}) == "a[0].b"
    assert visible_nul({"k\x00": ["v\x00"], "k" + NUL_SYMBOL: 1}) == {"k␀": ["v␀"], "k␀␀": 1}


# -- web forms ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "data"), [
    ("/orgs/new", {"name": "org\x00", "display_name": "x"}),
    ("/orgs/new", {"name": "org", "display_name": "x\x00"}),
    ("/settings", {"name": "t\x00", "scopes": ["read"], "expires_in_days": "30"}),
    ("/settings/keys/sha256:" + "a" * 64 + "/revoke", {"reason": "\x00"}),
    ("/orgs/vault", {"username": "rita\x00", "role": "reader"}),
    ("/signup", {"username": "x", "password": "p\x00assword1"}),
])
def test_a_nul_in_a_web_form_is_a_400(w, url, data):
    r = client(w, "alice").post(url, data)
    assert r.status_code == 400, r.content[:300]
    assert b"holds a NUL character" in r.content


# -- the verifier ------------------------------------------------------------------------------------

def _running_static(publisher, tmp_path, template: str):  # noqa: F811
    from tests.support.tiny_gguf import write_tiny_llama

    user, signer = publisher
    path = write_tiny_llama(tmp_path / "nul.gguf", chat_template=template)
    rel = pipeline.publish(user, signer, pipeline.stored_file(path, user), model="nul", quantization="F16")
    client, job = pipeline.claim(rel.pk)
    client.begin_step(rel.pk, "static")
    return rel, client, job


def test_a_step_result_signed_with_a_nul_is_refused_with_a_400_not_a_500(publisher, tmp_path):  # noqa: F811
    from verifier import identity

    rel, client, job = _running_static(publisher, tmp_path, "{{ messages }}")
    signer = identity.signing_key()
    predicate = {"releaseStatement": {"sha256": job.statement_digest.split(":", 1)[1]},
                 "verifier": {"id": keys.key_id(signer.public_key())}, "step": "static", "result": "passed",
                 "summary": "ok\x00", "evidence": {"template": "a\x00b"}, "time": statements.format_time(None)}
    payload = statements.build_statement([(job.file_name, job.digest)], statements.STEP_PREDICATE, predicate)
    with pytest.raises(FormatError, match=r"predicate.evidence.template holds a NUL character"):
        statements.parse_step_result(payload)
    envelope = dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, signer)
    r = client.http.post(f"/api/v1/verifier/jobs/{rel.pk}/steps/static", json={"envelope": envelope})
    assert r.status_code == 400 and "holds a NUL character" in r.json()["error"], r.text
    assert VerificationStep.objects.get(release=rel, name="static").status == VerificationStep.RUNNING
    # the error report and the reopen reason: refused when sent raw, taken from the verifier's client
    raw = client.http.post(f"/api/v1/verifier/jobs/{rel.pk}/steps/static/reopen", json={"reason": "x\x00"})
    assert raw.status_code == 400 and raw.json()["error"].startswith("request body field 'reason' holds a NUL")
    raw = client.http.post("/api/v1/verifier/me", json={"capabilities": {"gpu\x00": True}})
    assert raw.status_code == 400
    client.report_error(rel.pk, "crashed on \x00", step="static", detail="Traceback ... 'a\x00b'")
    step = VerificationStep.objects.get(release=rel, name="static")
    assert step.status == VerificationStep.ERROR and step.summary == "crashed on ␀"
    assert step.evidence == {"traceback": "Traceback ... 'a␀b'"}


def test_a_gguf_whose_chat_template_holds_a_nul_is_judged_and_its_evidence_stored(publisher, tmp_path):  # noqa: F811
    from tests.support.tiny_gguf import CHATML_TEMPLATE

    rel, _, _ = _running_static(publisher, tmp_path, CHATML_TEMPLATE + "\x00{{ 'hidden' }}")
    assert pipeline.execute_step(rel.pk, "static")
    step = VerificationStep.objects.get(release=rel, name="static")
    assert step.status in (VerificationStep.PASSED, VerificationStep.FAILED), step.summary
    (finding,) = [x for x in step.evidence["findings"] if x["check"] == "metadata_nul"]
    assert finding["severity"] == "warning" and finding["evidence"]["key"] == "tokenizer.chat_template"
    assert "\x00" not in json.dumps(step.evidence, ensure_ascii=False) and nul_path(step.envelope) is None
    # the signed result is the stored one, and it parses
    result = statements.parse_step_result(dsse.parse_envelope(step.envelope).payload)
    assert result.evidence == step.evidence
    assert canonical_json(result.evidence) == canonical_json(visible_nul(result.evidence))
    assert Release.objects.get(pk=rel.pk).status != Release.ERROR
