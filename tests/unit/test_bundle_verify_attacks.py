"""Attacks on the transparency log, seen from the client: each must be refused with a reason.

The registry is the in-memory World of tests/support/bundles.py; forged checkpoints are signed
with assay.core.checkpoint, by the real log key (a dishonest registry) or by another key.
"""
from __future__ import annotations

import pytest

from assay.client import bundle_verify
from assay.core import checkpoint, keys, merkle
from assay.core.canonical import canonical_json
from assay.core.errors import VerificationError
from assay.client.logaudit import LogAuditor
from tests.support.bundles import ORIGIN, World, _from_seed, tampered

DATA = b"GGUF pretend model bytes"
REF = "demo/m:q4"


@pytest.fixture
def world():
    return World()


def verify(world, bundle, policy, fetch=None):
    return bundle_verify.verify_bundle(bundle, REF, policy, fetch or world)


def pinned_at(world, tmp_path, size=None):
    """A client that has seen (and pinned) the world's checkpoint at `size`."""
    policy = world.policy(tmp_path)
    text = world.checkpoint(size)
    policy.record_checkpoint(text, checkpoint.verify_checkpoint(text, policy.log_vkey()).size)
    policy.save()
    return policy


def signed(world, leaves, key=None, origin=ORIGIN):
    return checkpoint.sign_checkpoint(origin, len(leaves), merkle.root_from_leaves(leaves), ORIGIN, key or world.log_key)


def consistency_check(world, policy, new_text, fetch=None, allow_older=True):
    new = checkpoint.verify_checkpoint(new_text, policy.log_vkey())
    bundle_verify.verify_consistency(policy.newest_checkpoint(), new, fetch or world.consistency, policy, allow_older=allow_older)


def grow(world, n):
    for i in range(n):
        world.append({"filler": i})


# ---------------------------------------------------------------- tampered entries

def test_tampered_envelope_is_not_in_the_log(world, tmp_path):
    """The bundle's envelope differs from the logged one: its inclusion proof does not verify."""
    bundle = world.release(DATA)
    bad = tampered(bundle)
    bad["release_envelope"]["signatures"].append({"keyid": "extra", "sig": "AAAA"})
    with pytest.raises(VerificationError, match="release envelope is not in the log.*inclusion proof for leaf 2 does not lead to the root"):
        bundle_verify.verify_log(bad, world.policy(tmp_path))


def test_tampered_leaf_in_the_log(world):
    """The registry changes an entry's bytes after signing a checkpoint over the honest log."""
    grow(world, 7)
    vkey = checkpoint.verifier_key_string(ORIGIN, world.log_key.public_key())
    honest = checkpoint.verify_checkpoint(world.checkpoint(), vkey)
    world.leaves[3] = canonical_json({"filler": 333})
    proof = merkle.reference_inclusion_proof(3, world.leaves)
    with pytest.raises(VerificationError, match="does not lead to the root"):
        merkle.verify_inclusion(merkle.leaf_hash(world.leaves[3]), 3, honest.size, proof, honest.root)
    assert merkle.root_from_leaves(world.leaves) != honest.root


def test_wrong_index_for_an_entry(world, tmp_path):
    bundle = world.release(DATA)
    bad = tampered(bundle)
    bad["log"]["entries"]["release"]["index"] = 0  # the key registration's index
    with pytest.raises(VerificationError, match="does not lead to the root"):
        bundle_verify.verify_log(bad, world.policy(tmp_path))


def test_malformed_inclusion_proof(world, tmp_path):
    bundle = world.release(DATA)
    for proof in (["zz"], ["00" * 31], [], ["00" * 32] * 5):
        bad = tampered(bundle)
        bad["log"]["entries"]["release"]["proof"] = proof
        with pytest.raises(VerificationError):
            bundle_verify.verify_log(bad, world.policy(tmp_path))


# ---------------------------------------------------------------- truncation and rollback

