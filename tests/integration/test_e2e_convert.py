"""The supply chain from an upstream checkpoint: a tiny Llama-architecture checkpoint made here with
transformers (random weights, SmolLM2's real tokenizer, safetensors) is converted with `assay
convert` (llama.cpp's own converter from the vendored source), published with its upstream files,
converted again by the worker (level `converted`), quantized and rebuilt (level `reproduced` on a
converted base) and pulled; a conversion edited after the fact is rejected with the tensor named."""
from __future__ import annotations

import json

import httpx
import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("transformers")

from assay.core.digest import digest_file  # noqa: E402
from tests.support.derive import flip_tensor_byte  # noqa: E402
from tests.support.hf_checkpoint import tiny_llama_checkpoint  # noqa: E402

pytestmark = pytest.mark.slow

BASE_REF = "demo/tiny-llama:f16"
EDITED = "blk.1.ffn_down.weight"


@pytest.fixture(scope="module")
def publisher(stack, tmp_path_factory):
    return stack.client_home(tmp_path_factory.mktemp("convert-publisher"))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_llama_checkpoint(tmp_path_factory.mktemp("upstream") / "tiny-llama", seed=7)


@pytest.fixture(scope="module")
def converted(stack, publisher, checkpoint, tmp_path_factory):
    """The checkpoint converted with `assay convert`, published with its upstream files, verified."""
    out = tmp_path_factory.mktemp("converted") / "tiny-llama.f16.gguf"
    stack.assay(publisher, "convert", str(checkpoint), "-o", str(out), "--repository", "example/tiny-llama", "--revision", "0" * 40)
    stack.assay(publisher, "publish", str(out), BASE_REF)
    status = stack.wait_status(BASE_REF, timeout=900)
    assert status["status"] == "verified", (status, stack.logs())
    return out, status


def test_a_conversion_is_converted_again_and_earns_the_level_converted(stack, converted, tmp_path):
    out, status = converted
    steps = {s["name"]: s for s in status["steps"]}
    assert steps["reproduce"]["status"] == "passed", steps["reproduce"]
    assert "converting the 7 upstream files again" in steps["reproduce"]["summary"]
    assert status["level"]["name"] == "converted"
    # The release page names the claimed source and every upstream file by digest.
    html = httpx.get(f"{stack.url}/demo/tiny-llama/releases/f16/1", timeout=10).text
    assert "example/tiny-llama" in html and "upstream checkpoint file of a conversion <code>model.safetensors</code>" in html
    # The model page: the GGUF header as the verifier read it, and how to fetch it with each client.
    page = httpx.get(f"{stack.url}/demo/tiny-llama", timeout=10).text
    assert '<table id="gguf">' in page and "<td>llama</td>" in page and "F16" in page
    assert "assay pull demo/tiny-llama:f16" in page and "Llama.from_pretrained(&quot;demo/tiny-llama&quot;" in page
    assert "hf_hub_download" in page and "oras pull" in page and f"/api/v1/blobs/{digest_file(out)}" in page
    # A user with the default policy pulls it: the client checks the conversion provenance names
    # every upstream file the publisher's recipe signed.
    user = stack.client_home(tmp_path / "user", accept_unreproduced=False)
    stack.assay(user, "pull", BASE_REF, "-o", str(tmp_path / "models") + "/")
    assert digest_file(tmp_path / "models" / out.name) == digest_file(out)


def test_a_quant_of_the_converted_file_is_reproduced_on_a_converted_base(stack, publisher, converted, tmp_path):
    base, _ = converted
    quant = tmp_path / "tiny-llama-Q8_0.gguf"
    stack.assay(publisher, "quantize", str(base), "--type", "Q8_0", "-o", str(quant), "--threads", "2")
    ref = "demo/tiny-llama:q8_0"
    stack.assay(publisher, "publish", str(quant), ref, "--base", BASE_REF)
    status = stack.wait_status(ref, timeout=900)
    assert status["status"] == "verified", (status, stack.logs())
    assert status["level"]["name"] == "reproduced"
    assert [link["level"] for link in status["level"]["chain"]] == ["converted"]


def test_a_conversion_edited_after_the_fact_is_rejected_with_the_tensor_named(stack, publisher, checkpoint, tmp_path):
    honest = tmp_path / "tiny-llama.f16.gguf"
    stack.assay(publisher, "convert", str(checkpoint), "-o", str(honest))
    edited = flip_tensor_byte(honest, tmp_path / "tiny-llama-edited.f16.gguf", EDITED, byte_offset=64, mask=0x40)
    doc = json.loads((tmp_path / f"{honest.name}.recipe.json").read_text())
    doc["output_digest"] = digest_file(edited)  # the lie: "this is what those upstream files convert to"
    (tmp_path / f"{edited.name}.recipe.json").write_text(json.dumps(doc))
    ref = "demo/tiny-llama-edited:f16"
    stack.assay(publisher, "publish", str(edited), ref)
    status = stack.wait_status(ref, timeout=900)
    assert status["status"] == "rejected", status
    steps = {s["name"]: s for s in status["steps"]}
    assert steps["reproduce"]["status"] == "failed" and steps["probes"]["status"] == "skipped"
    assert EDITED in steps["reproduce"]["summary"]


def test_publish_refuses_upstream_files_that_changed_since_the_conversion(stack, publisher, checkpoint, tmp_path):
    out = tmp_path / "tiny.f16.gguf"
    made = json.loads(stack.assay(publisher, "convert", str(checkpoint), "-o", str(out), "--json").stdout)
    assert made["digest"] == digest_file(out) and len(made["recipe"]["options"]["files"]) == 7
    assert json.loads((tmp_path / "tiny.f16.gguf.recipe.json").read_text())["recipe"] == made["recipe"]
    copy = tmp_path / "upstream-copy"
    copy.mkdir()
    for p in checkpoint.iterdir():
        (copy / p.name).write_bytes(p.read_bytes())
    (copy / "generation_config.json").write_text("{}")
    r = stack.assay(publisher, "publish", str(out), "demo/tiny-changed:f16", "--upstream", str(copy), check=False)
    assert r.returncode != 0 and "generation_config.json" in r.stderr and "not the recipe's" in r.stderr, r
    r = stack.assay(publisher, "publish", str(out), "demo/tiny-changed:f16", "--base", BASE_REF, check=False)
    assert r.returncode != 0 and "has no base" in r.stderr, r
    assert "Traceback" not in r.stderr
