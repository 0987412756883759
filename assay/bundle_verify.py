"""Client-side verification of a release bundle (the one verifier of registry/bundles.py).

The client trusts nothing the server says about status: it checks the publisher's envelope,
the verifier's envelope (pinned keys only), that both name the bytes it received, the key's
revocation state, its trust policy, rollback, and the log's inclusion proofs against a
checkpoint signed by the pinned log key.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import checkpoint as cp
from . import dsse, keys, merkle, statements
from .canonical import canonical_json
from .digest import digest_bytes
from .errors import VerificationError
from .names import parse_reference
from .trustpolicy import TrustPolicy


@dataclass
class VerifiedBundle:
    reference: str
    version: int
    file_name: str
    digest: str
    size: int
    publisher_keyid: str
    verifier_keyid: str
    checks: list
    checkpoint: "cp.Checkpoint"
    checkpoint_text: str
    release: "statements.ReleaseStatement"


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise VerificationError(message)


def verify_release_envelope(bundle: dict, reference: str, policy: TrustPolicy):
    key = bundle.get("publisher_key") or {}
    try:
        public_key = keys.public_key_from_text(key.get("public_key", ""))
    except Exception:
        raise VerificationError("publisher key in the bundle is malformed") from None
    keyid = keys.key_id(public_key)
    _require(keyid == key.get("keyid"), f"publisher key id {key.get('keyid')} does not match its public key ({keyid})")
    _require(not key.get("revoked"), f"publisher key {keyid} was revoked on {key.get('revoked_at')}: {key.get('revoke_reason') or 'no reason given'}")
    verified = dsse.verify_envelope(bundle["release_envelope"], {keyid: public_key})
    stmt = statements.parse_release_statement(verified.payload)
    ns, model, tag = parse_reference(reference)
    _require((stmt.namespace, stmt.model, stmt.tag) == (ns, model, tag),
             f"the signed statement is for {stmt.namespace}/{stmt.model}:{stmt.tag}, not {reference}")
    allowed, reason = policy.publisher_key_allowed(ns, keyid)
    _require(allowed, reason)
    f = bundle.get("file") or {}
    _require(stmt.subject_digest == f.get("digest"), f"the signed statement names {stmt.subject_digest}, the registry serves {f.get('digest')}")
    _require(stmt.subject_name == f.get("name"), f"the signed statement names file {stmt.subject_name!r}, the registry serves {f.get('name')!r}")
    _require(stmt.version == bundle.get("version"), f"the signed statement is version {stmt.version}, the registry says {bundle.get('version')}")
    return stmt, keyid, verified.payload


def verify_verdict_envelope(bundle: dict, stmt, release_payload: bytes, policy: TrustPolicy):
    envelope = bundle.get("verdict_envelope")
    _require(envelope is not None, f"{bundle.get('reference')} has no signed verdict (status {bundle.get('status')})")
    verified = dsse.verify_envelope(envelope, policy.verifier_keys())
    verdict = statements.parse_verdict_statement(verified.payload)
    _require(verdict.subject_digest == stmt.subject_digest, f"the verdict is for {verdict.subject_digest}, not {stmt.subject_digest}")
    _require(verdict.release_statement_digest == digest_bytes(release_payload), "the verdict names a different release statement")
    _require(verdict.passed, "the verifier's verdict is FAILED: " + "; ".join(f"{c['name']}: {c.get('summary', '')}" for c in verdict.checks if c.get("result") == "failed"))
    ok, reason = policy.required_checks_satisfied(verdict.checks, has_base=stmt.base is not None)
    _require(ok, reason)
    return verdict, verified.keyid


def verify_log(bundle: dict, policy: TrustPolicy, names: tuple[str, ...] = ("release", "verdict")):
    log = bundle.get("log") or {}
    text = log.get("checkpoint", "")
    checkpoint = cp.verify_checkpoint(text, policy.log_vkey())
    for name in names:
        entry = (log.get("entries") or {}).get(name)
        _require(entry is not None, f"the registry gave no log inclusion proof for the {name} envelope")
        leaf = merkle.leaf_hash(canonical_json(bundle[f"{name}_envelope"]))
        try:
            merkle.verify_inclusion(leaf, entry["index"], checkpoint.size, [bytes.fromhex(h) for h in entry["proof"]], checkpoint.root)
        except (ValueError, TypeError, KeyError) as exc:
            raise VerificationError(f"malformed inclusion proof for the {name} envelope: {exc}") from None
    return checkpoint, text


def verify_consistency(old_text: str | None, new_checkpoint, fetch_proof, policy: TrustPolicy) -> None:
    """Check that the new checkpoint extends the newest one this client saw before."""
    if not old_text:
        return
    old = cp.verify_checkpoint(old_text, policy.log_vkey())
    if new_checkpoint.size < old.size:
        raise VerificationError(f"the registry's log shrank from {old.size} to {new_checkpoint.size} entries: history was rewritten (rollback)")
    if new_checkpoint.size == old.size:
        _require(new_checkpoint.root == old.root, f"the registry's log has two different roots at size {old.size}: history was forked")
        return
    proof = fetch_proof(old.size, new_checkpoint.size)
    try:
        merkle.verify_consistency(old.size, new_checkpoint.size, old.root, new_checkpoint.root, proof)
    except VerificationError:
        raise VerificationError(f"the registry's log at size {new_checkpoint.size} is not an extension of the one seen at size {old.size}: history was rewritten or forked") from None


def verify_bundle(bundle: dict, reference: str, policy: TrustPolicy, fetch_consistency) -> VerifiedBundle:
    """Everything except the file bytes, which the caller hashes while downloading."""
    stmt, publisher_keyid, release_payload = verify_release_envelope(bundle, reference, policy)
    verdict, verifier_keyid = verify_verdict_envelope(bundle, stmt, release_payload, policy)
    policy.check_version_not_rolled_back(reference, stmt.version)
    checkpoint, text = verify_log(bundle, policy)
    verify_consistency(policy.newest_checkpoint(), checkpoint, fetch_consistency, policy)
    return VerifiedBundle(
        reference=reference, version=stmt.version, file_name=stmt.subject_name, digest=stmt.subject_digest,
        size=int(bundle["file"]["size"]), publisher_keyid=publisher_keyid, verifier_keyid=verifier_keyid,
        checks=verdict.checks, checkpoint=checkpoint, checkpoint_text=text, release=stmt,
    )


def record_success(policy: TrustPolicy, verified: VerifiedBundle) -> None:
    policy.record_version(verified.reference, verified.version)
    policy.record_checkpoint(verified.checkpoint_text, verified.checkpoint.size)
    policy.save()