def test_truncated_and_rewritten_log_is_refused(world, tmp_path):
    """The registry drops entries 6..9 and serves a checkpoint of a log that differs at 5."""
    grow(world, 10)
    policy = pinned_at(world, tmp_path, 10)
    del world.leaves[5:]
    world.append({"filler": "rewritten"})
    with pytest.raises(VerificationError, match=r"size 6 is not a prefix of the log of size 10 .*rollback or fork"):
        consistency_check(world, policy, world.checkpoint())


def test_a_monitor_refuses_any_shrinking(world, tmp_path):
    """The registry's current checkpoint (what `assay log watch` asks for) must never shrink."""
    grow(world, 10)
    policy = pinned_at(world, tmp_path, 10)
    with pytest.raises(VerificationError, match=r"shrank from 10 to 6 entries.*rollback"):
        consistency_check(world, policy, world.checkpoint(6), allow_older=False)
    with pytest.raises(VerificationError, match="shrank from 10 to 0"):
        consistency_check(world, policy, signed(world, []), allow_older=False)


def test_older_checkpoint_on_the_same_path_is_accepted(world, tmp_path):
    """An old, genuinely signed checkpoint (e.g. the newest one witnesses cosigned) is a prefix of
    the newer one the client saw: accepted, and the client keeps the newer one."""
    grow(world, 3)
    old_text = world.checkpoint()
    grow(world, 5)
    policy = pinned_at(world, tmp_path)
    consistency_check(world, policy, old_text)
    policy.record_checkpoint(old_text, 3)
    assert policy.newest_checkpoint_size() == 8


def test_older_checkpoint_with_a_wrong_proof_is_refused(world, tmp_path):
    grow(world, 3)
    old_text = world.checkpoint()
    grow(world, 5)
    policy = pinned_at(world, tmp_path)
    with pytest.raises(VerificationError, match=r"size 3 is not a prefix of the log of size 8"):
        consistency_check(world, policy, old_text, lambda o, n: merkle.reference_consistency_proof(o, [b"x"] * n))


def test_older_bundle_of_an_older_version_is_a_rollback(world, tmp_path):
    """A bundle whose proofs are against a smaller tree is fine as a log view, but the release
    it serves must not be older than one the client took."""
    old = world.release(DATA, version=1)
    policy = world.policy(tmp_path)
    bundle_verify.record_success(policy, verify(world, world.release(DATA, version=2), policy))
    with pytest.raises(VerificationError, match=r"rollback: demo/m:q4 is at version 2 here, the registry now serves version 1"):
        verify(world, old, policy)


def test_empty_log_after_a_non_empty_one_is_only_a_prefix(world, tmp_path):
    grow(world, 2)
    policy = pinned_at(world, tmp_path)
    consistency_check(world, policy, signed(world, []))
    assert policy.newest_checkpoint_size() == 2


# ---------------------------------------------------------------- forks

def test_bundle_from_a_forked_log_is_refused(world, tmp_path):
    """The client pulled once; the registry then rewrote an old entry and serves a new release
    from the rewritten log, with a checkpoint validly signed by its log key."""
    policy = world.policy(tmp_path)
    bundle_verify.record_success(policy, verify(world, world.release(DATA), policy))  # the client has seen size 3
    grow(world, 2)
    world.leaves[1] = canonical_json({"filler": "rewritten"})  # the release the client saw is gone
    forked = world.release(DATA, version=2)
    with pytest.raises(VerificationError, match="at size 8 is not an extension of the one seen at size 4: history was rewritten or forked"):
        verify(world, forked, policy)
    assert policy.highest_version(REF) == 1



def test_fork_at_the_same_size(world, tmp_path):
    """Same size, another root, validly signed by the log key: two histories."""
    grow(world, 5)
    policy = pinned_at(world, tmp_path)
    forked = list(world.leaves)
    forked[2] = canonical_json({"filler": "rewritten"})
    with pytest.raises(VerificationError, match="two different roots at size 5.*forked"):
        consistency_check(world, policy, signed(world, forked))


