"""Standard clients fetch from the registry: the real `huggingface_hub` (hf_hub_download,
snapshot_download, HfFileSystem) and llama-cpp-python's `Llama.from_pretrained`, with the
registry as their endpoint, and the real ORAS client over OCI distribution (/v2/), get verified
releases only, with the signed envelopes as OCI referrers, and each protocol's own errors otherwise."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("transformers")
hf = pytest.importorskip("huggingface_hub")

from assay.core.digest import digest_file  # noqa: E402
from tests.support.derive import flip_tensor_byte  # noqa: E402
from tests.support.hf_checkpoint import tiny_llama_checkpoint  # noqa: E402

pytestmark = pytest.mark.slow
REPO = "demo/tiny-hub"


@pytest.fixture(scope="module")
def published(stack, tmp_path_factory):
    """demo/tiny-hub: an F16 (tag f16) and its split Q8_0 (tag q8_0), verified; a rejected edit (tag bad)."""
    home = stack.client_home(tmp_path_factory.mktemp("hub-publisher"))
    folder = tmp_path_factory.mktemp("hub")
    f16 = folder / "tiny-hub.f16.gguf"
    stack.assay(home, "convert", str(tiny_llama_checkpoint(folder / "tiny-hub", seed=3)), "-o", str(f16))
    stack.assay(home, "publish", str(f16), f"{REPO}:f16")
    assert stack.wait_status(f"{REPO}:f16", timeout=900)["status"] == "verified"
    stack.assay(home, "quantize", str(f16), "--type", "Q8_0", "-o", str(folder / "tiny-hub-Q8_0.gguf"), "--split-max-tensors", "8")
    parts = sorted(folder.glob("tiny-hub-Q8_0-0000*-of-00003.gguf"))
    stack.assay(home, "publish", str(parts[0]), f"{REPO}:q8_0", "--base", f"{REPO}:f16")
    assert stack.wait_status(f"{REPO}:q8_0", timeout=900)["status"] == "verified"
    bad = flip_tensor_byte(f16, folder / "tiny-hub-bad.f16.gguf", "blk.0.ffn_up.weight", 8, 0x20)
    doc = json.loads((folder / f"{f16.name}.recipe.json").read_text())
    doc["output_digest"] = digest_file(bad)
    (folder / f"{bad.name}.recipe.json").write_text(json.dumps(doc))
    stack.assay(home, "publish", str(bad), f"{REPO}:bad")
    assert stack.wait_status(f"{REPO}:bad", timeout=900)["status"] == "rejected"
    return {"f16": f16, "parts": parts, "bad": bad}


def test_hf_hub_download_and_snapshot_download_get_the_verified_files(stack, published, tmp_path):
    path = hf.hf_hub_download(REPO, published["f16"].name, endpoint=stack.url, cache_dir=tmp_path / "c1")
    assert digest_file(path) == digest_file(published["f16"])
    snap = hf.snapshot_download(REPO, endpoint=stack.url, cache_dir=tmp_path / "c2")
    names = sorted(os.listdir(snap))
    assert names == sorted([published["f16"].name] + [p.name for p in published["parts"]])  # main: every tag's newest verified release
    assert all(digest_file(os.path.join(snap, p.name)) == digest_file(p) for p in published["parts"])
    tagged = hf.snapshot_download(REPO, revision="q8_0", endpoint=stack.url, cache_dir=tmp_path / "c3", token=stack.token)
    assert sorted(os.listdir(tagged)) == [p.name for p in published["parts"]]
    info = hf.HfApi(endpoint=stack.url).model_info(REPO, revision="f16")
    assert [s.rfilename for s in info.siblings] == [published["f16"].name] and len(info.sha) == 40


def test_what_is_not_verified_or_not_there_gets_the_hubs_own_errors(stack, published, tmp_path):
    with pytest.raises(hf.errors.RevisionNotFoundError):
        hf.hf_hub_download(REPO, published["bad"].name, revision="bad", endpoint=stack.url, cache_dir=tmp_path)  # rejected
    with pytest.raises(hf.errors.EntryNotFoundError):
        hf.hf_hub_download(REPO, published["bad"].name, endpoint=stack.url, cache_dir=tmp_path)  # not in main either
    with pytest.raises(hf.errors.RepositoryNotFoundError):
        hf.hf_hub_download("demo/no-such-model", "x.gguf", endpoint=stack.url, cache_dir=tmp_path)
    with pytest.raises(hf.errors.RevisionNotFoundError):
        hf.HfApi(endpoint=stack.url).model_info(REPO, revision="v9")


def test_llama_from_pretrained_loads_a_verified_model_from_the_registry(stack, published, tmp_path):
    code = (
        "from llama_cpp import Llama\n"
        f"llm = Llama.from_pretrained(repo_id={REPO!r}, filename='*Q8_0-00001-of-00003.gguf', cache_dir={str(tmp_path)!r}, "
        "additional_files=['*Q8_0-00002-of-00003.gguf', '*Q8_0-00003-of-00003.gguf'], verbose=False, n_ctx=128)\n"
        "print('OUT', repr(llm.create_completion('Hello', max_tokens=3)['choices'][0]['text']))\n"
    )
    env = {**os.environ, "HF_ENDPOINT": stack.url, "HF_TOKEN": stack.token, "HF_HUB_DISABLE_TELEMETRY": "1"}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "OUT" in r.stdout, (r.stdout, r.stderr[-3000:])


def _oras(stack):
    oras_client = pytest.importorskip("oras.client")
    return oras_client.OrasClient(hostname=stack.url.split("://", 1)[1], insecure=True)


def test_oras_pulls_a_verified_split_release_and_lists_tags(stack, published, tmp_path):
    client = _oras(stack)
    host = stack.url.split("://", 1)[1]
    files = client.pull(target=f"{host}/{REPO}:q8_0", outdir=str(tmp_path / "oci"))
    assert sorted(os.path.basename(p) for p in files) == [p.name for p in published["parts"]]
    assert all(digest_file(tmp_path / "oci" / p.name) == digest_file(p) for p in published["parts"])
    assert client.get_tags(f"{host}/{REPO}") == ["f16", "q8_0"]  # the rejected tag is not there
    with pytest.raises(Exception):
        client.pull(target=f"{host}/{REPO}:bad", outdir=str(tmp_path / "bad"))
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())


def test_the_signed_envelopes_are_referrers_of_the_manifest(stack, published):
    import httpx

    from assay.core import dsse, statements

    manifest = httpx.get(f"{stack.url}/v2/{REPO}/manifests/f16", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert manifest.status_code == 200 and manifest.headers["Docker-Content-Digest"].startswith("sha256:")
    digest = manifest.headers["Docker-Content-Digest"]
    assert httpx.get(f"{stack.url}/v2/{REPO}/manifests/{digest}").content == manifest.content
    index = httpx.get(f"{stack.url}/v2/{REPO}/referrers/{digest}").json()
    kinds = sorted(m["artifactType"] for m in index["manifests"])
    assert kinds == sorted(["application/vnd.assay.release-statement.v1+json", "application/vnd.assay.verdict.v1+json",
                            "application/vnd.assay.provenance.v1+json"])
    release_ref = next(m for m in index["manifests"] if m["artifactType"].endswith("release-statement.v1+json"))
    layer = httpx.get(f"{stack.url}/v2/{REPO}/manifests/{release_ref['digest']}").json()["layers"][0]
    envelope = httpx.get(f"{stack.url}/v2/{REPO}/blobs/{layer['digest']}").json()
    stmt = statements.parse_release_statement(dsse.parse_envelope(envelope).payload)
    assert stmt.subject_digest == digest_file(published["f16"])
    missing = httpx.get(f"{stack.url}/v2/demo/no-such-model/tags/list")
    assert missing.status_code in (401, 404) and missing.json()["errors"][0]["code"] == "NAME_UNKNOWN"
    assert httpx.get(f"{stack.url}/v2/{REPO}/manifests/bad").json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
