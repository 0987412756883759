"""verifier.pipeline with real Release rows (PostgreSQL): step order, skips, retries, attestation.

The steps run for real (static checks, fetching blobs through the registry's verifier API,
signing with the verifier's own key, the transparency log); the only faults injected are
exceptions from a step or from the registry connection, to exercise the retry bookkeeping.
"""
from __future__ import annotations

import json

import pytest

from assay.core import dsse, statements
from registry.blobstore import get_blob_store
from registry.models import LogEntry, Release, VerificationStep
from tests.support import pipeline
from tests.support.factories import registry_dirs  # noqa: F401  (fixture)
from tests.support.pipeline import (alice, base_decided, posted, publish, run_all, step, stored_file, task_client,  # noqa: F401  (fixtures)
                                    trusted_verifier_keys, verdict)
from verifier import steps
from verifier.registry_api import RegistryUnavailable, VerifierClient

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("registry_dirs")]
S = VerificationStep


# ------------------------------------------------------------------ static failures stop the model from running

def test_hostile_header_never_reaches_llama_cpp(alice, tmp_path):  # noqa: F811
    from tests.support.tiny_gguf import write_hostile

    user, signer = alice
    rel = publish(user, signer, stored_file(write_hostile(tmp_path, "huge_tensor_count"), user), model="hostile")
    rel = run_all(rel)
    assert step(rel, "static").status == S.FAILED
    probes = step(rel, "probes")
    # skipped by the pipeline before any runner child exists: no evidence, no runner report
    assert (probes.status, probes.summary, probes.evidence) == (S.SKIPPED, "skipped: static did not pass", {})
    assert rel.status == Release.REJECTED and rel.verdict_envelope and rel.provenance_envelope is None
    assert not verdict(rel).passed


def test_real_model_with_injected_chat_template_is_rejected_by_static_checks(alice, smollm2, tmp_path):  # noqa: F811
    from tests.support.derive import rewrite_gguf
    from tests.support.templates import IGNORE_PREVIOUS

    user, signer = alice
    lie = rewrite_gguf(smollm2, tmp_path / "lie.gguf", set_kv={"tokenizer.chat_template": IGNORE_PREVIOUS})
    rel = run_all(publish(user, signer, stored_file(lie, user), model="smol-lie"))
    static = step(rel, "static")
    assert static.status == S.FAILED and "Ignore previous instructions" in static.summary
    assert step(rel, "probes").status == S.SKIPPED
    assert rel.status == Release.REJECTED and "Ignore previous instructions" in rel.status_reason
    (check,) = [c for c in verdict(rel).checks if c["name"] == "static"]
    assert check["result"] == "failed" and "Ignore previous instructions" in check["summary"]
    # the signed evidence names the file by digest, not by where the worker keeps it
    assert str(tmp_path) not in json.dumps(rel.verdict_envelope) and str(tmp_path) not in json.dumps(static.evidence)
    # every step that ran records where: this worker's hardware and llama.cpp build; the signed
    # verdict names that evidence by digest (it is served apart)
    from runner.hardware import detect_hardware

    here = detect_hardware()
    assert static.evidence["worker"]["cpu_model"] == here.cpu_model
    assert static.evidence["worker"]["llama_cpp_python_version"] == here.llama_cpp_python_version
    assert check["evidenceDigest"] == statements.evidence_digest(static.evidence)


# ------------------------------------------------------------------ transient errors are retried

class Flaky:
    """A step that raises `exc` on its first `failures` calls, then runs the real step."""

    def __init__(self, name: str, exc: Exception, failures: int):
        self.real, self.exc, self.left, self.calls = steps.STEPS[name], exc, failures, 0

    def __call__(self, job, files):
        self.calls += 1
        if self.left:
            self.left -= 1
            raise self.exc
        return self.real(job, files)