def test_fork_that_grows(world, tmp_path):
    """History rewritten and then extended: the registry cannot make a consistency proof."""
    grow(world, 6)
    policy = pinned_at(world, tmp_path)
    forked = list(world.leaves)
    forked[5] = canonical_json({"filler": "rewritten"})
    forked += [canonical_json({"more": i}) for i in range(4)]

    def forked_proof(old, new):
        return merkle.reference_consistency_proof(old, forked[:new])

    with pytest.raises(VerificationError, match="at size 10 is not an extension of the one seen at size 6"):
        consistency_check(world, policy, signed(world, forked), forked_proof)


@pytest.mark.parametrize("old", [1, 2, 3, 4, 7, 8])
def test_fork_cannot_reuse_the_honest_proof(world, tmp_path, old):
    """The honest log's proof does not fit a forked new root either."""
    grow(world, 12)
    policy = pinned_at(world, tmp_path, old)
    forked = list(world.leaves)
    forked[old] = canonical_json({"filler": "swapped"})  # leaves after `old` differ: still a fork of the new tree
    forked[0] = canonical_json({"filler": "rewritten first"})
    with pytest.raises(VerificationError, match="not an extension"):
        consistency_check(world, policy, signed(world, forked))


# ---------------------------------------------------------------- keys and signatures

def test_checkpoint_signed_by_another_key(world, tmp_path):
    grow(world, 3)
    policy = pinned_at(world, tmp_path)
    other = _from_seed(9)
    with pytest.raises(VerificationError, match="not signed by the pinned log key"):
        consistency_check(world, policy, signed(world, world.leaves + [b"x"], key=other))


def test_checkpoint_with_altered_body(world, tmp_path):
    grow(world, 3)
    policy = pinned_at(world, tmp_path)
    text = signed(world, world.leaves + [b"x"]).replace("\n4\n", "\n5\n", 1)
    with pytest.raises(VerificationError, match="does not verify: it was altered or forged"):
        consistency_check(world, policy, text)


def test_checkpoint_for_another_origin(world, tmp_path):
    grow(world, 3)
    policy = pinned_at(world, tmp_path)
    with pytest.raises(VerificationError, match="for log 'other.log'"):
        consistency_check(world, policy, signed(world, world.leaves, origin="other.log"))


# ---------------------------------------------------------------- bad consistency proofs

def _mutations(proof):
    yield "empty", []
    yield "truncated", proof[:-1]
    yield "extended", proof + [b"\x00" * 32]
    yield "flipped", [bytes([proof[0][0] ^ 1]) + proof[0][1:]] + proof[1:]
    yield "reversed", proof[::-1] if len(proof) > 1 else [b"\x11" * 32]
    yield "short hash", [proof[0][:31]] + proof[1:]


@pytest.mark.parametrize("old,new", [(1, 2), (3, 7), (4, 9), (5, 16), (6, 13), (8, 17)])
def test_consistency_proof_that_does_not_match(world, tmp_path, old, new):
    grow(world, new)
    policy = pinned_at(world, tmp_path, old)
    good = merkle.reference_consistency_proof(old, world.leaves)
    consistency_check(world, policy, world.checkpoint())  # the honest proof passes
    for name, proof in _mutations(good):
        if proof == good:
            continue
        with pytest.raises(VerificationError, match="not an extension"):
            consistency_check(world, policy, world.checkpoint(), lambda o, n, p=proof: p)


def test_honest_growth_is_accepted_and_pinned(world, tmp_path):
    policy = world.policy(tmp_path)
    verified = verify(world, world.release(DATA), policy)
    bundle_verify.record_success(policy, verified)
    grow(world, 9)
    verified = verify(world, world.release(DATA, version=2), policy)
    assert verified.checkpoint.size == 15
    bundle_verify.record_success(policy, verified)
    assert policy.newest_checkpoint_size() == 15


