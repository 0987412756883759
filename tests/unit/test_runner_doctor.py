"""`assay doctor`: hardware profile and plan for a real GGUF header (nothing is loaded)."""
from __future__ import annotations

import json

from click.testing import CliRunner

from assay.cli.doctor import doctor
from tests.support.models import smollm2_gguf


def test_doctor_prints_profile_and_plan():
    res = CliRunner().invoke(doctor, [str(smollm2_gguf()), "--ctx", "100000"])
    assert res.exit_code == 0, res.output
    assert "CPU " in res.output and "RAM " in res.output and "llama-cpp-python" in res.output
    assert "30 layers" in res.output and "n_ctx 8192" in res.output and "capped to the trained context" in res.output


def test_doctor_json():
    res = CliRunner().invoke(doctor, ["--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["hardware"]["usable_cores"] >= 1 and "plan" not in doc