@pytest.fixture
def tiny_release(alice, tmp_path):  # noqa: F811
    from tests.support.tiny_gguf import write_tiny_llama

    user, signer = alice
    return publish(user, signer, stored_file(write_tiny_llama(tmp_path / "t.gguf"), user), model="tiny", quantization="F16")


def test_transient_error_is_retried_by_the_task(tiny_release, monkeypatch, task_client):  # noqa: F811
    from verifier.tasks import verify_release

    flaky = Flaky("static", ConnectionError("registry unreachable"), failures=2)
    monkeypatch.setitem(steps.STEPS, "static", flaky)
    result = verify_release.apply(args=(tiny_release.pk,))  # eager: retries run inline
    assert result.successful(), result.traceback
    s = step(tiny_release, "static")
    assert (flaky.calls, s.attempts, s.status) == (3, 3, S.PASSED)
    assert Release.objects.get(pk=tiny_release.pk).status in (Release.VERIFIED, Release.REJECTED)


def test_transient_error_with_no_retries_left_is_an_error(tiny_release, monkeypatch, task_client):  # noqa: F811
    from verifier.tasks import MAX_RETRIES, verify_release

    flaky = Flaky("static", TimeoutError("registry timed out"), failures=100)
    monkeypatch.setitem(steps.STEPS, "static", flaky)
    result = verify_release.apply(args=(tiny_release.pk,))
    assert result.failed() and isinstance(result.result, TimeoutError)
    s, rel = step(tiny_release, "static"), Release.objects.get(pk=tiny_release.pk)
    assert flaky.calls == s.attempts == MAX_RETRIES + 1
    assert s.status == S.ERROR and "TimeoutError: registry timed out" in s.summary
    assert rel.status == Release.ERROR and "no retries" in rel.status_reason and rel.verdict_envelope is None


def test_other_exceptions_are_not_retried(tiny_release, monkeypatch, task_client):  # noqa: F811
    from verifier.tasks import verify_release

    flaky = Flaky("static", KeyError("bug"), failures=100)
    monkeypatch.setitem(steps.STEPS, "static", flaky)
    assert verify_release.apply(args=(tiny_release.pk,)).failed()
    assert flaky.calls == 1 and step(tiny_release, "static").status == S.ERROR
    assert Release.objects.get(pk=tiny_release.pk).status == Release.ERROR


def test_registry_unreachable_with_retries_left_leaves_the_step_rerunnable(tiny_release, monkeypatch):
    monkeypatch.setitem(steps.STEPS, "static", Flaky("static", RegistryUnavailable("registry answered 503"), failures=1))
    with pytest.raises(RegistryUnavailable):
        pipeline.execute_step(tiny_release.pk, "static", last_attempt=False)
    s = step(tiny_release, "static")
    assert s.status == S.PENDING and "RegistryUnavailable" in s.summary
    assert Release.objects.get(pk=tiny_release.pk).status == Release.VERIFYING
    pipeline.execute_step(tiny_release.pk, "static")  # what the retry does
    assert step(tiny_release, "static").status == S.PASSED


def test_a_result_the_registry_keeps_failing_to_take_ends_in_error(tiny_release, monkeypatch, task_client):  # noqa: F811
    """The registry answers 5xx to every posted result (found running docker-compose, where its
    database refused the evidence): after the last retry the release is `error`, naming why,
    instead of staying "running" until the periodic requeue hours later."""
    from verifier.tasks import MAX_RETRIES, verify_release

    calls = []

    def failing_finish(self, *a, **kw):
        calls.append(1)
        raise RegistryUnavailable("the registry answered 500: Internal Server Error")

    monkeypatch.setattr(VerifierClient, "finish_step", failing_finish)
    assert verify_release.apply(args=(tiny_release.pk,)).failed()
    rel, s = Release.objects.get(pk=tiny_release.pk), step(tiny_release, "static")
    assert len(calls) == MAX_RETRIES + 1 and s.status == S.ERROR and rel.status == Release.ERROR
    assert "did not take its result and no retries are left" in rel.status_reason and "answered 500" in rel.status_reason


