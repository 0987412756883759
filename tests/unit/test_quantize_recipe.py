"""assay.toolchain.quantize.Recipe: JSON round trip and strict validation (FormatError names the field)."""
from __future__ import annotations

import json

import pytest

from assay.core.errors import FormatError
from assay.core.recipe import Recipe

BUILD = "llama-cpp-python/0.3.36 ggml/0.25.3 commit/0c1e570-dirty"


def make(**kw) -> Recipe:
    return Recipe(ftype=kw.pop("ftype", "Q4_K_M"), ggml_build=BUILD, llama_cpp_python_version="0.3.36", **kw)


def doc(**changes) -> dict:
    d = make().to_dict()
    d.update(changes)
    return d


def test_round_trip_default_and_full():
    for r in (make(), make(ftype="Q8_0", output_tensor_type="Q8_0", token_embedding_type="F16", pure=True,
                         allow_requantize=True, quantize_output_tensor=False,
                         tensor_types=(("attn_v", "Q6_K"), (r"ffn_down\.weight$", "Q5_K")), nthread=4)):
        assert Recipe.from_json(r.to_json()) == r
        assert Recipe.from_json(r.to_dict()) == r
        assert Recipe.from_json(r.to_json().encode()) == r


def test_json_shape_matches_release_statement_recipe():
    d = json.loads(make().to_json())
    assert set(d) == {"tool", "llama_cpp_python_version", "ggml_build", "ftype", "imatrix", "options"}
    assert d["tool"] == "llama.cpp" and d["imatrix"] is None
    assert set(d["options"]) == {"output_tensor_type", "token_embedding_type", "pure", "allow_requantize",
                                 "quantize_output_tensor", "tensor_types", "nthread"}


def test_release_statement_accepts_the_recipe():
    statements = pytest.importorskip("assay.core.statements")
    recipe = make(tensor_types=(("attn_v", "Q6_K"),))
    assert statements.parse_recipe(recipe.to_dict()) == recipe


def test_missing_options_take_defaults():
    d = doc(options={"nthread": 3})
    r = Recipe.from_json(d)
    assert r.nthread == 3 and r.quantize_output_tensor is True and r.tensor_types == ()


@pytest.mark.parametrize("change, field", [
    ({"ftype": "Q4_K_X"}, "ftype"),
    ({"ftype": 15}, "ftype"),
    ({"tool": "exllama"}, "tool"),
    ({"ggml_build": ""}, "ggml_build"),
    ({"ggml_build": "x\n"}, "ggml_build"),
    ({"imatrix": "sha256:abc"}, "imatrix"),
    ({"imatrix": "../../etc/passwd"}, "imatrix"),
    ({"ftype": "IQ2_XXS"}, "imatrix"),  # needs an importance matrix
    ({"options": []}, "options"),
    ({"options": {"nthread": True}}, "options.nthread"),
    ({"options": {"nthread": -1}}, "options.nthread"),
    ({"options": {"pure": "yes"}}, "options.pure"),
    ({"options": {"output_tensor_type": "Q9_9"}}, "options.output_tensor_type"),
    ({"options": {"token_embedding_type": 8}}, "options.token_embedding_type"),
    ({"options": {"tensor_types": {"attn_v": "Q6_K"}}}, "options.tensor_types"),
    ({"options": {"tensor_types": [["attn_v"]]}}, "options.tensor_types[0]"),
    ({"options": {"tensor_types": [["(", "Q6_K"]]}}, "options.tensor_types[0][0]"),
    ({"options": {"tensor_types": [["attn_v", "Q7_K"]]}}, "options.tensor_types[0][1]"),
    ({"options": {"imatrix_file": "x"}}, "options.imatrix_file"),  # unknown options may change bytes: refused
    ({"imatrix": "sha256:" + "ab" * 32}, "options.imatrix_name"),  # the name llama-quantize records is part of the bytes
    ({"options": {"imatrix_name": "m.gguf"}}, "options.imatrix_name"),  # a name without a matrix
    ({"imatrix": "sha256:" + "ab" * 32, "options": {"imatrix_name": "../m.gguf"}}, "options.imatrix_name"),
    ({"imatrix": "sha256:" + "ab" * 32, "options": {"imatrix_name": ".hidden"}}, "options.imatrix_name"),
    ({"imatrix": "sha256:" + "ab" * 32, "options": {"imatrix_name": "a b.gguf"}}, "options.imatrix_name"),
    ({"options": {"imatrix_source": {"calibration": "sha256:" + "cd" * 32, "calibration_name": "c.txt", "ctx": 512, "chunks": 4}}},
     "options.imatrix_source"),  # a source without a matrix
    ({"imatrix": "sha256:" + "ab" * 32, "options": {"imatrix_name": "m.gguf", "imatrix_source": {
        "calibration": "sha256:x", "calibration_name": "c.txt", "ctx": 512, "chunks": 4}}}, "options.imatrix_source.calibration"),
    ({"imatrix": "sha256:" + "ab" * 32, "options": {"imatrix_name": "m.gguf", "imatrix_source": {
        "calibration": "sha256:" + "cd" * 32, "calibration_name": "/etc/c.txt", "ctx": 512, "chunks": 4}}},
     "options.imatrix_source.calibration_name"),
    ({"imatrix": "sha256:" + "ab" * 32, "options": {"imatrix_name": "m.gguf", "imatrix_source": {
        "calibration": "sha256:" + "cd" * 32, "calibration_name": "c.txt", "ctx": 512, "chunks": True}}}, "options.imatrix_source.chunks"),
    ({"imatrix": "sha256:" + "ab" * 32, "options": {"imatrix_name": "m.gguf", "imatrix_source": {
        "calibration": "sha256:" + "cd" * 32, "calibration_name": "c.txt", "ctx": 512}}}, "options.imatrix_source.chunks"),
    ({"extra": 1}, "extra"),
])
def test_validation_error_names_the_field(change, field):
    with pytest.raises(FormatError) as exc:
        Recipe.from_json(doc(**change))
    assert f"recipe field {field} " in str(exc.value)
    assert "\n" not in str(exc.value)


def test_missing_field_is_named():
    d = doc()
    del d["ggml_build"]
    with pytest.raises(FormatError, match="recipe field ggml_build is missing"):
        Recipe.from_json(d)


@pytest.mark.parametrize("text", ["", "[]", "{", '"Q4_K_M"', "null"])
def test_not_a_json_object(text):
    with pytest.raises(FormatError):
        Recipe.from_json(text)


def test_imatrix_digest_accepted_for_iq2():
    r = make(ftype="IQ2_XXS", imatrix="sha256:" + "ab" * 32, imatrix_name="smollm2.imatrix.gguf")
    back = Recipe.from_json(r.to_json())
    assert back.imatrix == "sha256:" + "ab" * 32 and back.imatrix_name == "smollm2.imatrix.gguf"
    assert r.to_dict()["options"]["imatrix_name"] == "smollm2.imatrix.gguf"
    assert "imatrix_name" not in make().to_dict()["options"]  # recipes without a matrix keep their JSON


def test_with_options_returns_a_validated_copy():
    r = make().with_options(nthread=1)
    assert r.nthread == 1 and r.ftype == "Q4_K_M"
    with pytest.raises(FormatError):
        make().with_options(ftype="nope")
