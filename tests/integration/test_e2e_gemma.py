"""A second model family through the whole pipeline: Gemma 3 270M (a base model without a chat
template, 262,144-token vocabulary, tied embeddings; from its PyPI chunk packages). The published
Q4_K_M and an F16 derived from it are verified as originals, a Q8_0 made with `assay quantize`
is rebuilt bit-exactly by the worker, and a Q8_0 built from a tampered F16 that claims the honest
base is rejected with the tensor named."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("llama_cpp")

from assay.core.digest import digest_file  # noqa: E402
from tests.support.derive import cached_f16_base  # noqa: E402
from tests.support.models import gemma3_270m_gguf  # noqa: E402

pytestmark = pytest.mark.slow

BASE_REF = "demo/gemma3-270m:f16"
PERTURBED = "blk.3.ffn_up.weight"


@pytest.fixture(scope="module")
def publisher(stack, tmp_path_factory):
    return stack.client_home(tmp_path_factory.mktemp("gemma-publisher"))


@pytest.fixture(scope="module")
def gemma_base(stack, publisher):
    """The F16 derived from the published Q4_K_M, published as an original and verified."""
    base = cached_f16_base(gemma3_270m_gguf())
    stack.assay(publisher, "publish", str(base), BASE_REF)
    status = stack.wait_status(BASE_REF, timeout=1500)
    assert status["status"] == "verified", (status, stack.logs())
    assert status["level"]["name"] == "original"
    return base


def test_the_published_gemma_quant_is_verified_and_its_chat_probes_are_not_applicable(stack, publisher, tmp_path):
    ref = "demo/gemma3-270m:q4_k_m"
    stack.assay(publisher, "publish", str(gemma3_270m_gguf()), ref)
    status = stack.wait_status(ref, timeout=1500)
    assert status["status"] == "verified", (status, stack.logs())
    probes = {s["name"]: s for s in status["steps"]}["probes"]
    assert probes["status"] == "passed"
    user_home = stack.client_home(tmp_path / "home")
    stack.assay(user_home, "pull", ref, "-o", str(tmp_path / "models") + "/")
    assert digest_file(tmp_path / "models" / gemma3_270m_gguf().name) == digest_file(gemma3_270m_gguf())


def test_a_gemma_quant_is_rebuilt_bit_exactly(stack, publisher, gemma_base, tmp_path):
    path = tmp_path / "gemma3-270m-Q8_0.gguf"
    stack.assay(publisher, "quantize", str(gemma_base), "--type", "Q8_0", "-o", str(path), "--threads", "2")
    ref = "demo/gemma3-270m:q8_0"
    stack.assay(publisher, "publish", str(path), ref, "--base", BASE_REF)
    status = stack.wait_status(ref, timeout=1500)
    assert status["status"] == "verified", (status, stack.logs())
    steps = {s["name"]: s for s in status["steps"]}
    assert steps["reproduce"]["status"] == "passed" and "bit-exact" in steps["reproduce"]["summary"]
    assert status["level"]["name"] == "reproduced"


def test_a_gemma_quant_of_a_tampered_base_is_rejected_with_the_tensor_named(stack, publisher, gemma_base, tmp_path):
    other = cached_f16_base(gemma3_270m_gguf(), perturb_tensor=PERTURBED)
    path = tmp_path / "gemma-liar-Q8_0.gguf"
    stack.assay(publisher, "quantize", str(other), "--type", "Q8_0", "-o", str(path), "--threads", "2")
    recipe_file = tmp_path / f"{path.name}.recipe.json"
    doc = json.loads(recipe_file.read_text())
    doc["base_digest"] = digest_file(gemma_base)  # the lie: "built from the honest base"
    recipe_file.write_text(json.dumps(doc))
    ref = "demo/gemma3-270m-liar:q8_0"
    stack.assay(publisher, "publish", str(path), ref, "--base", BASE_REF)
    status = stack.wait_status(ref, timeout=1500)
    assert status["status"] == "rejected", status
    steps = {s["name"]: s for s in status["steps"]}
    assert steps["reproduce"]["status"] == "failed" and steps["probes"]["status"] == "skipped"
    assert PERTURBED in stack.assay(publisher, "status", ref).stdout
