"""Client-side checks of a release bundle: the client must not trust the server's word."""
from __future__ import annotations

import base64
import json

import pytest

from assay.client import bundle_verify
from assay.core import keys
from assay.core.errors import VerificationError
from tests.support.bundles import World, _from_seed

DATA = b"GGUF pretend model bytes"
REF = "demo/m:q4"


@pytest.fixture
def world():
    return World()


def verify(world, bundle, policy, ref=REF):
    return bundle_verify.verify_bundle(bundle, ref, policy, world)


def test_honest_bundle_verifies_and_pins(world, tmp_path):
    policy = world.policy(tmp_path)
    verified = verify(world, world.release(DATA), policy)
    assert verified.digest.startswith("sha256:") and verified.version == 1
    bundle_verify.record_success(policy, verified)
    assert policy.highest_version(REF) == 1


def test_revoked_flag_from_the_registry_is_refused(world, tmp_path):
    """The registry's unsigned flag can only add a refusal, never remove one."""
    bundle = world.release(DATA)
    bundle["publisher_key"].update(revoked=True, revoked_at="2026-11-20T00:00:00Z", revoke_reason="laptop stolen")
    with pytest.raises(VerificationError, match="the registry says publisher key .* was revoked .*laptop stolen"):
        verify(world, bundle, world.policy(tmp_path))


def test_statement_signed_by_another_key_than_the_bundle_names(world, tmp_path):
    world.register(world.publisher)
    forged_release = world.release(DATA, publisher=_from_seed(9))["release_envelope"]
    bundle = world.release(DATA)  # names the real publisher's registration
    bundle["release_envelope"] = forged_release
    bundle["log"]["entries"]["release"] = world.proof(3)
    with pytest.raises(VerificationError, match="the release is signed by key sha256:.*, but the bundle's key registration is for key"):
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


def test_key_of_an_account_without_a_role_in_the_namespace_is_refused(world, tmp_path):
    policy = world.policy(tmp_path)
    bundle_verify.record_success(policy, verify(world, world.release(DATA), policy))
    stranger = world.release(DATA, version=2, publisher=_from_seed(11), owner="mallory")
    with pytest.raises(VerificationError, match="may not sign releases in namespace 'demo' .*mallory has no publishing role"):
        verify(world, stranger, policy)


def test_organization_with_two_publishers_needs_no_prompt(world, tmp_path):
    """Keys of two members learned from the log: the second publisher's release verifies after
    the first one's, on the same client (no trust-on-first-use of one key per namespace)."""
    world.role("demo", "bob", "publisher")
    policy = world.policy(tmp_path)
    bundle_verify.record_success(policy, verify(world, world.release(DATA), policy))
    bob = world.release(DATA, version=2, publisher=_from_seed(11), owner="bob")
    bundle_verify.record_success(policy, verify(world, bob, policy))
    assert set(policy.key_state.publishers("demo").values()) == {"demo", "bob"}


def test_removed_member_signs_nothing_new(world, tmp_path):
    world.role("demo", "bob", "publisher")
    before = world.release(DATA, version=1, publisher=_from_seed(11), owner="bob")
    removed_at = world.role("demo", "bob", "none")
    after = world.release(DATA, version=2, publisher=_from_seed(11), owner="bob")
    policy = world.policy(tmp_path)
    with pytest.raises(VerificationError, match=f"its owner bob was removed from it in log entry {removed_at}"):
        verify(world, after, policy)
    assert verify(world, before, policy).version == 1  # what bob published while a member stays valid


def test_pinned_namespace_takes_only_listed_member_keys(world, tmp_path):
    world.role("demo", "bob", "publisher")
    policy = world.policy(tmp_path)
    policy.allow_publisher("demo", keys.key_id(world.publisher.public_key()))
    verify(world, world.release(DATA), policy)
    bob = world.release(DATA, version=2, publisher=_from_seed(11), owner="bob")
    with pytest.raises(VerificationError, match="not among the keys this client allows for namespace 'demo'.*assay policy allow demo sha256:"):
        verify(world, bob, policy)


def test_payload_edited_after_signing(world, tmp_path):
    bundle = world.release(DATA)
    stmt = json.loads(base64.b64decode(bundle["release_envelope"]["payload"]))
    stmt["predicate"]["version"] = 5
    bundle["release_envelope"]["payload"] = base64.b64encode(json.dumps(stmt).encode()).decode()
    with pytest.raises(VerificationError, match="release envelope is not in the log"):
        verify(world, bundle, world.policy(tmp_path))
    edited = world.append(bundle["release_envelope"])  # a registry that logs the edited envelope
    bundle = world.bundle(edited, 3, world.publisher, reference=REF, version=1, name="m.gguf", data=DATA)
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


