"""`assay publish` of an importance-matrix quant: the matrix the recipe names is found (recipe file
or --imatrix), checked against the signed digest, and otherwise refused in one line before any upload."""
import json

import pytest

from assay.core.digest import digest_file
from assay.core.errors import AssayError
from assay.client.publish import plan_publish
from tests.support.tiny_gguf import write_tiny_llama


@pytest.fixture
def quant(tmp_path):
    path = tmp_path / "q.gguf"
    write_tiny_llama(path)
    matrix = tmp_path / "m.imatrix.gguf"
    matrix.write_bytes(b"an importance matrix" * 10)
    recipe = {"tool": "llama.cpp", "llama_cpp_python_version": "0.3.36", "ggml_build": "x", "ftype": "Q4_K_M",
              "imatrix": digest_file(matrix), "options": {"imatrix_name": matrix.name}}
    doc = {"recipe": recipe, "base_digest": "sha256:" + "1" * 64, "output_digest": digest_file(path), "imatrix_file": str(matrix)}
    (tmp_path / "q.gguf.recipe.json").write_text(json.dumps(doc))
    return path, matrix


def plan(path, **kw):
    return plan_publish(path, "acme/m:q4", base_ref="acme/m:f16", recipe_path=None, model_card_path=None, **kw)


def test_the_matrix_is_found_through_the_recipe_file(quant):
    path, matrix = quant
    assert plan(path).imatrix == matrix


def test_a_missing_matrix_is_refused_with_the_flag_to_pass(quant):
    path, matrix = quant
    matrix.unlink()
    with pytest.raises(AssayError, match=r"names the importance matrix sha256:\w+ \(.*does not exist\): pass its file with --imatrix FILE"):
        plan(path)


def test_a_matrix_with_other_bytes_is_refused(quant, tmp_path):
    path, _ = quant
    other = tmp_path / "other.gguf"
    other.write_bytes(b"not the signed matrix")
    with pytest.raises(AssayError, match="is sha256:[0-9a-f]+, not the recipe's sha256:"):
        plan(path, imatrix_path=other)


def test_imatrix_without_a_recipe_matrix_is_refused(quant, tmp_path):
    path, matrix = quant
    doc = json.loads((tmp_path / "q.gguf.recipe.json").read_text())
    doc["recipe"]["imatrix"] = None
    doc["recipe"]["options"] = {}
    (tmp_path / "q.gguf.recipe.json").write_text(json.dumps(doc))
    with pytest.raises(AssayError, match="--imatrix given but the recipe names no importance matrix"):
        plan(path, imatrix_path=matrix)


def _recipe_file(path, options):
    recipe = {"tool": "llama.cpp", "llama_cpp_python_version": "0.3.36", "ggml_build": "x", "ftype": "Q8_0",
              "imatrix": None, "options": options}
    doc = {"recipe": recipe, "base_digest": "sha256:" + "1" * 64, "output_digest": digest_file(path)}
    path.with_name(path.name + ".recipe.json").write_text(json.dumps(doc))


def test_a_split_quant_must_say_in_its_recipe_how_it_was_split(tmp_path):
    """A quant split after the fact cannot be rebuilt part by part: refused before any upload."""
    parts = [tmp_path / f"m-Q8_0-0000{i}-of-00002.gguf" for i in (1, 2)]
    for p in parts:
        write_tiny_llama(p)
    _recipe_file(parts[0], {})
    with pytest.raises(AssayError, match="does not say how it was split"):
        plan(parts[0])
    _recipe_file(parts[0], {"split": {"max_tensors": 8}})
    planned = plan(parts[0])
    assert [p.name for p, _ in planned.parts] == [p.name for p in parts]
    single = tmp_path / "one.gguf"
    write_tiny_llama(single)
    _recipe_file(single, {"split": {"max_tensors": 8}})
    with pytest.raises(AssayError, match="is not the first part of a split GGUF"):
        plan(single)
    with pytest.raises(AssayError, match="give its first part"):
        plan(parts[1])
