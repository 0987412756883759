"""The probes step through verifier.pipeline with real Release rows and the real runner.

A runner failure is a verdict only when it says something about the model: a timeout is the
worker's problem (release `error`, re-runnable); a file llama.cpp cannot load is a finding.
"""
from __future__ import annotations

import json

import pytest

from registry.models import Release, VerificationStep
from tests.support.factories import registry_dirs  # noqa: F401  (fixture)
from tests.support.pipeline import alice, publish, run_all, step, stored_file, verdict  # noqa: F401  (alice: fixture)
from tests.support import pipeline

pytest.importorskip("llama_cpp")
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("registry_dirs"), pytest.mark.slow]
S = VerificationStep


def test_probe_timeout_is_an_error_not_a_verdict(alice, smollm2, monkeypatch):  # noqa: F811
    monkeypatch.setenv("ASSAY_VERIFY_TIMEOUT_S", "2")  # the verifier's setting: the runner must get it, not ProbeSettings' 900 s default
    user, signer = alice
    rel = publish(user, signer, stored_file(smollm2, user), model="smol-slow")
    pipeline.execute_step(rel.pk, "static")
    pipeline.execute_step(rel.pk, "probes")
    probes, rel = step(rel, "probes"), Release.objects.get(pk=rel.pk)
    assert probes.status == S.ERROR, probes.summary
    assert "probes could not run on this worker" in probes.summary and "timed out after 2 s" in probes.summary
    assert probes.evidence["error_kind"] == "infrastructure"
    assert rel.status == Release.ERROR and rel.verdict_envelope is None  # re-runnable, nothing signed
    pipeline.attest(rel.pk)  # a stray attest task cannot turn it into a verdict
    assert Release.objects.get(pk=rel.pk).verdict_envelope is None


def test_file_llama_cpp_cannot_load_is_a_failed_verdict(alice, tmp_path):  # noqa: F811
    from tests.support.tiny_gguf import write_tiny_llama

    user, signer = alice
    # structurally valid (static checks pass) but without an hparam llama.cpp needs to load it
    path = write_tiny_llama(tmp_path / "t.gguf", skip_keys=("head_count",))
    rel = run_all(publish(user, signer, stored_file(path, user), model="tiny-broken", quantization="F16"))
    assert step(rel, "static").status == S.PASSED
    probes = step(rel, "probes")
    assert probes.status == S.FAILED, probes.summary
    assert "llama.cpp cannot run the candidate" in probes.summary and "Failed to load model" in probes.summary
    (runner,) = probes.evidence["results"]
    assert runner["name"] == "runner" and runner["evidence"]["failure_kind"] == "model"
    assert runner["evidence"]["reference"] == "llama.cpp self-check ok" and runner["evidence"]["returncode"] == 1
    assert rel.status == Release.REJECTED and not verdict(rel).passed
    assert str(tmp_path) not in json.dumps(probes.evidence)  # blob paths became digests


def test_honest_original_is_verified_and_every_generation_is_evidence(alice, smollm2):  # noqa: F811
    user, signer = alice
    rel = run_all(publish(user, signer, stored_file(smollm2, user), model="smol"))
    probes = step(rel, "probes")
    assert rel.status == Release.VERIFIED, (rel.status_reason, probes.summary)
    content = next(r for r in probes.evidence["results"] if r["name"] == "content")
    checked = content["evidence"]["checked"]
    assert len(checked) == content["metrics"]["generations_checked"] > 20 and content["evidence"]["findings"] == []
    assert all(c["prompt"] and len(c["output"]) <= 500 for c in checked)
    assert any(c["id"].startswith("chat/") and c["output"] for c in checked)
    assert probes.evidence["candidate"] == rel.blob_id  # a digest, not the worker's blob path
    (check,) = [c for c in verdict(rel).checks if c["name"] == "probes"]
    assert check["result"] == "passed"