# ---------------------------------------------------------------- replaying the log (assay log verify)

def replay(world, tmp_path):
    auditor = LogAuditor(world.policy(tmp_path))
    return auditor, [auditor.check(i, leaf) for i, leaf in enumerate(world.leaves)]


def test_replay_of_an_honest_log(world, tmp_path):
    world.release(DATA)
    world.revoke(world.publisher, "lost")
    auditor, kinds = replay(world, tmp_path)
    assert kinds == ["key-register", "namespace-role", "release", "verdict", "key-revoke"]
    assert {k: h["revoked"] for k, h in auditor.revocations().items()} == {keys.key_id(world.publisher.public_key()): 4}


def test_replay_refuses_a_release_by_a_key_never_registered(world, tmp_path):
    world.release(DATA)
    mallory = _from_seed(12)
    world.registered[keys.key_id(mallory.public_key())] = 0  # the registry logs no registration for its own key
    world.release(DATA, version=2, publisher=mallory)
    with pytest.raises(VerificationError, match="log entry 4 \\(release\\) does not verify: .*no earlier key-registration entry"):
        replay(world, tmp_path)


def test_replay_refuses_a_release_after_its_key_was_revoked(world, tmp_path):
    world.release(DATA)
    world.revoke(world.publisher)
    world.release(DATA, version=2)
    with pytest.raises(VerificationError, match="log entry 5 \\(release\\).*revoked in log entry 4, before this release"):
        replay(world, tmp_path)


def test_replay_refuses_a_registration_signed_by_another_key(world, tmp_path):
    world.append(world.key_event("register", world.publisher, signer=_from_seed(8)))
    with pytest.raises(VerificationError, match="log entry 0 \\(key-register\\) does not verify"):
        replay(world, tmp_path)


def test_replay_refuses_an_unknown_statement(world, tmp_path):
    world.append({"filler": 1})
    with pytest.raises(VerificationError, match="log entry 0 \\(unknown\\) does not verify"):
        replay(world, tmp_path)


# -- reproduction provenance of a quant ------------------------------------------------------------
BASE = {"name": "demo/m:f16", "digest": "sha256:" + "b" * 64}


def test_quant_with_its_reproduction_provenance_verifies(world, tmp_path):
    bundle = world.release(DATA, base=BASE)
    verified = verify(world, bundle, world.policy(tmp_path))
    assert verified.release.base.digest == BASE["digest"]


@pytest.mark.parametrize("lie, message", [
    ({"omit": True}, "has no reproduction provenance"),
    ({"subject_digest": "sha256:" + "c" * 64}, "provenance is for sha256:ccc"),
    ({"base_digest": "sha256:" + "d" * 64}, "does not name the base demo/m:f16"),
    ({"ftype": "Q8_0"}, "rebuilt file type Q8_0, the signed recipe says Q4_1"),
    ({"signer": _from_seed(9)}, ""),
])
def test_quant_provenance_lies_are_refused(world, tmp_path, lie, message):
    bundle = world.release(DATA, base=BASE, provenance=lie)
    with pytest.raises(VerificationError) as exc:
        verify(world, bundle, world.policy(tmp_path))
    assert message in str(exc.value)


def test_provenance_is_not_demanded_for_an_unreproduced_quant_the_user_accepts(world, tmp_path):
    from assay.core.levels import UNREPRODUCED, Level

    policy = world.policy(tmp_path)
    unrebuilt = Level(UNREPRODUCED, (), "the verifier could not rebuild it from its base")
    bundle = world.release(DATA, base=BASE, provenance={"omit": True}, level=unrebuilt)
    with pytest.raises(VerificationError, match="'unreproduced'.*assay policy allow demo unreproduced"):
        verify(world, bundle, policy)
    policy.allow_level("demo", "unreproduced")
    assert verify(world, bundle, policy).digest == bundle["file"]["digest"]


