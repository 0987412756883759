"""Split GGUF releases (llama.cpp's <prefix>-00001-of-0000N.gguf parts, made by its llama-gguf-split):
published with every part named in the signed statement, checked by the worker on the merged model,
pulled into a folder all or nothing, run by llama.cpp from the first part, and a split quant rebuilt
and compared part by part; a part edited after the fact is rejected with its tensor named."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("transformers")

from assay.core.digest import digest_file  # noqa: E402
from assay.toolchain.gguf_split import split_file  # noqa: E402
from tests.support.derive import flip_tensor_byte  # noqa: E402
from tests.support.hf_checkpoint import tiny_llama_checkpoint  # noqa: E402

pytestmark = pytest.mark.slow

BASE_REF = "demo/tiny-split:f16"


@pytest.fixture(scope="module")
def publisher(stack, tmp_path_factory):
    return stack.client_home(tmp_path_factory.mktemp("split-publisher"))


@pytest.fixture(scope="module")
def base(stack, publisher, tmp_path_factory):
    """A tiny converted F16 (one file), published and verified: the base of the split quants."""
    folder = tmp_path_factory.mktemp("split-base")
    out = folder / "tiny-split.f16.gguf"
    stack.assay(publisher, "convert", str(tiny_llama_checkpoint(folder / "tiny-split", seed=11)), "-o", str(out))
    stack.assay(publisher, "publish", str(out), BASE_REF)
    status = stack.wait_status(BASE_REF, timeout=900)
    assert status["status"] == "verified", (status, stack.logs())
    return out


def test_a_split_original_is_verified_pulled_into_a_folder_and_run(stack, publisher, base, tmp_path):
    parts = split_file(base, tmp_path / "tiny-orig.gguf", max_tensors=8)
    assert [p.name for p in parts] == [f"tiny-orig-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
    ref = "demo/tiny-split-orig:f16"
    stack.assay(publisher, "publish", str(parts[0]), ref)
    status = stack.wait_status(ref, timeout=900)
    assert status["status"] == "verified", (status, stack.logs())
    assert status["level"]["name"] == "original"
    user = stack.client_home(tmp_path / "user")
    models = tmp_path / "models"
    r = stack.assay(user, "pull", ref, "-o", str(models) + "/")
    assert sorted(p.name for p in models.iterdir()) == [p.name for p in parts]
    assert all(digest_file(models / p.name) == digest_file(p) for p in parts)
    assert all(f"saved {models / p.name}" in r.stdout for p in parts), r.stdout
    checked = json.loads(stack.assay(user, "verify", str(models / parts[0].name), "--release", ref, "--json").stdout)
    assert checked["checked_by"] == "blake3"  # every part's BLAKE3 declared by `assay publish` and checked by the verifier
    (models / parts[2].name).write_bytes(b"GGUF not this")
    bad = stack.assay(user, "verify", str(models / parts[0].name), "--release", ref, check=False)
    assert bad.returncode == 3 and parts[2].name in bad.stderr, bad
    # A different file at a part's name is not replaced, and nothing else is written.
    again = tmp_path / "again"
    again.mkdir()
    (again / parts[1].name).write_bytes(b"mine")
    refused = stack.assay(user, "pull", ref, "-o", str(again) + "/", check=False)
    assert refused.returncode != 0 and "already exists" in refused.stderr, refused
    assert sorted(p.name for p in again.iterdir()) == [parts[1].name]
    out = stack.assay(user, "run", ref, "Hello", "--max-tokens", "4", check=False)
    assert out.returncode == 0, out


def test_a_split_quant_is_rebuilt_and_compared_part_by_part(stack, publisher, base, tmp_path):
    out = tmp_path / "tiny-split-Q8_0.gguf"
    stack.assay(publisher, "quantize", str(base), "--type", "Q8_0", "-o", str(out), "--split-max-tensors", "8")
    first = tmp_path / "tiny-split-Q8_0-00001-of-00003.gguf"
    ref = "demo/tiny-split:q8_0"
    stack.assay(publisher, "publish", str(first), ref, "--base", BASE_REF)
    status = stack.wait_status(ref, timeout=900)
    assert status["status"] == "verified", (status, stack.logs())
    steps = {s["name"]: s for s in status["steps"]}
    assert steps["reproduce"]["status"] == "passed", steps["reproduce"]
    assert status["level"]["name"] == "reproduced"


def test_a_split_quant_with_an_edited_part_is_rejected_with_the_tensor_named(stack, publisher, base, tmp_path):
    out = tmp_path / "tiny-edit-Q8_0.gguf"
    stack.assay(publisher, "quantize", str(base), "--type", "Q8_0", "-o", str(out), "--split-max-tensors", "8")
    second = tmp_path / "tiny-edit-Q8_0-00002-of-00003.gguf"
    from assay.core.ggufparse import parse_gguf

    tensor = parse_gguf(second).tensors[0].name
    edited = flip_tensor_byte(second, tmp_path / "edited.tmp", tensor, byte_offset=40, mask=0x10)
    edited.replace(second)
    first = tmp_path / "tiny-edit-Q8_0-00001-of-00003.gguf"
    recipe = json.loads((tmp_path / f"{first.name}.recipe.json").read_text())
    assert recipe["recipe"]["options"]["split"] == {"max_tensors": 8}
    ref = "demo/tiny-split-edited:q8_0"
    stack.assay(publisher, "publish", str(first), ref, "--base", BASE_REF)
    status = stack.wait_status(ref, timeout=900)
    assert status["status"] == "rejected", status
    steps = {s["name"]: s for s in status["steps"]}
    assert steps["reproduce"]["status"] == "failed", steps["reproduce"]
    assert "part 2 of 3" in steps["reproduce"]["summary"] or tensor in steps["reproduce"]["summary"], steps["reproduce"]


def test_publishing_a_later_part_or_an_incomplete_split_is_refused(stack, publisher, base, tmp_path):
    parts = split_file(base, tmp_path / "tiny-inc.gguf", max_tensors=8)
    r = stack.assay(publisher, "publish", str(parts[1]), "demo/tiny-inc:f16", check=False)
    assert r.returncode != 0 and "give its first part" in r.stderr, r
    parts[2].unlink()
    r = stack.assay(publisher, "publish", str(parts[0]), "demo/tiny-inc:f16", check=False)
    assert r.returncode != 0 and "missing beside it" in r.stderr and "Traceback" not in r.stderr, r