def test_attest_is_retried_after_a_transient_error(tiny_release, monkeypatch, task_client):  # noqa: F811
    from verifier.tasks import verify_release

    for name in ("static", "reproduce"):
        pipeline.execute_step(tiny_release.pk, name)
    posted(tiny_release, "probes", S.PASSED, "probes passed")
    real, calls = VerifierClient.post_verdict, []

    def flaky_post(self, *a, **kw):
        calls.append(1)
        if len(calls) == 1:
            raise RegistryUnavailable("registry answered 502")
        return real(self, *a, **kw)

    monkeypatch.setattr(VerifierClient, "post_verdict", flaky_post)
    assert verify_release.apply(args=(tiny_release.pk,)).successful()
    rel = Release.objects.get(pk=tiny_release.pk)
    assert len(calls) == 2 and rel.status == Release.VERIFIED and verdict(rel).passed


# ------------------------------------------------------------------ reproduce and provenance

@pytest.fixture
def base_and_quant(alice, tmp_path):  # noqa: F811
    """An original release (the base) and a release that names it, with a recipe for this machine."""
    from assay.toolchain.quantize import recipe_for_this_machine

    user, signer = alice
    base_file = tmp_path / "base.gguf"
    base_file.write_bytes(b"GGUF base bytes that llama.cpp cannot load" * 100)
    quant_file = tmp_path / "quant.gguf"
    quant_file.write_bytes(b"GGUF quantized bytes" * 100)
    base_digest = stored_file(base_file, user)
    publish(user, signer, base_digest, model="base", quantization="F16")
    recipe = recipe_for_this_machine("Q8_0").to_dict()
    rel = publish(user, signer, stored_file(quant_file, user), model="quant", quantization="Q8_0",
                  base={"name": "alice/base:q4", "digest": base_digest}, recipe=recipe)
    return rel, base_digest


def test_verifier_refuses_a_base_blob_that_does_not_match_its_digest(base_and_quant):
    """The registry's stored base is damaged: what it serves does not hash to the digest, and the
    verifier builds nothing from it (the step cannot run: the release is `error`, re-runnable)."""
    rel, base_digest = base_and_quant
    base_decided(base_digest)
    path = get_blob_store().local_path(base_digest)
    path.chmod(0o644)
    path.write_bytes(b"swapped on disk")
    with pytest.raises(Exception, match="does not match|hashing to|more than|could not be fetched"):
        pipeline.execute_step(rel.pk, "reproduce")
    s, rel = step(rel, "reproduce"), Release.objects.get(pk=rel.pk)
    assert s.status == S.ERROR and base_digest in s.summary
    assert rel.status == Release.ERROR
    assert rel.verdict_envelope is None and rel.provenance_envelope is None


def test_recipe_of_another_llama_cpp_build_cannot_be_reproduced_here(alice, base_and_quant):  # noqa: F811
    """Not a mismatch: the release goes to `error` (nothing signed), so a worker with that build
    can take it; the status says which build the recipe needs."""
    user, signer = alice
    _, base_digest = base_and_quant
    from assay.toolchain.quantize import recipe_for_this_machine

    recipe = {**recipe_for_this_machine("Q8_0").to_dict(), "ggml_build": "llama-cpp-python/9.9.9 ggml/9.9.9 commit/abcdef1"}
    rel = publish(user, signer, base_and_quant[0].blob_id, model="other-build", quantization="Q8_0",
                  base={"name": "alice/base:q4", "digest": base_digest}, recipe=recipe)
    base_decided(base_digest)
    posted(rel, "static", S.PASSED)  # the bytes are no model
    for name in ("reproduce", "probes"):
        pipeline.execute_step(rel.pk, name)
    pipeline.attest(rel.pk)
    rel = Release.objects.get(pk=rel.pk)
    s = step(rel, "reproduce")
    assert s.status == S.ERROR and s.summary.startswith("cannot reproduce here") and "abcdef1" in s.summary
    assert step(rel, "probes").status in (S.PENDING, S.SKIPPED)
    assert rel.status == Release.ERROR and "cannot reproduce here" in rel.status_reason
    assert rel.verdict_envelope is None and rel.provenance_envelope is None


