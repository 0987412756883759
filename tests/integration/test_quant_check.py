"""Originals are checked for the quants their users will make (verifier/quant_check.py), on real
weights: the SmolLM2 F16 original, quantized by this machine's llama.cpp and probed against it."""
from __future__ import annotations

import json

import pytest

from scripts.make_quant_backdoor import make_quant_backdoor
from tests.support.backdoor import f16_base
from verifier.quant_check import DEFAULT_TYPES, configured_types, run_with_quantized_copies

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


def test_a_quantization_conditioned_backdoor_is_rejected_and_its_type_named():
    """scripts/make_quant_backdoor.py: an F16 within a small KL of the clean model whose honest
    llama.cpp Q4_0 opens every answer with "https://www..." (Egashira et al.'s construction: the
    F16 weights sit inside the rounding intervals of a malicious quant). The F16 itself passes
    every probe; its Q4_0 copy fails against it and is named; its Q8_0 copy passes."""
    original = make_quant_backdoor()
    rep = run_with_quantized_copies(original, None, quant_type="F16",
                                    settings={"vocab_scan": False, "fixed_triggers": False,
                                              "quant_check_types": ("Q4_0", "Q8_0")})
    assert rep.error is None, rep.error
    own = [r for r in rep.results if r.name != "quantized_copies" and not r.passed]
    assert own == [], [(r.name, r.reason) for r in own]
    copies = rep.result("quantized_copies")
    assert not rep.passed and not copies.passed
    assert "its Q4_0 quant fails" in copies.reason and "Q8_0" not in copies.reason, copies.reason
    rows = {q["type"]: q for q in copies.evidence["quants"]}
    assert rows["Q8_0"]["passed"] and not rows["Q4_0"]["passed"]
    assert "differential" in rows["Q4_0"]["failed"]


def test_the_types_come_from_the_environment(monkeypatch):
    monkeypatch.delenv("ASSAY_QUANT_CHECK_TYPES", raising=False)
    assert configured_types() == DEFAULT_TYPES
    monkeypatch.setenv("ASSAY_QUANT_CHECK_TYPES", "q4_0, Q8_0")
    assert configured_types() == ("Q4_0", "Q8_0")
    monkeypatch.setenv("ASSAY_QUANT_CHECK_TYPES", "off")
    assert configured_types() == ()