def test_quant_that_claims_reproduced_without_provenance_is_refused(world, tmp_path):
    """The default policy needs no separate reproduce check: the level `reproduced` is the claim,
    and the client then demands the verifier's logged provenance for it."""
    policy = world.policy(tmp_path)
    checks = [{"name": "static", "result": "passed"}, {"name": "probes", "result": "passed"}]
    assert policy.required_checks_satisfied(checks, has_base=True)[0] is True
    bundle = world.release(DATA, base={"name": "demo/m:f16", "digest": "sha256:" + "b" * 64}, provenance={"omit": True})
    with pytest.raises(VerificationError, match="has no reproduction provenance, which its level 'reproduced'"):
        verify(world, bundle, policy)


# ---------------------------------------------------------------- the publisher key, from the log

KID = keys.key_id(_from_seed(1).public_key())


def reserve(world, bundle, **kw):
    """The registry's bundle for the same release again, against the log as it is now."""
    e = bundle["log"]["entries"]
    return world.bundle(e["release"]["index"], e["verdict"]["index"], world.publisher, reference=REF, version=1,
                        name="m.gguf", data=DATA, **kw)


def test_bundle_of_the_old_format_is_refused(world, tmp_path):
    bundle = world.release(DATA)
    bundle["bundle_version"] = 1
    with pytest.raises(VerificationError, match="release bundle of format 1; this client reads format 2"):
        verify(world, bundle, world.policy(tmp_path))


def test_bundle_without_the_key_registration_is_refused(world, tmp_path):
    bundle = world.release(DATA)
    bundle["key_registration_envelope"] = None
    with pytest.raises(VerificationError, match="sent no publisher key registration envelope"):
        verify(world, bundle, world.policy(tmp_path))
    bundle = world.release(DATA, version=2)
    del bundle["log"]["entries"]["key_registration"]
    with pytest.raises(VerificationError, match="no log inclusion proof for the publisher key registration"):
        verify(world, bundle, world.policy(tmp_path))


def test_key_registration_not_in_the_log(world, tmp_path):
    """A valid, self-signed registration that the registry never logged."""
    bundle = world.release(DATA)
    bundle["key_registration_envelope"] = world.key_event("register", world.publisher, owner="demo2")
    with pytest.raises(VerificationError, match="publisher key registration envelope is not in the log"):
        verify(world, bundle, world.policy(tmp_path))


def test_key_registration_without_proof_of_possession(world, tmp_path):
    """The registry logs a 'registration' of the publisher's key that it signed itself."""
    world.registered[KID] = world.append(world.key_event("register", world.publisher, signer=_from_seed(8)))
    with pytest.raises(VerificationError, match="does not verify: envelope is not signed by a trusted key"):
        verify(world, world.release(DATA), world.policy(tmp_path))


def test_key_registration_that_is_a_revocation(world, tmp_path):
    world.registered[KID] = world.append(world.key_event("revoke", world.publisher))
    with pytest.raises(VerificationError, match="revokes key .*, which has no earlier registration in the log"):
        verify(world, world.release(DATA), world.policy(tmp_path))


def test_key_registered_after_the_release(world, tmp_path):
    bundle = world.release(DATA)
    world.registered[KID] = world.append(world.key_event("register", world.publisher))  # logged again, later
    with pytest.raises(VerificationError, match="registered in log entry 4, after the release it signed \\(entry 2\\)"):
        verify(world, reserve(world, bundle), world.policy(tmp_path))


def test_registry_names_another_owner(world, tmp_path):
    bundle = world.release(DATA)
    bundle["publisher_key"]["owner"] = "mallory"
    with pytest.raises(VerificationError, match="belongs to 'mallory', but its signed registration names 'demo'"):
        verify(world, bundle, world.policy(tmp_path))


def test_logged_revocation_is_refused_and_remembered(world, tmp_path):
    policy = world.policy(tmp_path)
    bundle = world.release(DATA)
    verify(world, bundle, policy)
    world.revoke(world.publisher, "laptop stolen")
    with pytest.raises(VerificationError, match=r"was revoked on 2026-11-23T00:00:00Z \(log entry 4\): laptop stolen"):
        verify(world, reserve(world, bundle), policy)
    assert world.policy(tmp_path).known_revocation(KID) is None  # verifying alone writes nothing
    with pytest.raises(VerificationError, match="was revoked"), policy.remembering():  # as pull, verify and inspect do
        verify(world, reserve(world, bundle), policy)
    # The registry now hides the revocation (no envelope, flag cleared); this client saw it.
    again = world.policy(tmp_path)
    assert again.known_revocation(KID)["index"] == 4
    with pytest.raises(VerificationError, match="the registry is hiding it"):
        verify(world, reserve(world, bundle, hide_revocation=True), again)