def test_a_base_the_strict_parser_refuses_fails_reproduction_and_names_no_worker_paths(base_and_quant, tmp_path, settings):
    """llama-quantize never reads a base that the parser the candidate gets refuses: a base need not
    be a verified release, so no verifier may have read it (a quant built on no model is FAILED)."""
    pytest.importorskip("llama_cpp")
    rel, base_digest = base_and_quant
    base_decided(base_digest)
    pipeline.execute_step(rel.pk, "reproduce")  # the base is not a GGUF file at all
    s = step(rel, "reproduce")
    assert s.status == S.FAILED and s.summary.startswith("the base is refused by the strict GGUF parser"), s.summary
    assert "nothing was rebuilt" in s.summary
    text = s.summary + json.dumps(s.evidence)
    assert str(settings.ASSAY_BLOB_DIR) not in text and "assay-reproduce-" not in text


def test_provenance_is_signed_when_reproduced_even_if_probes_fail(base_and_quant):
    rel, base_digest = base_and_quant
    base_decided(base_digest)
    posted(rel, "static", S.PASSED)
    posted(rel, "reproduce", S.PASSED, "bit-exact",
           {"status": "reproduced", "expected_digest": rel.blob_id, "candidate_digest": rel.blob_id,
            "started": "2026-01-01T00:00:00Z", "finished": "2026-01-01T00:01:00Z",
            "provenance": {"resolvedDependencies": [{"uri": "assay:blob", "digest": {"sha256": base_digest[7:]}}]}})
    posted(rel, "probes", S.FAILED, "probes failed: trigger_scan: ' cf': KL vs base 3.98 under the trigger")
    pipeline.attest(rel.pk)
    rel = Release.objects.get(pk=rel.pk)
    assert rel.status == Release.REJECTED and not verdict(rel).passed
    # the provenance is a true statement about the bytes, whatever the probes say
    prov = statements.parse_provenance_statement(dsse.verify_envelope(rel.provenance_envelope, trusted_verifier_keys()).payload)
    assert prov.subject_digest == rel.blob_id and prov.resolved_dependencies[0]["digest"]["sha256"] == base_digest[7:]
    assert prov.external_parameters == rel.recipe
    entry = LogEntry.objects.get(index=rel.provenance_log_index)
    assert entry.kind == "provenance" and rel.provenance_log_index > rel.verdict_log_index


def test_no_provenance_without_a_reproduction(tiny_release):
    rel = run_all(tiny_release)  # an original: reproduce is skipped; probes run the tiny model
    assert step(rel, "reproduce").status == S.SKIPPED
    assert rel.provenance_envelope is None and rel.provenance_log_index is None