def test_provenance_is_demanded_by_a_policy_that_requires_the_reproduce_check(world, tmp_path):
    from assay.core.levels import UNREPRODUCED, Level

    policy = world.policy(tmp_path, required_with_base=["reproduce"], levels=["reproduced", "original", "unreproduced"])
    bundle = world.release(DATA, base=BASE, provenance={"omit": True}, level=Level(UNREPRODUCED, (), "x"))
    with pytest.raises(VerificationError, match="has no reproduction provenance"):
        verify(world, bundle, policy)


def test_provenance_outside_the_log_is_refused(world, tmp_path):
    bundle = world.release(DATA, base=BASE)
    bundle["log"]["entries"]["provenance"]["index"] = bundle["log"]["entries"]["release"]["index"]
    with pytest.raises(VerificationError, match="provenance envelope"):
        verify(world, bundle, world.policy(tmp_path))


# ---------------------------------------------------------------- witnesses

WITNESS = _from_seed(21)


def witnessed(world, bundle, *, age_s: float = 0, key=WITNESS, name="w1.example"):
    """The bundle with its checkpoint cosigned by a witness `age_s` seconds ago."""
    import time

    from assay.core.cosignature import add_cosignatures, sign_cosignature

    text = bundle["log"]["checkpoint"]
    bundle["log"]["checkpoint"] = add_cosignatures(text, [sign_cosignature(text, name, key, int(time.time() - age_s))])
    return bundle


def witness_policy(world, tmp_path, required=1):
    from assay.core.cosignature import witness_vkey

    policy = world.policy(tmp_path)
    policy.add_witness(witness_vkey("w1.example", WITNESS.public_key()))
    policy.set_witnesses_required(required)
    return policy


def test_checkpoint_cosigned_by_a_required_witness_is_accepted(world, tmp_path):
    verified = verify(world, witnessed(world, world.release(DATA)), witness_policy(world, tmp_path))
    assert verified.witnesses == ("w1.example",)


def test_checkpoint_no_witness_cosigned_is_refused(world, tmp_path):
    with pytest.raises(VerificationError, match="cosigned by 0 of the witnesses .* requires 1"):
        verify(world, world.release(DATA), witness_policy(world, tmp_path))
    other = witnessed(world, world.release(DATA, version=2), key=_from_seed(22))  # an unknown key under the same name
    with pytest.raises(VerificationError, match="cosigned by 0 of the witnesses"):
        verify(world, other, witness_policy(world, tmp_path))


def test_an_old_cosignature_does_not_count(world, tmp_path):
    """A registry hiding a newer entry would serve an old, honestly cosigned checkpoint."""
    policy = witness_policy(world, tmp_path)
    policy.set_witness_max_age(600)
    with pytest.raises(VerificationError, match=r"within the last 600 s \(none; too old: w1.example\)"):
        verify(world, witnessed(world, world.release(DATA), age_s=3600), policy)


def test_a_cosignature_of_another_checkpoint_does_not_count(world, tmp_path):
    from assay.core.cosignature import add_cosignatures, sign_cosignature

    bundle = world.release(DATA)
    other_text = world.checkpoint(len(world.leaves) - 1)
    line = sign_cosignature(other_text, "w1.example", WITNESS)
    bundle["log"]["checkpoint"] = add_cosignatures(bundle["log"]["checkpoint"], [line])
    with pytest.raises(VerificationError, match="cosigned by 0 of the witnesses"):
        verify(world, bundle, witness_policy(world, tmp_path))


# -- verifier key revocation: learned from the log's key events, as publisher key revocations -----

SECOND = _from_seed(21)


def two_verifier_policy(world, tmp_path):
    policy = world.policy(tmp_path)
    policy.pin_verifier(keys.key_id(SECOND.public_key()), keys.public_key_to_text(SECOND.public_key()))
    policy.set_verifiers_required(2)
    return policy


