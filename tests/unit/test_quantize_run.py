"""assay.toolchain.quantize.quantize failure paths: the child runs real llama.cpp; nothing is left behind."""
from __future__ import annotations

import pytest

pytest.importorskip("llama_cpp")

from assay.toolchain.llama_tools import CannotReproduceHere
from assay.toolchain.quantize import QuantizeError, current_build_id, quantize
from assay.toolchain.quantize import recipe_for_this_machine


def test_build_id_names_package_and_commit():
    bid = current_build_id()
    assert bid.startswith("llama-cpp-python/") and " ggml/" in bid and " commit/" in bid


def test_other_build_cannot_reproduce_here(tmp_path):
    base = tmp_path / "base.gguf"
    base.write_bytes(b"GGUF")
    recipe = recipe_for_this_machine("Q8_0").with_options(ggml_build="llama-cpp-python/0.2.0 ggml/0.0.1 commit/deadbee")
    with pytest.raises(CannotReproduceHere, match="deadbee"):
        quantize(base, tmp_path / "out.gguf", recipe)
    assert not (tmp_path / "out.gguf").exists()


def test_imatrix_recipe_needs_its_matrix_file(tmp_path):
    base = tmp_path / "base.gguf"
    base.write_bytes(b"GGUF")
    recipe = recipe_for_this_machine("Q4_K_M", imatrix="sha256:" + "0" * 64, imatrix_name="m.imatrix")
    with pytest.raises(QuantizeError, match="importance matrix sha256:0000"):
        quantize(base, tmp_path / "out.gguf", recipe)
    assert not (tmp_path / "out.gguf").exists()


def test_without_the_tools_an_imatrix_recipe_cannot_be_rebuilt_here(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_LLAMA_TOOLS", str(tmp_path / "no-tools"))
    recipe = recipe_for_this_machine("Q4_K_M", imatrix="sha256:" + "0" * 64, imatrix_name="m.imatrix")
    with pytest.raises(CannotReproduceHere, match="importance matrix and llama.cpp's llama-quantize is not at"):
        quantize(tmp_path / "base.gguf", tmp_path / "out.gguf", recipe)


def test_bad_base_fails_and_leaves_nothing(tmp_path):
    base = tmp_path / "base.gguf"
    base.write_bytes(b"this is not a model" * 100)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(QuantizeError) as exc:
        quantize(base, out_dir / "q.gguf", recipe_for_this_machine("Q8_0", nthread=1), timeout_s=60)
    assert "\n" not in str(exc.value)
    assert list(out_dir.iterdir()) == []


def test_missing_base(tmp_path):
    with pytest.raises(QuantizeError, match="does not exist"):
        quantize(tmp_path / "nope.gguf", tmp_path / "q.gguf", recipe_for_this_machine("Q8_0"))