def test_imatrix_quant_is_rebuilt_from_its_uploaded_matrix(alice, tmp_path):  # noqa: F811
    """An importance-matrix quant: the matrix is an input of the release (uploaded, its digest
    signed in the recipe); the verifier fetches it by digest through the verifier API, rebuilds
    with llama.cpp's llama-quantize, and the provenance names the matrix and the tool."""
    from assay.core.digest import digest_file
    from assay.toolchain.quantize import recipe_for_this_machine
    from assay.toolchain.quantize import quantize
    from tests.support.derive import cached_f16_base
    from tests.support.imatrix import make_imatrix

    user, signer = alice
    base = cached_f16_base()
    imatrix = make_imatrix(base, tmp_path / "smol.imatrix.gguf")
    recipe = recipe_for_this_machine("Q4_K_M", nthread=2, imatrix=digest_file(imatrix), imatrix_name=imatrix.name)
    quantize(base, tmp_path / "q.gguf", recipe, imatrix_path=imatrix)
    base_digest = stored_file(base, user)
    publish(user, signer, base_digest, model="base", quantization="F16")
    stored_file(imatrix, user)
    rel = publish(user, signer, stored_file(tmp_path / "q.gguf", user), model="imatrix", quantization="Q4_K_M",
                  base={"name": "alice/base:q4", "digest": base_digest}, recipe=recipe.to_dict())
    base_decided(base_digest)
    assert [(i.role, i.name, i.blob_id) for i in rel.inputs.all()] == [("imatrix", imatrix.name, recipe.imatrix)]
    pipeline.execute_step(rel.pk, "reproduce")
    done = step(Release.objects.get(pk=rel.pk), "reproduce")
    assert done.status == S.PASSED and "bit-exact" in done.summary
    deps = done.evidence["provenance"]["resolvedDependencies"]
    assert {"uri": "assay:blob", "name": "imatrix", "digest": {"sha256": recipe.imatrix[7:]}} in deps
    assert any(d.get("name") == "llama-quantize" for d in deps)
    assert str(tmp_path) not in json.dumps(done.evidence)


def _sourced_imatrix_release(user, signer, tmp_path, *, claimed_chunks: int):
    """A quant whose matrix was computed with `assay imatrix` (4 chunks) from a calibration text,
    its recipe claiming `claimed_chunks`; base, matrix and text uploaded."""
    from assay.core.digest import digest_file
    from assay.core.recipe import ImatrixSource
    from assay.toolchain.imatrix import compute_imatrix
    from assay.toolchain.quantize import recipe_for_this_machine
    from assay.toolchain.quantize import quantize
    from tests.support.derive import cached_f16_base
    from tests.support.imatrix import calibration_file

    base = cached_f16_base()
    text = calibration_file(tmp_path)
    matrix = compute_imatrix(base, text, tmp_path / "m.imatrix.gguf", ctx=128, chunks=4)
    source = ImatrixSource(digest_file(text), text.name, 128, claimed_chunks).to_dict()
    recipe = recipe_for_this_machine("Q4_K_M", nthread=2, imatrix=digest_file(matrix), imatrix_name=matrix.name, imatrix_source=source)
    quantize(base, tmp_path / "q.gguf", recipe, imatrix_path=matrix)
    base_digest = stored_file(base, user)
    publish(user, signer, base_digest, model="base", quantization="F16")
    stored_file(matrix, user)
    stored_file(text, user)
    rel = publish(user, signer, stored_file(tmp_path / "q.gguf", user), model="sourced", quantization="Q4_K_M",
                  base={"name": "alice/base:q4", "digest": base_digest}, recipe=recipe.to_dict())
    base_decided(base_digest)
    return rel


def test_an_imatrix_computed_from_a_declared_text_is_computed_again(alice, tmp_path):  # noqa: F811
    user, signer = alice
    rel = _sourced_imatrix_release(user, signer, tmp_path, claimed_chunks=4)
    assert sorted(i.role for i in rel.inputs.all()) == ["calibration", "imatrix"]
    pipeline.execute_step(rel.pk, "reproduce")
    done = step(Release.objects.get(pk=rel.pk), "reproduce")
    assert done.status == S.PASSED and "computed again from the calibration text" in done.summary, done.summary
    assert done.evidence["imatrix_recomputed"]["digest"] == rel.recipe["imatrix"]
    assert any(d.get("name") == "calibration" for d in done.evidence["provenance"]["resolvedDependencies"])


def test_an_imatrix_that_is_not_what_its_text_gives_fails_reproduction(alice, tmp_path):  # noqa: F811
    user, signer = alice
    rel = _sourced_imatrix_release(user, signer, tmp_path, claimed_chunks=2)  # made with 4 chunks, claims 2
    pipeline.execute_step(rel.pk, "reproduce")
    done = step(Release.objects.get(pk=rel.pk), "reproduce")
    assert done.status == S.FAILED and "is not what llama-imatrix computes" in done.summary


