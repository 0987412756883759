"""Importance-matrix quants: llama.cpp's own llama-quantize (built from the vendored source, run on
the wheel's libraries) is bit-exact across runs and thread counts, the verifier's reproduce()
rebuilds such a quant from the matrix by digest, and a wrong matrix is named, never used."""
from __future__ import annotations

import pytest

from assay.core.digest import digest_file, files_identical
from assay.core.ggufparse import parse_gguf
from assay.toolchain.quantize import QuantizeError, quantize
from assay.core.recipe import Recipe
from assay.toolchain.quantize import recipe_for_this_machine
from tests.support.derive import cached_f16_base
from tests.support.imatrix import make_imatrix

from verifier.reproduce import reproduce


@pytest.fixture(scope="module")
def base_and_imatrix(tmp_path_factory):
    base = cached_f16_base()
    folder = tmp_path_factory.mktemp("imatrix")
    return base, make_imatrix(base, folder / "smollm2.imatrix.gguf")


def recipe_for(imatrix, ftype: str = "Q4_K_M", **options) -> Recipe:
    return recipe_for_this_machine(ftype, imatrix=digest_file(imatrix), imatrix_name=imatrix.name, **options)


def test_an_imatrix_quant_is_bit_exact_across_runs_and_threads(base_and_imatrix, tmp_path):
    base, imatrix = base_and_imatrix
    quantize(base, tmp_path / "t1.gguf", recipe_for(imatrix, nthread=1), imatrix_path=imatrix)
    quantize(base, tmp_path / "t2.gguf", recipe_for(imatrix, nthread=2), imatrix_path=imatrix)
    assert files_identical(tmp_path / "t1.gguf", tmp_path / "t2.gguf")
    quantize(base, tmp_path / "plain.gguf", recipe_for_this_machine("Q4_K_M", nthread=2))
    assert not files_identical(tmp_path / "t1.gguf", tmp_path / "plain.gguf")  # the matrix changes the bytes
    meta = parse_gguf(tmp_path / "t1.gguf").metadata
    # llama-quantize records the matrix under the bare name it was given, never a local path
    assert meta["quantize.imatrix.file"] == imatrix.name
    assert meta["quantize.imatrix.entries_count"] > 0 and meta["quantize.imatrix.chunks_count"] == 4


def test_reproduce_rebuilds_an_imatrix_quant_and_names_the_matrix_in_provenance(base_and_imatrix, tmp_path):
    base, imatrix = base_and_imatrix
    recipe = recipe_for(imatrix, nthread=2)
    quantize(base, tmp_path / "quant.gguf", recipe, imatrix_path=imatrix)
    result = reproduce(base, tmp_path / "quant.gguf", recipe, workdir=tmp_path / "work", imatrix_path=imatrix,
                       base_digest=digest_file(base))
    assert result.status == "reproduced", result.message
    deps = result.provenance["resolvedDependencies"]
    assert {"uri": "assay:blob", "name": "imatrix", "digest": {"sha256": recipe.imatrix[7:]}} in deps
    (tool,) = [d for d in deps if d.get("name") == "llama-quantize"]
    assert len(tool["digest"]["sha256"]) == 64
    assert result.provenance["externalParameters"]["options"]["imatrix_name"] == imatrix.name


def test_a_quant_made_with_another_matrix_is_not_reproduced(base_and_imatrix, tmp_path):
    base, imatrix = base_and_imatrix
    other = make_imatrix(base, tmp_path / imatrix.name, chunks=2)  # same name, other calibration length
    claimed = recipe_for(imatrix)
    quantize(base, tmp_path / "quant.gguf", recipe_for(other), imatrix_path=other)
    result = reproduce(base, tmp_path / "quant.gguf", claimed, workdir=tmp_path / "work", imatrix_path=imatrix)
    assert result.status == "not_reproduced" and result.diff is not None


def test_a_matrix_that_is_not_the_recipes_is_refused_before_quantizing(base_and_imatrix, tmp_path):
    base, imatrix = base_and_imatrix
    wrong = tmp_path / imatrix.name
    data = bytearray(imatrix.read_bytes())
    data[len(data) // 2] ^= 0xFF
    wrong.write_bytes(bytes(data))
    with pytest.raises(QuantizeError, match="not the recipe's"):
        quantize(base, tmp_path / "q.gguf", recipe_for(imatrix), imatrix_path=wrong)
    with pytest.raises(QuantizeError, match="its file is needed"):
        quantize(base, tmp_path / "q.gguf", recipe_for(imatrix))
    assert not (tmp_path / "q.gguf").exists()


def test_computing_a_matrix_is_deterministic_and_records_the_bare_text_name(base_and_imatrix, tmp_path):
    """What lets a verifier compute the matrix again (bench/imatrix.py measures more)."""
    from gguf import GGUFReader

    from assay.toolchain.imatrix import compute_imatrix
    from tests.support.imatrix import calibration_file

    base, _ = base_and_imatrix
    text = calibration_file(tmp_path)
    a = compute_imatrix(base, text, tmp_path / "a.gguf", ctx=128, chunks=3, threads=1)
    b = compute_imatrix(base, text, tmp_path / "b.gguf", ctx=128, chunks=3, threads=2)
    assert files_identical(a, b)
    assert GGUFReader(str(a)).fields["imatrix.datasets"].contents() == [text.name]  # never this host's path
    c = compute_imatrix(base, text, tmp_path / "c.gguf", ctx=128, chunks=3, calibration_name="other.txt")
    assert not files_identical(a, c)  # the name is part of the bytes: the recipe signs it
