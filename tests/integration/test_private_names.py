"""What a private namespace's releases must not tell those outside it, through paths other than
the log (tests/integration/test_log_privacy.py): whether it holds a given file, and, through a
public release built on it, its base's name and digest."""
from __future__ import annotations

import pytest
from django.test import Client

from assay.core.digest import digest_bytes
from registry.errors import RegistryError
from registry.models import Membership, Release
from registry.releases import create_release, draft_statement
from tests.support import factories as f
from tests.support.factories import registry_dirs  # noqa: F401  (fixture)
from tests.support.pipeline import attest, posted, verifier_client

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("registry_dirs")]
DATA = b"GGUF the secret weights of a private model"
RECIPE = {"tool": "llama.cpp", "llama_cpp_python_version": "0.3.36", "ggml_build": "x", "ftype": "Q4_K_M", "imatrix": None, "options": {}}


@pytest.fixture
def vault():
    verifier_client()
    alice, rita, oscar = f.user("alice"), f.user("rita"), f.user("oscar")
    f.organization(alice, "vault", private=True, members={rita: Membership.READER})
    signer = f.publisher_key(alice)
    rel = f.release(alice, signer, namespace="vault", model="secret-model", data=DATA)
    posted(rel, "static", "passed", "ok", {"summary": {"tensor_types": {"F16": 1}}})
    posted(rel, "reproduce", "skipped", "original")
    posted(rel, "probes", "passed", "probes passed", {"generated": "a private completion"})
    assert attest(rel.pk) == Release.VERIFIED
    return dict(alice=alice, rita=rita, oscar=oscar, rel=Release.objects.get(pk=rel.pk))


def _upload(client: Client, headers: dict, data: bytes) -> str:
    r = client.post("/api/v1/uploads", **headers)
    assert r.status_code == 201, r.content
    uid = r.json()["upload_id"]
    r = client.generic("PATCH", f"/api/v1/uploads/{uid}", data, content_type="application/octet-stream", **headers)
    assert r.status_code == 202, r.content
    digest = digest_bytes(data)
    r = client.put(f"/api/v1/uploads/{uid}?digest={digest}", b"", content_type="application/octet-stream", **headers)
    assert r.status_code == 201, r.content
    return digest


def test_an_uploader_reads_back_its_bytes_whether_or_not_a_private_namespace_holds_them(vault):
    """Held candidate bytes, uploaded and fetched back, answered 404 where a private namespace had
    released them and 200 where nobody had: an oracle for any account. Now both answer 200."""
    _, secret = f.token(vault["oscar"])
    headers, client = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}, Client()
    held = _upload(client, headers, DATA)
    other = _upload(client, headers, b"GGUF bytes nobody released")
    for digest, data in ((held, DATA), (other, b"GGUF bytes nobody released")):
        answer = client.get(f"/api/v1/blobs/{digest}", **headers)
        assert answer.status_code == 200 and b"".join(answer.streaming_content) == data
        assert client.head(f"/api/v1/blobs/{digest}", **headers).status_code == 200
    # who never uploaded them still learns nothing: the same answer as for bytes that do not exist
    _, stranger = f.token(f.user("stranger"))
    missing = digest_bytes(b"never stored")
    assert {client.get(f"/api/v1/blobs/{d}", HTTP_AUTHORIZATION=f"Bearer {stranger}").status_code for d in (held, missing)} == {404}


def test_a_public_release_may_not_name_a_private_base(vault):
    rita = vault["rita"]
    key = f.publisher_key(rita)
    digest = f.blob(b"GGUF rita's quant", uploaded_by=rita)
    base = {"name": "vault/secret-model:q4", "digest": vault["rel"].blob_id}
    envelope = f.release_envelope(key, digest=digest, namespace="rita", model="leak", base=base, recipe=RECIPE, quantization="Q4_K_M")
    with pytest.raises(RegistryError, match="rita is public and its base vault/secret-model:q4 is in a private namespace") as refused:
        create_release(rita, None, envelope)
    assert refused.value.status == 400
    assert not Release.objects.filter(model__name="leak").exists()
    with pytest.raises(RegistryError, match="is in a private namespace"):  # the web page's draft says so before signing
        draft_statement(rita, None, file_name="leak.gguf", digest=digest, reference="rita/leak:q4", quantization="Q4_K_M",
                        base_ref="vault/secret-model:q4", recipe=RECIPE, recipe_base_digest=None, model_card="")


def test_a_private_release_may_name_a_private_base(vault):
    alice = vault["alice"]
    key = f.publisher_key(alice)
    digest = f.blob(b"GGUF alice's quant", uploaded_by=alice)
    base = {"name": "vault/secret-model:q4", "digest": vault["rel"].blob_id}
    envelope = f.release_envelope(key, digest=digest, namespace="vault", model="secret-model", tag="q4km", base=base, recipe=RECIPE,
                                  quantization="Q4_K_M")
    assert create_release(alice, None, envelope).base_name == "vault/secret-model:q4"


def test_a_reader_sees_no_model_whose_releases_are_all_unverified(vault):
    """Readers see verified releases only: a model with none is missing from the home page and its
    page answers 404, as in the JSON catalog; whoever may publish there still sees it."""
    f.release(vault["alice"], f.publisher_key(vault["alice"]), namespace="vault", model="unreleased-project", status=Release.REJECTED)
    reader, owner = Client(), Client()
    reader.force_login(vault["rita"])
    owner.force_login(vault["alice"])
    assert b"unreleased-project" not in reader.get("/").content
    assert reader.get("/vault/unreleased-project").status_code == 404
    assert "vault/unreleased-project" not in [m["name"] for m in reader.get("/api/v1/models").json()["models"]]
    assert b"secret-model" in reader.get("/").content and reader.get("/vault/secret-model").status_code == 200
    assert b"unreleased-project" in owner.get("/").content and owner.get("/vault/unreleased-project").status_code == 200
