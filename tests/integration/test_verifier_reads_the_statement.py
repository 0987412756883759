"""The verifier decides a job from the publisher's signed release statement, not from the
registry's description of it: a job whose file, parts, recipe or inputs differ from the statement
is verified not at all. And the BLAKE3 digest a statement declares is checked against the bytes
before the verifier repeats it in its verdict (which lets clients check downloads by it)."""
from __future__ import annotations

import pytest

from assay.core.digest import digest_file, file_digests
from registry.models import Blob, Release, ReleaseInput, VerificationStep
from tests.support import pipeline
from tests.support.factories import registry_dirs  # noqa: F401  (fixture)
from tests.support.pipeline import alice, publish, run_all, step, stored_file, verdict  # noqa: F401  (fixtures)
from verifier import pipeline as verifier_pipeline

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("registry_dirs")]
S = VerificationStep


@pytest.fixture
def tiny(tmp_path):
    from tests.support.tiny_gguf import write_tiny_llama

    return write_tiny_llama(tmp_path / "t.gguf")


def test_a_declared_blake3_is_checked_and_repeated_in_the_verdict(alice, tiny):  # noqa: F811
    user, signer = alice
    sha256, blake3 = file_digests(tiny)
    rel = run_all(publish(user, signer, stored_file(tiny, user), model="tiny", quantization="F16", blake3=blake3))
    assert rel.status == Release.VERIFIED, rel.status_reason
    assert step(rel, "static").evidence.get("blake3_checked") is True
    assert verdict(rel).subject_blake3 == blake3 and verdict(rel).subject_digest == sha256


def test_a_release_without_blake3_gets_a_verdict_without_it(alice, tiny):  # noqa: F811
    user, signer = alice
    rel = run_all(publish(user, signer, stored_file(tiny, user), model="tiny", quantization="F16"))
    assert rel.status == Release.VERIFIED, rel.status_reason
    assert verdict(rel).subject_blake3 is None


def test_a_blake3_that_is_not_the_files_fails_the_static_check(alice, tiny):  # noqa: F811
    user, signer = alice
    rel = run_all(publish(user, signer, stored_file(tiny, user), model="tiny", quantization="F16", blake3="blake3:" + "ab" * 32))
    assert step(rel, "static").status == S.FAILED
    assert "BLAKE3 digest the release statement declares does not match the bytes of model.gguf" in step(rel, "static").summary
    assert rel.status == Release.REJECTED
    assert verdict(rel).subject_blake3 is None


def _tamper_file_name(rel):
    Release.objects.filter(pk=rel.pk).update(file_name="other.gguf")


def _tamper_quantization(rel):
    Release.objects.filter(pk=rel.pk).update(quantization="Q8_0")


def _tamper_recipe(rel):
    Release.objects.filter(pk=rel.pk).update(recipe={"tool": "llama.cpp", "ftype": "Q4_1"})


def _tamper_add_a_part(rel):
    ReleaseInput.objects.create(release=rel, role="part", name="t-00002-of-00002.gguf", blob=Blob.objects.get(digest=rel.blob_id))


def _tamper_add_an_input(rel):
    ReleaseInput.objects.create(release=rel, role="imatrix", name="m.imatrix", blob=Blob.objects.get(digest=rel.blob_id))


def _tamper_statement_digest(rel):
    Release.objects.filter(pk=rel.pk).update(statement_digest="sha256:" + "0" * 64)


@pytest.mark.parametrize("tamper, named", [
    (_tamper_file_name, "file"), (_tamper_quantization, "quantization"), (_tamper_recipe, "recipe"),
    (_tamper_add_a_part, "parts"), (_tamper_add_an_input, "inputs the recipe does not name"),
    (_tamper_statement_digest, "is not the one with digest"),
])
def test_a_job_the_registry_describes_otherwise_is_not_verified(alice, tiny, tamper, named):  # noqa: F811
    user, signer = alice
    rel = publish(user, signer, stored_file(tiny, user), model="tiny", quantization="F16")
    tamper(rel)
    client = pipeline.verifier_client()
    assert verifier_pipeline.verify_release(client, rel.pk, work_dir=verifier_pipeline._jobs_dir()) == "error"
    rel.refresh_from_db()
    assert rel.status == Release.ERROR and named in rel.status_reason
    assert not VerificationStep.objects.filter(release=rel, envelope__isnull=False).exists()  # no step signed
    assert rel.verdict_envelope is None
    assert digest_file(tiny) == rel.blob_id


@pytest.fixture
def verified_base_and_quant(alice, tiny, tmp_path):  # noqa: F811
    """A verified original (the base) and a quant that names it, not yet verified."""
    from assay.toolchain.quantize import recipe_for_this_machine

    user, signer = alice
    base = run_all(publish(user, signer, stored_file(tiny, user), model="base", quantization="F16"))
    assert base.status == Release.VERIFIED, base.status_reason
    quant_file = tmp_path / "quant.gguf"
    quant_file.write_bytes(b"GGUF quantized bytes" * 100)
    quant = publish(user, signer, stored_file(quant_file, user), model="quant", quantization="Q8_0",
                    base={"name": base.reference, "digest": base.blob_id}, recipe=recipe_for_this_machine("Q8_0").to_dict())
    return base, quant


def _tamper_base_add_a_part(base, quant):
    """The registry says the base is split, with a second part of its choosing."""
    ReleaseInput.objects.create(release=base, role="part", name="t-00002-of-00002.gguf", blob=Blob.objects.get(digest=quant.blob_id))


def _tamper_base_statement(base, quant):
    """The registry hands over another signed statement as the base's (its verdict signs the real one)."""
    Release.objects.filter(pk=base.pk).update(envelope=quant.envelope)


def _tamper_base_file_name(base, quant):
    Release.objects.filter(pk=base.pk).update(file_name="other.gguf")


@pytest.mark.parametrize("tamper, named", [
    (_tamper_base_add_a_part, "the base release's parts"),
    (_tamper_base_statement, "the base release's statement (not the one its verdict signs)"),
    (_tamper_base_file_name, "the base release's file"),
])
def test_a_base_the_registry_describes_otherwise_is_not_built_on(verified_base_and_quant, tamper, named):
    """The base's files come from the base's own signed statement, bound by the verdict signed for
    it, not from the registry's list: a split base's later parts cannot be swapped or added."""
    base, quant = verified_base_and_quant
    tamper(base, quant)
    client = pipeline.verifier_client()
    assert verifier_pipeline.verify_release(client, quant.pk, work_dir=verifier_pipeline._jobs_dir()) == "error"
    quant.refresh_from_db()
    assert quant.status == Release.ERROR and named in quant.status_reason, quant.status_reason
    assert not VerificationStep.objects.filter(release=quant, envelope__isnull=False).exists()
    assert quant.verdict_envelope is None


def test_an_untampered_base_is_accepted_by_the_job_check(verified_base_and_quant):
    """The same job, untouched, passes the statement check (it fails later, on its own merits)."""
    base, quant = verified_base_and_quant
    _, job = pipeline.claim(quant.pk)
    assert job.base is not None and job.base["digest"] == base.blob_id and job.statement is not None