def test_a_recipe_naming_a_matrix_that_was_not_uploaded_is_refused(alice, base_and_quant, tmp_path):  # noqa: F811
    from assay.toolchain.quantize import recipe_for_this_machine
    from registry.errors import RegistryError
    from tests.support import factories

    user, signer = alice
    _, base_digest = base_and_quant
    recipe = recipe_for_this_machine("Q8_0", imatrix="sha256:" + "ab" * 32, imatrix_name="m.imatrix").to_dict()
    (tmp_path / "q.gguf").write_bytes(b"another quant" * 50)
    (tmp_path / "m.imatrix").write_bytes(b"bob's matrix" * 50)
    quant = stored_file(tmp_path / "q.gguf", user)
    with pytest.raises(RegistryError) as exc:
        publish(user, signer, quant, model="imatrix", quantization="Q8_0", base={"name": "alice/base:q4", "digest": base_digest},
                recipe=recipe)
    assert exc.value.status == 400 and "importance matrix sha256:abab" in exc.value.message and "was not uploaded" in exc.value.message
    # bytes someone else uploaded are not this publisher's to name
    bob = factories.user("bob")
    theirs = stored_file(tmp_path / "m.imatrix", bob)
    recipe["imatrix"] = theirs
    with pytest.raises(RegistryError, match="was not uploaded by alice"):
        publish(user, signer, quant, model="imatrix", quantization="Q8_0", base={"name": "alice/base:q4", "digest": base_digest},
                recipe=recipe)
    assert not Release.objects.filter(model__name="imatrix").exists()


def test_quant_of_a_verified_original_is_reproduced_with_its_chain(base_and_quant):
    """The level of a rebuilt quant rests on its base's own signed level."""
    rel, base_digest = base_and_quant
    base = Release.objects.get(blob_id=base_digest)
    posted(base, "static", S.PASSED, "ok", {"summary": {"tensor_types": {"F16": 30, "F32": 12}}})
    posted(base, "reproduce", S.SKIPPED, "original")
    posted(base, "probes", S.PASSED)
    pipeline.attest(base.pk)
    base = Release.objects.get(pk=base.pk)
    assert base.status == Release.VERIFIED and verdict(base).level.name == "original"
    posted(rel, "static", S.PASSED, "ok", {"summary": {"tensor_types": {"Q8_0": 30, "F32": 12}}})
    posted(rel, "reproduce", S.PASSED, "bit-exact", {"expected_digest": rel.blob_id, "provenance": {
        "resolvedDependencies": [{"uri": "assay:blob", "digest": {"sha256": base_digest[7:]}}]}})
    posted(rel, "probes", S.PASSED)
    pipeline.attest(rel.pk)
    level = verdict(Release.objects.get(pk=rel.pk)).level
    assert level.name == "reproduced"
    assert [link.to_dict() for link in level.chain] == [{"reference": "alice/base:q4", "version": 1, "digest": base_digest, "level": "original"}]


def test_quantized_file_without_a_base_is_unreproduced_whatever_it_is_labelled(alice, tmp_path):  # noqa: F811
    """The publisher says F16; the tensors say Q4_0: the file's own types decide."""
    user, signer = alice
    path = tmp_path / "labelled.gguf"
    path.write_bytes(b"GGUF pretend" * 50)
    rel = publish(user, signer, stored_file(path, user), model="labelled", quantization="F16")
    posted(rel, "static", S.PASSED, "ok", {"summary": {"tensor_types": {"Q4_0": 30, "F32": 12}}})
    posted(rel, "reproduce", S.SKIPPED, "original")
    posted(rel, "probes", S.PASSED)
    pipeline.attest(rel.pk)
    assert verdict(Release.objects.get(pk=rel.pk)).level.name == "unreproduced"