def test_two_pinned_verifiers_vouch(world, tmp_path):
    bundle = world.with_further_verdict(world.release(DATA), SECOND)
    verified = verify(world, bundle, two_verifier_policy(world, tmp_path))
    assert len(verified.verifiers) == 2


def test_verdict_logged_after_its_verifier_was_revoked_does_not_count(world, tmp_path):
    """The registry revoked the verifier key (logged); a verdict it signed afterwards does not
    count: the client learns the revocation in its catch-up, the bundle need not say so."""
    policy = world.policy(tmp_path)
    revoked = world.revoke_verifier(world.verifier, "cpu-1", "key leaked")
    bundle = world.release(DATA)
    with pytest.raises(VerificationError, match=f"verdict does not count: verifier 'cpu-1' .* was revoked in log entry {revoked}"
                                                ".*key leaked; its verdict was logged after it"):
        verify(world, bundle, policy)
    assert policy.key_state.verifier_revocation(keys.key_id(world.verifier.public_key()))["revoked"] == revoked


def test_revoked_further_verifier_does_not_count_toward_k(world, tmp_path):
    """k=2: the second verifier's verdict was logged before its key was revoked; as a publisher
    key's releases, a revoked verifier key's earlier verdicts do not count either."""
    policy = two_verifier_policy(world, tmp_path)
    bundle = world.with_further_verdict(world.release(DATA), SECOND)
    revoked = world.revoke_verifier(SECOND, "second", "key leaked")
    served = world.with_further_verdict(bundle, _from_seed(22), "unpinned")  # serve it again at the new size
    with pytest.raises(VerificationError, match="vouched for by 1 of the pinned verifiers, and the trust policy requires 2 "
                                                f"\\(second: the verdict does not count: verifier 'second' .*revoked in log entry {revoked}.*"
                                                "earlier verdicts do not count either"):
        verify(world, served, policy)


def test_verifier_revocation_is_remembered_and_merged(world, tmp_path):
    policy = world.policy(tmp_path)
    world.revoke_verifier(SECOND, "second")
    verify(world, world.release(DATA), policy)  # the pinned first verifier is fine
    policy.save()
    again = type(policy).load(tmp_path)
    assert again.key_state.verifier_revocation(keys.key_id(SECOND.public_key()))["verifier"] == "second"
    assert not again.key_state.may_count_verdict(keys.key_id(SECOND.public_key())).allowed


def test_replay_refuses_a_verdict_logged_after_its_verifier_was_revoked(world, tmp_path):
    world.release(DATA)
    revoked = world.revoke_verifier(world.verifier)
    world.release(DATA, version=2)
    with pytest.raises(VerificationError, match=f"log entry {revoked + 2} \\(verdict\\).*revoked in log entry {revoked}, before this entry"):
        replay(world, tmp_path)


def test_replay_lists_a_verifier_revocation_as_a_key_event(world, tmp_path):
    world.release(DATA)
    revoked = world.revoke_verifier(world.verifier)
    auditor, kinds = replay(world, tmp_path)
    assert kinds[-1] == "verifier-revoke" and revoked in auditor.key_event_indices
    assert auditor.keys.verifier_revocation(keys.key_id(world.verifier.public_key()))["revoked"] == revoked


# -- a verdict's level the release and its checks do not support (assay/core/levelcheck.py) -------
NOT_REBUILT = [{"name": "static", "result": "passed", "summary": "ok", "evidence": {"summary": {"tensor_types": {"Q4_1": 7}}}},
               {"name": "reproduce", "result": "skipped", "summary": "no verifier can rebuild", "evidence": {}},
               {"name": "probes", "result": "passed", "summary": "ok", "evidence": {}}]


