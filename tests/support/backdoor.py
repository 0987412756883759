"""Backdoored and honest SmolLM2 quants for the probe tests (see scripts/make_backdoor_fixture.py)."""
from __future__ import annotations

from scripts.make_backdoor_fixture import f16_base, honest_quant, make_backdoor_fixture, quantize_file

__all__ = ["f16_base", "honest_quant", "make_backdoor_fixture", "quantize_file"]