def test_revocation_hidden_from_the_bundle_but_found_in_the_log(world, tmp_path):
    """`assay log verify` replayed the log and recorded the revocation; the bundle omits it."""
    bundle = world.release(DATA)
    index = world.revoke(world.publisher, "key leaked")
    policy = world.policy(tmp_path)
    policy.record_revocation(KID, index, "2026-11-23T00:00:00Z", "key leaked")
    policy.save()
    hidden = reserve(world, bundle, hide_revocation=True)
    assert hidden["key_revocation_envelope"] is None and not hidden["publisher_key"]["revoked"]
    with pytest.raises(VerificationError, match=rf"revoked in log entry {index} \(key leaked\).*the registry is hiding it"):
        verify(world, hidden, world.policy(tmp_path))


def test_revocation_hidden_from_the_bundle_is_found_by_a_fresh_client(world, tmp_path):
    """No `assay log verify` ever ran: the pull's own catch-up finds the logged revocation."""
    bundle = world.release(DATA)
    index = world.revoke(world.publisher, "key leaked")
    hidden = reserve(world, bundle, hide_revocation=True)
    policy = world.policy(tmp_path / "fresh")
    with pytest.raises(VerificationError, match=rf"revoked in log entry {index} \(key leaked\).*the registry is hiding it"), \
            policy.remembering():
        verify(world, hidden, policy)
    assert policy.known_revocation(KID)["index"] == index
    assert world.policy(tmp_path / "fresh").known_revocation(KID)["index"] == index  # saved, though the pull failed


def test_catch_up_refuses_an_answer_that_leaves_out_a_listed_key_event(world, tmp_path):
    bundle = world.release(DATA)
    world.revoke(world.publisher, "key leaked")
    honest = world.key_events

    def dropping(start, end):
        answer = honest(start, end)
        answer["entries"] = [e for e in answer["entries"] if e["index"] != 1]
        return answer

    world.key_events = dropping
    with pytest.raises(VerificationError, match="did not serve exactly the key events its signed index lists"):
        verify(world, reserve(world, bundle, hide_revocation=True), world.policy(tmp_path))


def test_catch_up_refuses_an_index_for_another_range(world, tmp_path):
    bundle = world.release(DATA)
    honest = world.key_events
    world.key_events = lambda start, end: honest(start, end - 1)
    with pytest.raises(VerificationError, match="key-event index covers .* not \\[0, 4\\)"):
        verify(world, bundle, world.policy(tmp_path))


def test_revocation_not_signed_by_the_log_key(world, tmp_path):
    bundle = world.release(DATA)
    world.revoked[KID] = (world.append(world.key_event("revoke", world.publisher, reason="x", signer=_from_seed(8))), "x")
    with pytest.raises(VerificationError, match="revocation in the bundle does not verify|key event 4 of the log does not verify: envelope is not signed by a trusted key"):
        verify(world, reserve(world, bundle), world.policy(tmp_path))


def test_revocation_of_another_key(world, tmp_path):
    bundle = world.release(DATA)
    world.register(_from_seed(6))
    world.revoked[KID] = (world.revoke(_from_seed(6)), "other")
    with pytest.raises(VerificationError, match="revocation is for key sha256:.*, not for the publisher key"):
        verify(world, reserve(world, bundle), world.policy(tmp_path))


def test_unlogged_provenance_is_refused(world, tmp_path):
    bundle = world.release(DATA)
    bundle["provenance_envelope"] = bundle["verdict_envelope"]
    with pytest.raises(VerificationError, match="no log inclusion proof for the provenance envelope"):
        verify(world, bundle, world.policy(tmp_path))


def test_revocations_survive_a_concurrent_save(world, tmp_path):
    a, b = world.policy(tmp_path), world.policy(tmp_path)
    a.record_revocation(KID, 7, "t", "r")
    a.save()
    b.save()  # another process saving its state keeps what `a` learned
    assert world.policy(tmp_path).known_revocation(KID) == {"index": 7, "time": "t", "reason": "r"}
