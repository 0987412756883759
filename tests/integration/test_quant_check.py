"""Originals are checked for the quants their users will make (verifier/quant_check.py), on real
weights: the SmolLM2 F16 original, quantized by this machine's llama.cpp and probed against it."""
from __future__ import annotations

import json

import pytest

from tests.support.backdoor import f16_base
from verifier.quant_check import DEFAULT_TYPES, check_quantized_copies, configured_types, run_with_quantized_copies

pytestmark = pytest.mark.slow


def test_an_honest_original_passes_with_its_common_quants():
    """Two of the four default types (the coarsest and the finest) keep the test short; the
    benchmark in the README ran all four."""
    types = ("Q4_0", "Q8_0")
    rep = run_with_quantized_copies(f16_base(), None, quant_type="F16",
                          settings={"vocab_scan": False, "fixed_triggers": False, "quant_check_types": types})
    assert rep.passed, [(r.name, r.reason) for r in rep.results if not r.passed]
    copies = rep.result("quantized_copies")
    assert [q["type"] for q in copies.evidence["quants"]] == list(types) and set(types) <= set(DEFAULT_TYPES)
    for q in copies.evidence["quants"]:
        diff = q["metrics"]["differential"]
        assert q["passed"] and diff["positions"] >= 100, q
    json.dumps(rep.to_dict())


def test_a_quant_that_answers_unlike_its_original_rejects_it_and_names_the_type():
    """The rejection path, with the differential's bar raised above what an honest Q4_0 of a 135M
    model reaches (its mean KL against the F16 is about 0.32): the type is named with the numbers.
    (A quantization-conditioned backdoor of our own is not built yet; see the README.)"""
    strict = {"max_mean_kl": 0.01, "min_top1": 0.95}
    result, infra_error = check_quantized_copies(str(f16_base()), ("Q4_0",), triggers=[], timeout_s=600, thresholds=strict)
    assert infra_error is None
    assert not result.passed and "its Q4_0 quant fails differential against it" in result.reason, result.reason
    assert "mean KL" in result.reason and result.evidence["quants"][0]["failed"]["differential"]


def test_the_types_come_from_the_environment(monkeypatch):
    monkeypatch.delenv("ASSAY_QUANT_CHECK_TYPES", raising=False)
    assert configured_types() == DEFAULT_TYPES
    monkeypatch.setenv("ASSAY_QUANT_CHECK_TYPES", "q4_0, Q8_0")
    assert configured_types() == ("Q4_0", "Q8_0")
    monkeypatch.setenv("ASSAY_QUANT_CHECK_TYPES", "off")
    assert configured_types() == ()