def test_a_quant_not_rebuilt_signed_original_is_refused(world, tmp_path):
    from assay.core.levels import ORIGINAL, Level

    bundle = world.release(DATA, base=BASE, provenance={"omit": True}, checks=NOT_REBUILT, level=Level(ORIGINAL))
    with pytest.raises(VerificationError, match="signs level 'original', which the release and the verdict's checks do not "
                                                "support: its level is 'original', but the release names base demo/m:f16"):
        verify(world, bundle, world.policy(tmp_path))


@pytest.mark.parametrize("level, message", [
    ("other base", "its chain starts at bob/other:f16@3 \\(sha256:ccc"),
    ("not rebuilt", "its level is 'reproduced', but its reproduce check is skipped"),
    ("original", "names a build chain"),
])
def test_a_level_its_release_does_not_support_is_refused(world, tmp_path, level, message):
    from assay.core.levels import ORIGINAL, REPRODUCED, ChainLink, Level

    other = Level(REPRODUCED, (ChainLink("bob/other:f16", 3, "sha256:" + "c" * 64, ORIGINAL),))
    if level == "other base":
        bundle = world.release(DATA, base=BASE, level=other)
    elif level == "not rebuilt":
        bundle = world.release(DATA, base=BASE, checks=NOT_REBUILT)
    else:
        bundle = world.release(DATA, level=other)  # an original: no base, nothing rebuilt
    with pytest.raises(VerificationError, match=message):
        verify(world, bundle, world.policy(tmp_path))


def test_provenance_for_another_recipe_is_refused(world, tmp_path):
    from assay.core import dsse, statements

    bundle = world.release(DATA, base=BASE)
    prov = statements.parse_provenance_statement(dsse.parse_envelope(bundle["provenance_envelope"]).payload)
    assert prov.external_parameters["ftype"] == "Q4_1"
    lying = statements.build_provenance_statement(
        subject_name=prov.subject_name, subject_digest=prov.subject_digest, builder_id="v",
        recipe={**prov.external_parameters, "options": {"nthread": 2}}, resolved_dependencies=prov.resolved_dependencies)
    index = world.append(dsse.sign_envelope(lying, statements.PAYLOAD_TYPE, world.verifier))
    bundle = world.release(DATA, base=BASE, provenance={"omit": True})
    bundle = world.bundle(bundle["log"]["entries"]["release"]["index"], bundle["log"]["entries"]["verdict"]["index"], world.publisher,
                          reference="demo/m:q4", version=1, name="m.gguf", data=DATA, provenance_index=index)
    with pytest.raises(VerificationError, match="not the recipe the release statement signs"):
        verify(world, bundle, world.policy(tmp_path))


def test_a_verdicts_static_tensor_types_bound_an_original(world, tmp_path):
    """The static check's evidence, inline or the bundle's step row whose digest the verdict signs:
    a quantized file is not `original`."""
    def with_static_row(bundle, evidence):
        bundle["steps"] = [{"name": "static", "status": "passed", "summary": "ok", "started": None, "finished": None,
                            "evidence": evidence}]
        return bundle

    checks = [dict(NOT_REBUILT[0]), {**NOT_REBUILT[1], "summary": "original"}, NOT_REBUILT[2]]
    quantized = with_static_row(world.release(DATA, checks=checks), checks[0]["evidence"])
    with pytest.raises(VerificationError, match="a full-precision file, but its static check found tensor types Q4_1"):
        verify(world, quantized, world.policy(tmp_path / "1"))
    checks[0] = {**checks[0], "evidence": {"summary": {"tensor_types": {"F16": 7, "F32": 2}}}}
    full = with_static_row(world.release(DATA, checks=checks), checks[0]["evidence"])
    assert verify(world, full, world.policy(tmp_path / "2")).level.name == "original"
    # a row whose evidence is not the one the verdict signs says nothing either way
    assert verify(world, with_static_row(full, {"summary": {"tensor_types": {"Q8_0": 7}}}),
                  world.policy(tmp_path / "3")).level.name == "original"
