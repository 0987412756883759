"""Authorization and privacy review: what an anonymous client, an outsider, a member with a lower
role or a narrowly scoped token could learn or do that the registry's rules say they may not.

Each test names the hole it closes; all use the factories (no running services)."""
from __future__ import annotations

import ast
import html
import json
import re
import subprocess

import pytest
from django.test import Client

from assay.core.digest import digest_bytes
from registry.errors import RegistryError
from registry.models import Membership, Release
from registry.releases import create_release, draft_statement
from tests.support import factories as f
from tests.support.factories import registry_dirs  # noqa: F401  (fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("registry_dirs")]
RECIPE = {"tool": "llama.cpp", "llama_cpp_python_version": "0.3.36", "ggml_build": "x", "ftype": "Q4_K_M", "imatrix": None, "options": {}}


def _bearer(secret: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


# -- 1. The Hub and OCI views told a reader that a model with no verified release exists ---------

@pytest.fixture
def vault():
    """vault (private): alice owns it, rita reads it. vault/shipped:q4 is verified; every release
    of vault/unreleased-project is still queued (readers must not learn that model exists)."""
    alice, rita = f.user("alice"), f.user("rita")
    f.organization(alice, "vault", private=True, members={rita: Membership.READER})
    key = f.publisher_key(alice)
    f.release(alice, key, namespace="vault", model="shipped", status=Release.VERIFIED)
    f.release(alice, key, namespace="vault", model="unreleased-project", status=Release.QUEUED)
    return {"alice": alice, "rita": rita, "key": key}


def test_a_reader_learns_of_no_unreleased_private_model_through_the_hub_or_oci_views(vault):
    """The web UI and the JSON API answer a reader as if vault/unreleased-project did not exist
    (tests/integration/test_private_names.py); /api/models/... answered 200 with its name and
    /v2/.../tags/list 200 with no tags, where a missing model gets RepoNotFound / NAME_UNKNOWN."""
    _, secret = f.token(vault["rita"])
    c = Client()
    for model in ("unreleased-project", "no-such-model"):  # the same answers for both
        hub = c.get(f"/api/models/vault/{model}", **_bearer(secret))
        assert hub.status_code == 404 and hub["X-Error-Code"] == "RepoNotFound", (model, hub.status_code, hub.content[:200])
        assert c.get(f"/api/models/vault/{model}/tree/main", **_bearer(secret)).status_code == 404
        oci = c.get(f"/v2/vault/{model}/tags/list", **_bearer(secret))
        assert oci.status_code == 404 and oci.json()["errors"][0]["code"] == "NAME_UNKNOWN", (model, oci.status_code)
    # what the reader may see still works, and whoever may publish there still sees the model
    assert c.get("/api/models/vault/shipped", **_bearer(secret)).status_code == 200
    _, owner = f.token(vault["alice"])
    assert c.get("/api/models/vault/unreleased-project", **_bearer(owner)).status_code == 200


def test_anyone_learns_of_no_unverified_public_model_through_the_hub_view():
    bob = f.user("bob")
    f.release(bob, f.publisher_key(bob), namespace="bob", model="wip", status=Release.REJECTED)
    anonymous = Client().get("/api/models/bob/wip")
    assert anonymous.status_code == 401 and anonymous["X-Error-Code"] == "RepoNotFound"
    _, outsider = f.token(f.user("mallory"))
    assert Client().get("/v2/bob/wip/tags/list", **_bearer(outsider)).status_code == 404


# -- 2. A newline in a Hub path was a 500 (Django refuses the X-Error-Message header) -------------

@pytest.mark.parametrize("path", [
    "/api/models/no%0Asuch/model",                        # RepoNotFound names the repository
    "/api/models/bob/m/revision/x%0D%0ASet-Cookie:%20a=b",  # RevisionNotFound names the revision
    "/bob/m/resolve/x%0Ay/model.gguf",                    # through the resolve URL
    "/api/models/bob/m/tree/x%0Ay",                       # and the tree URL
])
def test_a_newline_in_a_hub_path_is_the_hubs_own_error_not_a_500(path):
    bob = f.user("bob")
    f.release(bob, f.publisher_key(bob), namespace="bob", model="m", status=Release.VERIFIED)
    response = Client(raise_request_exception=False).get(path)
    assert response.status_code in (401, 404), (path, response.status_code)
    assert response["X-Error-Code"] in ("RepoNotFound", "RevisionNotFound", "EntryNotFound")
    assert "\n" not in response["X-Error-Message"] and "\r" not in response["X-Error-Message"]
    assert "Set-Cookie" not in response.cookies and not response.cookies.get("a")


# -- 3. A private release could name a base in another private namespace --------------------------

@pytest.fixture
def two_vaults():
    """vault (private, alice owner, paul publisher) holds vault/secret:q4 (verified); lab (private,
    paul publisher, rita reader) is another organization. rita is no member of vault."""
    alice, paul, rita = f.user("alice"), f.user("paul"), f.user("rita")
    f.organization(alice, "vault", private=True, members={paul: Membership.PUBLISHER})
    f.organization(alice, "lab", private=True, members={paul: Membership.PUBLISHER, rita: Membership.READER})
    secret = f.release(alice, f.publisher_key(alice), namespace="vault", model="secret", data=b"GGUF vault weights",
                       status=Release.VERIFIED)
    return {"paul": paul, "rita": rita, "secret": secret}


def test_a_private_release_may_not_name_a_base_in_another_private_namespace(two_vaults):
    """lab's readers are no members of vault: a lab release built on vault/secret would show them
    (release page, bundle, verdict chain, probe evidence with the base's outputs) the vault model's
    name, digest and generated text, as a public release would show everyone (refused already)."""
    paul, secret = two_vaults["paul"], two_vaults["secret"]
    key = f.publisher_key(paul)
    digest = f.blob(b"GGUF paul's quant", uploaded_by=paul)
    base = {"name": "vault/secret:q4", "digest": secret.blob_id}
    envelope = f.release_envelope(key, digest=digest, namespace="lab", model="derived", base=base, recipe=RECIPE, quantization="Q4_K_M")
    with pytest.raises(RegistryError, match="vault/secret:q4 is in another private namespace") as refused:
        create_release(paul, None, envelope)
    assert refused.value.status == 400
    assert not Release.objects.filter(model__name="derived").exists()
    with pytest.raises(RegistryError, match="in another private namespace"):  # the publish page's draft says so first
        draft_statement(paul, None, file_name="derived.gguf", digest=digest, reference="lab/derived:q4", quantization="Q4_K_M",
                        base_ref="vault/secret:q4", recipe=RECIPE, recipe_base_digest=None, model_card="")
    # the same namespace still works
    own = f.release_envelope(key, digest=digest, namespace="vault", model="derived", base=base, recipe=RECIPE, quantization="Q4_K_M")
    assert create_release(paul, None, own).base_name == "vault/secret:q4"


# -- 4. The model page's copy-and-paste commands ran a hostile file name in the visitor's shell ----

HOSTILE_FILE = "m$(touch pwned)`touch pwned2`'x\";touch pwned3;\".gguf"


def test_the_usage_snippets_quote_a_hostile_file_name(tmp_path):
    """A file name may hold $, `, ' and " (assay.core.names.file_name_problem allows them); the
    llama.cpp and huggingface_hub snippets put it between double quotes for the shell and single
    quotes for Python, so a visitor who pasted them ran the publisher's command."""
    mallory = f.user("mallory")
    key = f.publisher_key(mallory)
    digest = f.blob(b"GGUF mallory's bait", uploaded_by=mallory)
    envelope = f.release_envelope(key, digest=digest, namespace="mallory", model="bait", file_name=HOSTILE_FILE)
    rel = create_release(mallory, None, envelope)
    Release.objects.filter(pk=rel.pk).update(status=Release.VERIFIED)
    page = Client().get("/mallory/bait").content.decode()
    usage = page[page.index('<div id="usage">'):]
    snippets = [html.unescape(s) for s in re.findall(r"<pre><code>(.*?)</code></pre>", usage, re.S)]
    python_snippets = [s for s in snippets if "python -c" in s]
    assert len(python_snippets) == 2, snippets
    for snippet in python_snippets:
        fake = "python() { printf '%s\\0' \"$@\" > args; }\n"  # what python would have been given
        subprocess.run(["bash", "-c", fake + snippet], cwd=tmp_path, check=True, timeout=30)
        assert not list(tmp_path.glob("pwned*")), f"the snippet ran the file name's command: {snippet}"
        argv = (tmp_path / "args").read_bytes().decode().split("\0")[:-1]
        assert argv[0] == "-c", argv
        calls = [n for n in ast.walk(ast.parse(argv[1])) if isinstance(n, ast.Call) and getattr(n.func, "attr", getattr(n.func, "id", "")) in
                 ("from_pretrained", "hf_hub_download")]
        assert len(calls) == 1 and [a.value for a in calls[0].args] == ["mallory/bait", HOSTILE_FILE], argv[1]
        (tmp_path / "args").unlink()


# -- 5. A token limited to some namespaces read the account's uploads in every other one -----------

def test_a_namespace_limited_token_reads_no_blob_outside_its_namespaces():
    """A read token limited to namespace 'olivia' gets 404 for the blob of a verified release in
    'acme' that it may not read (tests/integration/test_permissions.py) - unless olivia herself
    uploaded those bytes: then it read them, whatever private namespace they were released in."""
    olivia = f.user("olivia")
    f.organization(olivia, "vault", private=True)
    rel = f.release(olivia, f.publisher_key(olivia), namespace="vault", model="hidden", data=b"GGUF vault-only bytes",
                    status=Release.VERIFIED)
    _, narrow = f.token(olivia, scopes=["read"], namespaces=["olivia"])
    _, wide = f.token(olivia, scopes=["read"])
    c = Client()
    assert c.get(f"/api/v1/blobs/{rel.blob_id}", **_bearer(wide)).status_code == 200
    assert c.get(f"/api/v1/blobs/{rel.blob_id}", **_bearer(narrow)).status_code == 404
    assert c.head(f"/api/v1/blobs/{rel.blob_id}", **_bearer(narrow)).status_code == 404
    # bytes the account uploaded and released nowhere: the same answer as for bytes never stored
    unreleased = f.blob(b"GGUF uploaded, never released", uploaded_by=olivia)
    missing = digest_bytes(b"never stored")
    assert {c.get(f"/api/v1/blobs/{d}", **_bearer(narrow)).status_code for d in (unreleased, missing)} == {404}
    assert c.get(f"/api/v1/blobs/{unreleased}", **_bearer(wide)).status_code == 200
    # a limited token reads what its namespaces release
    mine = f.release(olivia, f.publisher_key(olivia), namespace="olivia", model="open", data=b"GGUF olivia's", status=Release.VERIFIED)
    assert c.get(f"/api/v1/blobs/{mine.blob_id}", **_bearer(narrow)).status_code == 200
    assert json.loads(c.get(f"/api/v1/blobs/{rel.blob_id}", **_bearer(narrow)).content)["error"].endswith("not found")


def _upload(c: Client, secret: str, data: bytes) -> str:
    """Upload `data` through the API with the token `secret`; returns its digest."""
    digest = digest_bytes(data)
    r = c.post("/api/v1/uploads", **_bearer(secret))
    assert r.status_code == 201, r.content
    upload_id = r.json()["upload_id"]
    r = c.patch(f"/api/v1/uploads/{upload_id}", data, content_type="application/octet-stream", **_bearer(secret))
    assert r.status_code == 202, r.content
    r = c.put(f"/api/v1/uploads/{upload_id}?digest={digest}", **_bearer(secret))
    assert r.status_code == 201, r.content
    return digest


def test_a_namespace_limited_token_uses_only_uploads_of_tokens_limited_as_narrowly():
    """A stolen token limited to 'olivia' must not reach vault's files through the account's uploads:
    neither download an upload made for vault (released or not) nor name it in a release of its own
    namespace (then read it back through that release). What it, or a token limited to the same
    namespaces or fewer, uploaded it may read back and publish."""
    olivia = f.user("olivia")
    f.organization(olivia, "vault", private=True)
    key = f.publisher_key(olivia)
    _, vault_token = f.token(olivia, scopes=["publish"], namespaces=["vault"])
    _, wide = f.token(olivia, scopes=["publish"])
    narrow_row, narrow = f.token(olivia, scopes=["publish"], namespaces=["olivia"])
    _, both = f.token(olivia, scopes=["publish"], namespaces=["olivia", "vault"])
    c = Client()
    for uploader in (vault_token, wide):  # an upload meant for vault, not released yet
        secret_bytes = b"GGUF vault's next model, uploaded by " + uploader.encode()
        digest = _upload(c, uploader, secret_bytes)
        assert c.get(f"/api/v1/blobs/{digest}", **_bearer(narrow)).status_code == 404
        assert c.get(f"/api/v1/blobs/{digest}", **_bearer(both)).status_code == (200 if uploader == vault_token else 404)
        env = f.release_envelope(key, digest=digest, namespace="olivia", model="exfil")
        with pytest.raises(RegistryError, match="was not uploaded by"):
            create_release(olivia, narrow_row, env, "")
    # the token's own upload: read back, published, and then a token limited to more reads it too
    mine = _upload(c, narrow, b"GGUF olivia's own model")
    assert c.get(f"/api/v1/blobs/{mine}", **_bearer(narrow)).status_code == 200
    assert c.get(f"/api/v1/blobs/{mine}", **_bearer(both)).status_code == 200
    assert c.get(f"/api/v1/blobs/{mine}", **_bearer(wide)).status_code == 200
    rel = create_release(olivia, narrow_row, f.release_envelope(key, digest=mine, namespace="olivia", model="own"), "")
    assert rel.blob_id == mine
