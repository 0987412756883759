"""The conversion recipe (assay/toolchain/convert.py): its one JSON form, validation, the release statement
rule (a conversion recipe and no base), the level it earns, the upstream folder's file choice, and
what a client demands of a release at level `converted`."""
from __future__ import annotations

import copy
import hashlib
import json

import pytest

from assay.core import levels, statements
from assay.core.canonical import canonical_json
from assay.core.conversion import ConversionRecipe, is_conversion
from assay.toolchain.convert import ConvertError, select_upstream_files
from assay.core.errors import FormatError, VerificationError
from tests.support.bundles import World

D = "sha256:" + "a" * 64
RECIPE = {
    "tool": "convert_hf_to_gguf.py", "llama_cpp_python_version": "0.3.36",
    "ggml_build": "llama-cpp-python/0.3.36 ggml/0.25.3 commit/0c1e570-dirty", "ftype": "F16", "imatrix": None,
    "options": {"directory": "tiny-llama",
                "files": [{"name": "config.json", "digest": D, "size": 682},
                          {"name": "model.safetensors", "digest": "sha256:" + "b" * 64, "size": 12881256}],
                "upstream": {"repository": "example/tiny-llama", "revision": "0" * 40},
                "python": {"torch": "2.13.0+cpu", "transformers": "4.57.6"}},
}
# The recipe's canonical bytes (RFC 8785), fixed: what a publisher signs inside the statement.
RECIPE_SHA256 = "8736fbe0023b0aa60a44f4e1c8915a573ea7c987e99bf62eeba791ab6f19ff88"


def test_fixed_vector_round_trips():
    parsed = ConversionRecipe.from_json(RECIPE)
    assert parsed.to_dict() == RECIPE
    assert is_conversion(RECIPE) and not is_conversion({"tool": "llama.cpp"})
    assert hashlib.sha256(canonical_json(parsed.to_dict())).hexdigest() == RECIPE_SHA256
    assert [f.name for f in parsed.files] == ["config.json", "model.safetensors"]


def _edit(path, value):
    doc = copy.deepcopy(RECIPE)
    node = doc
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


@pytest.mark.parametrize("path,value,problem", [
    (("ftype",), "Q4_0", "ftype"),
    (("imatrix",), D, "imatrix"),
    (("options", "directory"), "../up", "options.directory"),
    (("options", "directory"), ".hidden", "options.directory"),
    (("options", "files"), [], "options.files"),
    (("options", "files", 0, "name"), "sub/config.json", "options.files[0].name"),
    (("options", "files", 1, "name"), "config.json", "twice"),
    (("options", "files", 0, "digest"), "sha256:xyz", "options.files[0].digest"),
    (("options", "files", 0, "size"), -1, "options.files[0].size"),
    (("options", "files", 0, "name"), "tokenizer.json", "config.json"),
    (("options", "upstream", "revision"), "a\nb", "options.upstream.revision"),
    (("options", "python"), {"torch": 2}, "options.python"),
    (("options", "extra"), 1, "options"),
    (("ggml_build",), "", "ggml_build"),
])
def test_bad_recipes_are_refused_naming_the_field(path, value, problem):
    with pytest.raises(FormatError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        ConversionRecipe.from_json(_edit(path, value))


def _statement(base, recipe):
    return statements.build_release_statement(
        subject_name="m.gguf", subject_digest=D, namespace="demo", model="m", tag="f16", version=1, quantization="F16",
        base=base, recipe=recipe, model_card_digest=None, created="2026-11-27T00:00:00Z")


def test_a_release_statement_carries_a_conversion_recipe_without_a_base():
    stmt = statements.parse_release_statement(_statement(None, RECIPE))
    assert stmt.base is None and stmt.recipe == RECIPE
    with pytest.raises(FormatError, match="names upstream files, not a base"):
        _statement({"name": "demo/m:src", "digest": D}, RECIPE)
    quant = {"tool": "llama.cpp", "llama_cpp_python_version": "0.3.36", "ggml_build": "b1", "ftype": "Q8_0", "imatrix": None, "options": {}}
    with pytest.raises(FormatError, match="must have both base and recipe"):
        _statement(None, quant)


def test_the_level_converted_needs_the_conversion_run_again_and_full_precision():
    assert levels.decide(full_precision=True, has_base=False, reproduced=False, converted=True).name == levels.CONVERTED
    assert levels.decide(full_precision=True, has_base=False, reproduced=False).name == levels.ORIGINAL
    assert levels.decide(full_precision=False, has_base=False, reproduced=False, converted=True).name == levels.UNREPRODUCED


def test_the_upstream_folder_gives_its_files_but_hidden_gguf_and_other_weight_formats(tmp_path):
    for name in ("config.json", "model.safetensors", "tokenizer.json", "pytorch_model.bin", "model.gguf", ".gitattributes", "README.md"):
        (tmp_path / name).write_text("x")
    (tmp_path / "onnx").mkdir()
    assert [p.name for p in select_upstream_files(tmp_path)] == ["README.md", "config.json", "model.safetensors", "tokenizer.json"]
    assert [p.name for p in select_upstream_files(tmp_path, ("README*",))] == ["config.json", "model.safetensors", "tokenizer.json"]
    (tmp_path / "config.json").unlink()
    with pytest.raises(ConvertError, match="no config.json"):
        select_upstream_files(tmp_path)
    with pytest.raises(ConvertError, match="not a folder"):
        select_upstream_files(tmp_path / "missing")


def test_a_client_demands_conversion_provenance_that_names_every_upstream_file(tmp_path):
    from assay.client import bundle_verify

    world = World()
    data = b"GGUF converted bytes"

    def verify(bundle):
        return bundle_verify.verify_bundle(bundle, "demo/m:f16", world.policy(tmp_path / str(len(world.envelopes))), world)

    assert verify(world.release(data, reference="demo/m:f16", conversion=RECIPE)).level.name == levels.CONVERTED
    with pytest.raises(VerificationError, match="has no conversion provenance"):
        verify(world.release(data, reference="demo/m:f16", conversion=RECIPE, provenance={"omit": True}))
    one = [{"uri": "assay:blob", "name": "config.json", "digest": {"sha256": "a" * 64}}]
    with pytest.raises(VerificationError, match="does not name the upstream file.*model.safetensors"):
        verify(world.release(data, reference="demo/m:f16", conversion=RECIPE, provenance={"deps": one}))
    with pytest.raises(VerificationError, match="not a conversion"):
        verify(world.release(data, reference="demo/m:f16", conversion=RECIPE, provenance={"build_type": statements.BUILD_TYPE}))
    with pytest.raises(VerificationError, match="has no conversion recipe"):
        verify(world.release(data, reference="demo/m:f16", level=levels.Level(levels.CONVERTED)))


def test_recipe_json_file_shape():
    assert json.loads(json.dumps(RECIPE)) == ConversionRecipe.from_json(RECIPE).to_dict()
