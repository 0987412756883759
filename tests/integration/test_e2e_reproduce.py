"""Reproducible builds end to end, as a publisher and a client do it: publish an F16 base
derived from the real SmolLM2, quantize it with `assay quantize`, publish the quants with
`--base` (one with an importance matrix, which publish uploads as an input of the release), and
see a real Celery worker rebuild each bit-exactly, sign provenance, and let
`assay pull` fetch it. A quant built from another base than the one it names is rejected with
a diff that the CLI shows."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("llama_cpp")

from assay.core.digest import digest_file  # noqa: E402
from tests.support.derive import cached_f16_base  # noqa: E402

pytestmark = pytest.mark.slow

BASE_REF = "demo/smollm2-base:f16"
PERTURBED = "blk.5.ffn_up.weight"


@pytest.fixture(scope="module")
def publisher(stack, tmp_path_factory):
    return stack.client_home(tmp_path_factory.mktemp("reproduce-publisher"))


def published_base_path():
    return cached_f16_base()


@pytest.fixture(scope="module")
def published_base(stack, publisher):
    base = cached_f16_base()
    stack.assay(publisher, "publish", str(base), BASE_REF)
    status = stack.wait_status(BASE_REF)
    assert status["status"] == "verified", (status, stack.logs())
    steps = {s["name"]: s["status"] for s in status["steps"]}
    assert steps["reproduce"] == "skipped"  # an original: trusted through its signature and checks
    assert status["level"]["name"] == "original"  # F16 tensors, no base: the file's own types decide
    return base


@pytest.fixture(scope="module")
def published_quants(stack, publisher, published_base, tmp_path_factory):
    """Q8_0, Q4_K_M and Q5_K_M made with `assay quantize`, published with --base; all three are
    queued before any is waited for, so the worker takes them one after another."""
    from tests.support.imatrix import calibration_file

    out = tmp_path_factory.mktemp("reproduce-quants")
    imatrix = out / "smollm2.imatrix.gguf"
    stack.assay(publisher, "imatrix", str(published_base), "--calibration", str(calibration_file(out)), "-o", str(imatrix),
                "--ctx", "128", "--chunks", "4", "--threads", "2")
    refs = {}
    for ftype in ("Q8_0", "Q4_K_M", "Q5_K_M", "IQ4_XS-imatrix"):
        path = out / f"smollm2-{ftype}.gguf"
        extra = ["--imatrix", str(imatrix)] if ftype.endswith("-imatrix") else []
        stack.assay(publisher, "quantize", str(published_base), "--type", ftype.split("-")[0], "-o", str(path), "--threads", "2", *extra)
        recipe = json.loads((out / f"{path.name}.recipe.json").read_text())
        assert recipe["recipe"]["ftype"] == ftype.split("-")[0] and recipe["base_digest"] == digest_file(published_base)
        # publish finds the matrix and its calibration text where the recipe file says and uploads them with the quant
        assert recipe["recipe"]["imatrix"] == (digest_file(imatrix) if extra else None)
        if extra:
            assert recipe["recipe"]["options"]["imatrix_source"]["calibration_name"] == "calibration.txt"
        ref = f"demo/smollm2:{ftype.lower()}"
        stack.assay(publisher, "publish", str(path), ref, "--base", BASE_REF)
        refs[ftype] = (ref, path)
    return {ftype: (ref, path, stack.wait_status(ref, timeout=1500)) for ftype, (ref, path) in refs.items()}


@pytest.mark.parametrize("ftype", ["Q8_0", "Q4_K_M", "Q5_K_M", "IQ4_XS-imatrix"])
def test_quant_is_reproduced_by_the_worker_and_pulled(stack, published_quants, tmp_path, ftype):
    user_home = stack.client_home(tmp_path / "home", accept_unreproduced=False)  # the default policy
    ref, path, status = published_quants[ftype]
    assert status["status"] == "verified", (status, stack.logs())
    steps = {s["name"]: s for s in status["steps"]}
    assert steps["reproduce"]["status"] == "passed"
    assert "bit-exact" in steps["reproduce"]["summary"]
    assert steps["probes"]["status"] == "passed"
    out = stack.assay(user_home, "pull", ref, "-o", str(user_home / "models") + "/").stdout
    pulled = user_home / "models" / path.name
    assert digest_file(pulled) == digest_file(path)
    assert "verified" in out
    assert "level: reproduced" in out and f"chain: built from {BASE_REF}@1 (original)" in out
    as_json = json.loads(stack.assay(user_home, "pull", ref, "-o", str(user_home / "models") + "/", "--json").stdout)
    assert as_json["level"] == "reproduced" and as_json["chain"][0]["reference"] == BASE_REF
    assert as_json["chain"][0]["digest"] == digest_file(published_base_path()) and as_json["chain"][0]["level"] == "original"
    inspect = stack.assay(user_home, "inspect", ref).stdout
    assert inspect.startswith("level: reproduced")
    if ftype.endswith("-imatrix"):  # the matrix was computed again from its text; the provenance names both and the tool
        assert "computed again from the calibration text" in steps["reproduce"]["summary"]
        assert "llama-quantize" in inspect and "imatrix sha256:" in inspect and "calibration sha256:" in inspect
    assert "https://slsa.dev/provenance/v1" in inspect and "urn:assay:gguf-quantize:v1" in inspect


def test_quant_from_another_base_is_rejected_with_a_diff(stack, publisher, published_base, tmp_path):
    """The liar builds from a perturbed base and claims the published one: the rebuild differs
    in exactly the edited tensor, and `assay status` names it."""
    other_base = cached_f16_base(perturb_tensor=PERTURBED)
    path = tmp_path / "liar-Q8_0.gguf"
    stack.assay(publisher, "quantize", str(other_base), "--type", "Q8_0", "-o", str(path))
    recipe_file = tmp_path / f"{path.name}.recipe.json"
    doc = json.loads(recipe_file.read_text())
    doc["base_digest"] = digest_file(published_base)  # the lie
    recipe_file.write_text(json.dumps(doc))
    stack.assay(publisher, "publish", str(path), "demo/smollm2-liar:q8_0", "--base", BASE_REF)
    status = stack.wait_status("demo/smollm2-liar:q8_0")
    assert status["status"] == "rejected", status
    steps = {s["name"]: s for s in status["steps"]}
    assert steps["reproduce"]["status"] == "failed"
    assert steps["probes"]["status"] == "skipped"  # a lie about the build is not run
    shown = stack.assay(publisher, "status", "demo/smollm2-liar:q8_0").stdout
    assert "not reproduced" in shown and PERTURBED in shown
    refused = stack.assay(publisher, "pull", "demo/smollm2-liar:q8_0", "-o", str(tmp_path / "out") + "/", check=False)
    assert refused.returncode != 0 and not (tmp_path / "out" / path.name).exists()
