"""Client-side checks of a release bundle: the client must not trust the server's word."""
from __future__ import annotations

import base64
import json

import pytest

from assay import bundle_verify, dsse, statements
from assay.errors import VerificationError
from tests.support.bundles import World, _from_seed, tampered

DATA = b"GGUF pretend model bytes"
REF = "demo/m:q4"


@pytest.fixture
def world():
    return World()


def verify(world, bundle, policy, ref=REF):
    return bundle_verify.verify_bundle(bundle, ref, policy, world.consistency)


def test_honest_bundle_verifies_and_pins(world, tmp_path):
    policy = world.policy(tmp_path)
    verified = verify(world, world.release(DATA), policy)
    assert verified.digest.startswith("sha256:") and verified.version == 1
    bundle_verify.record_success(policy, verified)
    assert policy.highest_version(REF) == 1


def test_revoked_publisher_key_is_refused(world, tmp_path):
    bundle = world.release(DATA)
    bundle["publisher_key"].update(revoked=True, revoked_at="2026-11-20T00:00:00Z", revoke_reason="laptop stolen")
    with pytest.raises(VerificationError, match="revoked.*laptop stolen"):
        verify(world, bundle, world.policy(tmp_path))


def test_statement_signed_by_another_key_than_the_bundle_names(world, tmp_path):
    bundle = world.release(DATA, publisher=_from_seed(9))
    other = world.release(DATA)  # names the real publisher's key
    bundle["publisher_key"] = other["publisher_key"]
    with pytest.raises(VerificationError, match="not signed by a trusted key"):
        verify(world, bundle, world.policy(tmp_path))


def test_verdict_for_another_digest(world, tmp_path):
    bundle = world.release(DATA, verdict_digest="sha256:" + "ab" * 32)
    with pytest.raises(VerificationError, match="the verdict is for sha256:abab"):
        verify(world, bundle, world.policy(tmp_path))


def test_verdict_signed_by_an_unpinned_key(world, tmp_path):
    bundle = world.release(DATA, verifier=_from_seed(7))
    with pytest.raises(VerificationError, match="not signed by a trusted key"):
        verify(world, bundle, world.policy(tmp_path))


def test_failed_verdict_is_refused(world, tmp_path):
    checks = [{"name": "static", "result": "passed", "summary": "", "evidence": {}},
              {"name": "probes", "result": "failed", "summary": "trigger changes output", "evidence": {}}]
    with pytest.raises(VerificationError, match="FAILED.*trigger changes output"):
        verify(world, world.release(DATA, passed=False, checks=checks), world.policy(tmp_path))


def test_swapped_subject_name(world, tmp_path):
    bundle = world.release(DATA)
    bundle["file"]["name"] = "other.gguf"
    with pytest.raises(VerificationError, match="names file 'm.gguf'"):
        verify(world, bundle, world.policy(tmp_path))


def test_bytes_swapped_for_other_bytes(world, tmp_path):
    bundle = world.release(DATA)
    bundle["file"]["digest"] = "sha256:" + "cd" * 32
    with pytest.raises(VerificationError, match="the registry serves sha256:cdcd"):
        verify(world, bundle, world.policy(tmp_path))


def test_release_served_under_another_reference(world, tmp_path):
    bundle = world.release(DATA, reference="demo/other:q4")
    with pytest.raises(VerificationError, match="is for demo/other:q4, not demo/m:q4"):
        verify(world, bundle, world.policy(tmp_path))


def test_older_version_after_newer_is_a_rollback(world, tmp_path):
    policy = world.policy(tmp_path)
    bundle_verify.record_success(policy, verify(world, world.release(DATA, version=2), policy))
    with pytest.raises(VerificationError, match="rollback"):
        verify(world, world.release(DATA, version=1), policy)


def test_tofu_pins_the_first_publisher_key(world, tmp_path):
    policy = world.policy(tmp_path)
    bundle_verify.record_success(policy, verify(world, world.release(DATA), policy))
    stranger = world.release(DATA, version=2, publisher=_from_seed(11))
    with pytest.raises(VerificationError):
        verify(world, stranger, policy)


def test_payload_edited_after_signing(world, tmp_path):
    bundle = world.release(DATA)
    stmt = json.loads(base64.b64decode(bundle["release_envelope"]["payload"]))
    stmt["predicate"]["version"] = 5
    bundle["release_envelope"]["payload"] = base64.b64encode(json.dumps(stmt).encode()).decode()
    with pytest.raises(VerificationError, match="does not verify"):
        verify(world, bundle, world.policy(tmp_path))


def test_release_missing_from_the_log(world, tmp_path):
    bundle = world.release(DATA)
    bundle["log"]["entries"]["release"]["proof"][0] = "00" * 32
    with pytest.raises(VerificationError):
        verify(world, bundle, world.policy(tmp_path))


def test_checkpoint_signed_by_another_key(world, tmp_path):
    bundle = world.release(DATA)
    bundle["log"]["checkpoint"] = world.checkpoint(key=_from_seed(5))
    with pytest.raises(VerificationError):
        verify(world, bundle, world.policy(tmp_path))


def test_required_reproduce_check_for_a_quant(world, tmp_path):
    policy = world.policy(tmp_path)
    assert policy.required_checks_satisfied([{"name": "static", "result": "passed"}, {"name": "probes", "result": "passed"}], has_base=True)[0] is False
