"""Client-side verification of a release bundle (the one verifier of registry/bundles.py).

The client trusts nothing the server says about status. In order, it checks:
1. the log: the bundle's checkpoint is signed by the pinned log key and cosigned by as many of
   the policy's witnesses as it requires; it is consistent with the newest checkpoint this client
   has seen (either one may be the larger); every envelope the bundle relies on is in its tree;
2. the log's key events up to that checkpoint (assay/client/catchup.py): the client catches up with
   every key registration, revocation and namespace role logged since it last looked, proven
   complete by the registry's signed key-event index, and saves each revocation at once;
3. the publisher key, from signed, logged data only: its registration envelope is signed by the
   key itself (proof of possession), is logged before the release, and names the key that signed
   the release; it is not revoked (the bundle's revocation, the registry's flag, or one this
   client verified in the log); its owner held a publishing role in the namespace when the
   release was logged (assay/client/keystate.py), and a "pinned" namespace lists it;
4. the release statement (reference, file name and digest, version);
5. the verifier's verdict (pinned keys only, and none the log revoked: step 2 learns verifier
   key revocations too, and a revoked key's verdicts count neither after nor before its
   revocation), the checks the policy requires, and its signed verification level
   (assay/core/levels.py), which the policy must accept for the namespace; and when the policy
   requires k verifiers, k distinct pinned verifiers' PASSED verdicts on these bytes (the
   further ones in `verdicts`, each logged), each satisfying the same rules;
6. for a quant when the policy requires `reproduce`: the verifier's SLSA provenance (pinned
   keys, logged) for these exact bytes, built from the base the release names; no rollback.

A registry that hides a revocation from a bundle is caught by step 2: the revocation is a key
event of the log, and the signed index must list it. A registry that forks its log to drop it
is caught by a client that requires a witness: no honest witness cosigns a checkpoint that is
not an extension of the one it cosigned before.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from assay.core import checkpoint as cp
from assay.core import dsse, levels, merkle, ossf_signature, statements
from assay.core.canonical import canonical_json
from assay.client.catchup import LogSource, catch_up
from assay.core.cosignature import verify_cosignatures
from assay.core.digest import digest_bytes
from assay.core.levelcheck import level_problem, static_tensor_types
from assay.core.errors import AssayError, FormatError, VerificationError
from assay.client.logaudit import verify_key_registration, verify_key_revocation
from assay.core.names import parse_reference
from assay.client.trustpolicy import TrustPolicy
from assay.core.typed import Strict, load

BUNDLE_VERSION = 2
REQUIRED_ENTRIES = ("release", "verdict", "key_registration")
OPTIONAL_ENTRIES = ("provenance", "key_revocation")


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
    level: "levels.Level"
    witnesses: tuple = ()
    verifiers: tuple = ()  # key ids of the pinned verifiers whose PASSED verdicts were checked
    publisher_public_key: object = None
    model_signing: dict | None = None  # the publisher's OpenSSF model_signing signature, checked
    # sha256 digest -> the digest a download of that file is checked by (check_digests: its
    # blake3, when the statement and every counted verdict vouch for it); absent: its sha256.
    check_digests: dict = field(default_factory=dict)

    def check_digest(self, digest: str | None = None) -> str:
        """What a download of the file `digest` (the subject by default) must hash to."""
        digest = digest or self.digest
        return self.check_digests.get(digest, digest)


_LABELS = {
    "release": "release", "verdict": "verdict", "provenance": "provenance",
    "key_registration": "publisher key registration", "key_revocation": "publisher key revocation",
}


@dataclass(frozen=True)
class LogView:
    checkpoint: "cp.Checkpoint"
    text: str
    indices: dict  # entry name -> its log index, proven by its inclusion proof


@dataclass(frozen=True)
class PublisherKey:
    keyid: str
    public_key: object
    owner: str
    registration_index: int


# ---------------------------------------------------------------- the bundle's typed model

Envelope = dict[str, Any]  # a DSSE envelope: assay/core/dsse.py parses and verifies it
Text = Annotated[str, StringConstraints(max_length=4096)]
LongText = Annotated[str, StringConstraints(max_length=1 << 20)]
Index = Annotated[int, Field(ge=0)]


class _FileInfo(Strict):
    name: Text
    digest: Text
    size: Index


class _InclusionProof(Strict):
    index: Index
    proof: Annotated[list[Annotated[str, StringConstraints(max_length=64)]], Field(max_length=64)]


class _LogProofs(Strict):
    checkpoint: LongText
    tree_size: Index
    entries: dict[Literal[REQUIRED_ENTRIES + OPTIONAL_ENTRIES], _InclusionProof]  # type: ignore[valid-type]


class _Seal(Strict):
    salt: Text
    entry: Envelope


class _RoleBlinding(Strict):
    namespace: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    keys: Annotated[list[statements.Hex64], Field(min_length=1, max_length=10_000)]


class _FurtherVerdict(Strict):
    verifier: Text
    envelope: Envelope
    log: _InclusionProof
    sealed: _Seal = None  # type: ignore[assignment]


class _PublisherKeyInfo(Strict):
    """What the registry says about the key (informational: the logged envelopes decide)."""
    keyid: Text
    public_key: Text
    owner: Text
    name: Text = ""
    created: Text | None = None
    revoked: bool = False
    revoked_at: Text | None = None
    revoke_reason: Text = ""
    registration_log_index: Index | None = None
    revocation_log_index: Index | None = None


class _BaseInfo(Strict):
    name: Text
    digest: Text


class _StepRow(Strict):
    name: Text
    status: Text
    summary: LongText
    started: Text | None
    finished: Text | None
    evidence: dict[str, Any] = None  # type: ignore[assignment]


class _BundleDoc(Strict):
    """The release bundle (registry/bundles.py builds it). What the registry only reports (status,
    steps, publisher_key) is typed too, but decides nothing: the envelopes and proofs do."""
    bundle_version: Literal[BUNDLE_VERSION]  # type: ignore[valid-type]
    reference: Text
    version: int
    status: Text = ""
    status_reason: LongText = ""
    file: _FileInfo
    parts: Annotated[list[_FileInfo], Field(max_length=10_000)] | None = None
    download_url: Text | None = None
    quantization: Text = ""
    level: dict[str, Any] | None = None
    base: _BaseInfo | None = None
    model_card: LongText = ""
    release_envelope: Envelope
    verdict_envelope: Envelope | None = None
    verdicts: Annotated[list[_FurtherVerdict], Field(max_length=1000)] = []
    provenance_envelope: Envelope | None = None
    model_signing: dict[str, Any] | None = None
    key_registration_envelope: Envelope | None  # None: the registry sent none (refused below, by name)
    key_revocation_envelope: Envelope | None = None
    publisher_key: _PublisherKeyInfo | None = None
    steps: Annotated[list[_StepRow], Field(max_length=64)] = []
    log: _LogProofs
    sealed: dict[Literal["release", "verdict", "provenance"], _Seal] = {}  # type: ignore[valid-type]
    role_blinding: _RoleBlinding | None = None  # a private namespace's: reads its blinded role events
    created: Text | None = None


def check_bundle_shape(bundle: object) -> None:
    """The bundle as its typed model: a field missing, unknown or of the wrong type is refused
    before anything in it is used."""
    version = bundle.get("bundle_version") if isinstance(bundle, dict) else None
    _require(version == BUNDLE_VERSION,
             f"the registry sent a release bundle of format {version!r}; this client reads format {BUNDLE_VERSION} (upgrade the older side)")
    try:
        load(_BundleDoc, bundle, what="")
    except FormatError as exc:
        raise VerificationError(f"the registry sent a malformed release bundle: {exc}") from None


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise VerificationError(message)


def verify_log_checkpoint(bundle: dict, policy: TrustPolicy):
    """(checkpoint, its text): the bundle's checkpoint, signed by the pinned log key."""
    log = bundle.get("log")
    _require(isinstance(log, dict), "the registry gave no log checkpoint and proofs with the release")
    text = log.get("checkpoint", "")
    return cp.verify_checkpoint(text, policy.log_vkey()), text


CLOCK_SKEW_S = 300


def verify_witnesses(text: str, policy: TrustPolicy, now: float | None = None) -> tuple[str, ...]:
    """The names of the policy's witnesses whose cosignature of the checkpoint is valid and recent
    (at most the policy's max age old); refuses fewer than required. An old cosignature proves the
    checkpoint was once consistent, not that the log has not grown since: a registry hiding a
    newer entry would serve exactly such a checkpoint."""
    required = policy.witnesses_required()
    if not policy.witness_keys():
        return ()
    now = time.time() if now is None else now
    valid = verify_cosignatures(text, policy.witness_keys())
    max_age = policy.witness_max_age_s()
    fresh = tuple(sorted(n for n, ts in valid.items() if now - max_age <= ts <= now + CLOCK_SKEW_S))
    stale = sorted(set(valid) - set(fresh))
    _require(len(fresh) >= required,
             f"the log checkpoint is cosigned by {len(fresh)} of the witnesses this client trusts within the last "
             f"{max_age} s ({', '.join(fresh) or 'none'}{'; too old: ' + ', '.join(stale) if stale else ''}), and the trust "
             f"policy requires {required}: the registry may be showing this client a log that no witness saw, or an old view of it")
    return fresh


def verify_inclusion(bundle: dict, name: str, checkpoint) -> int:
    """The log index of the bundle's `name` envelope, proven by its inclusion proof under `checkpoint`."""
    label = _LABELS[name]
    envelope = bundle.get(f"{name}_envelope")
    if envelope is None and name == "verdict":
        raise VerificationError(f"{bundle.get('reference')} has no signed verdict (status {bundle.get('status')})")
    _require(envelope is not None, f"the registry sent no {label} envelope with the release")
    log = bundle.get("log") if isinstance(bundle.get("log"), dict) else {}
    entries = log.get("entries") if isinstance(log.get("entries"), dict) else {}
    entry = entries.get(name)
    _require(isinstance(entry, dict), f"the registry gave no log inclusion proof for the {label} envelope")
    sealed = bundle.get("sealed") if isinstance(bundle.get("sealed"), dict) else {}
    logged = unseal(sealed[name], envelope, name, label) if name in sealed else envelope
    try:
        index = entry["index"]
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"index must be an integer, not {index!r}")
        leaf = merkle.leaf_hash(canonical_json(logged))
        merkle.verify_inclusion(leaf, index, checkpoint.size, [bytes.fromhex(h) for h in entry["proof"]], checkpoint.root)
    except (ValueError, TypeError, KeyError, AttributeError, AssayError) as exc:
        if isinstance(exc, VerificationError) and "does not lead to the root" in str(exc):
            raise VerificationError(f"the {label} envelope is not in the log of the signed checkpoint: {exc}") from None
        raise VerificationError(f"malformed inclusion proof for the {label} envelope: {exc}") from None
    return index


def unseal(seal: object, envelope: dict, kind: str, label: str) -> dict:
    """The sealed log entry that stands for `envelope` (a private namespace's statement), after
    checking that it commits to exactly this envelope with the given salt. The inclusion proof is
    then checked for the sealed entry; the checkpoint's signature covers it as any other leaf."""
    try:
        entry = seal["entry"]
        stated = statements.parse_sealed_entry(dsse.parse_envelope(entry).payload)
        committed = statements.seal_commitment(seal["salt"], envelope)
    except (AssayError, KeyError, TypeError) as exc:
        raise VerificationError(f"the sealed log entry for the {label} envelope is malformed: {exc}") from None
    _require(stated.kind == kind, f"the sealed log entry for the {label} envelope is for a {stated.kind}")
    _require(stated.commitment == committed,
             f"the {label} envelope is not the one the log's sealed entry commits to ({committed} vs {stated.commitment})")
    return entry


def verify_log(bundle: dict, policy: TrustPolicy) -> LogView:
    """Every envelope the bundle carries is in the tree of the checkpoint signed by the pinned log key."""
    checkpoint, text = verify_log_checkpoint(bundle, policy)
    names = REQUIRED_ENTRIES + tuple(n for n in OPTIONAL_ENTRIES if bundle.get(f"{n}_envelope") is not None)
    return LogView(checkpoint, text, {name: verify_inclusion(bundle, name, checkpoint) for name in names})


def verify_publisher_key(bundle: dict, policy: TrustPolicy, log: LogView) -> PublisherKey:
    """The publisher key from its logged, self-signed registration; refuses a revoked key."""
    try:
        event, public_key = verify_key_registration(bundle["key_registration_envelope"])
    except AssayError as exc:
        raise VerificationError(f"the publisher key's registration does not verify: {exc}") from None
    served = bundle.get("publisher_key") if isinstance(bundle.get("publisher_key"), dict) else {}
    _require(served.get("keyid") in (None, event.keyid),
             f"the registry names publisher key {served.get('keyid')}, but the logged registration is for key {event.keyid}")
    _require(served.get("owner") in (None, event.owner),
             f"the registry says key {event.keyid} belongs to {served.get('owner')!r}, but its signed registration names {event.owner!r}")
    registered, released = log.indices["key_registration"], log.indices["release"]
    _require(registered < released,
             f"publisher key {event.keyid} was registered in log entry {registered}, after the release it signed (entry {released})")
    check_not_revoked(bundle, policy, event.keyid, log)
    learned = policy.key_state.keys.get(event.keyid)
    _require(learned is None or learned["owner"] == event.owner,
             f"the log registers key {event.keyid} to {learned and learned['owner']!r}, the bundle's registration to {event.owner!r}")
    return PublisherKey(event.keyid, public_key, event.owner, registered)


def check_not_revoked(bundle: dict, policy: TrustPolicy, keyid: str, log: LogView) -> None:
    """Refuse on a logged revocation in the bundle, the registry's flag, or one `assay log verify` found."""
    envelope = bundle.get("key_revocation_envelope")
    if envelope is not None:
        try:
            event = verify_key_revocation(envelope, policy)
        except AssayError as exc:
            raise VerificationError(f"the publisher key's revocation in the bundle does not verify: {exc}") from None
        _require(event.keyid == keyid, f"the bundle's key revocation is for key {event.keyid}, not for the publisher key {keyid}")
        index = log.indices["key_revocation"]
        policy.record_revocation(keyid, index, event.time, event.reason or "")  # saved by the caller even though this fails
        raise VerificationError(f"publisher key {keyid} was revoked on {event.time} (log entry {index}): {event.reason or 'no reason given'}")
    served = bundle.get("publisher_key") if isinstance(bundle.get("publisher_key"), dict) else {}
    _require(not served.get("revoked"),
             f"the registry says publisher key {keyid} was revoked on {served.get('revoked_at')} "
             f"({served.get('revoke_reason') or 'no reason given'}), and sent no logged revocation")
    known = policy.known_revocation(keyid)
    if known is not None:
        raise VerificationError(
            f"publisher key {keyid} was revoked in log entry {known['index']} ({known.get('reason') or 'no reason given'}), "
            "as this client found in the log, but the registry's bundle does not include that revocation: "
            "the registry is hiding it")


def _served_file(bundle: dict) -> dict:
    return bundle.get("file") if isinstance(bundle.get("file"), dict) else {}


def learn_role_blinding(bundle: dict, namespace: str, policy: TrustPolicy) -> None:
    """A private namespace's role events are blinded in the log; its bundles carry the keys that
    read them (pinned on first sight, continued only through logged links: assay/client/keystate.py)."""
    served = bundle.get("role_blinding")
    if served is None:
        return
    _require(served.get("namespace") == namespace,
             f"the bundle's role-blinding key is for namespace {served.get('namespace')!r}, not '{namespace}'")
    try:
        policy.key_state.pin_blinding(namespace, served["keys"])
    except FormatError as exc:
        raise VerificationError(str(exc)) from None


def verify_release_envelope(bundle: dict, reference: str, policy: TrustPolicy, key: PublisherKey, release_index: int):
    envelope = bundle["release_envelope"]
    signers = list(dict.fromkeys(keyid for keyid, _ in dsse.parse_envelope(envelope).signatures))
    _require(key.keyid in signers,
             f"the release is signed by key {', '.join(signers)}, but the bundle's key registration is for key {key.keyid}")
    verified = dsse.verify_envelope(envelope, {key.keyid: key.public_key})
    stmt = statements.parse_release_statement(verified.payload)
    ns, model, tag = parse_reference(reference)
    _require((stmt.namespace, stmt.model, stmt.tag) == (ns, model, tag),
             f"the signed statement is for {stmt.namespace}/{stmt.model}:{stmt.tag}, not {reference}")
    learn_role_blinding(bundle, ns, policy)
    allowed, reason = policy.publisher_key_allowed(ns, key.keyid, release_index)
    _require(allowed, reason)
    f = _served_file(bundle)
    _require(stmt.subject_digest == f.get("digest"), f"the signed statement names {stmt.subject_digest}, the registry serves {f.get('digest')}")
    _require(stmt.subject_name == f.get("name"), f"the signed statement names file {stmt.subject_name!r}, the registry serves {f.get('name')!r}")
    _require(stmt.version == bundle.get("version"), f"the signed statement is version {stmt.version}, the registry says {bundle.get('version')}")
    return stmt, verified.payload


def verify_verdict_envelope(bundle: dict, stmt, release_payload: bytes, policy: TrustPolicy, envelope: dict | None = None):
    envelope = bundle.get("verdict_envelope") if envelope is None else envelope
    _require(envelope is not None, f"{bundle.get('reference')} has no signed verdict (status {bundle.get('status')})")
    verified = dsse.verify_envelope(envelope, policy.verifier_keys())
    verdict = statements.parse_verdict_statement(verified.payload)
    _require(verdict.subject_digest == stmt.subject_digest, f"the verdict is for {verdict.subject_digest}, not {stmt.subject_digest}")
    _require(verdict.release_statement_digest == digest_bytes(release_payload), "the verdict names a different release statement")
    _require(verdict.passed, "the verifier's verdict is FAILED: " + "; ".join(f"{c['name']}: {c.get('summary', '')}" for c in verdict.checks if c.get("result") == "failed"))
    level = verdict.level_or_unreproduced
    problem = level_problem(stmt, verdict, tensor_types=_static_tensor_types(bundle, verdict))
    _require(problem is None, f"the verifier's verdict on {bundle.get('reference')} signs level '{level.name}', which the release "
                              f"and the verdict's checks do not support: {problem}")
    ok, reason = policy.level_allowed(stmt.namespace, level)
    _require(ok, f"refusing {bundle.get('reference')}: {reason}")
    ok, reason = policy.required_checks_satisfied(verdict.checks, has_base=stmt.base is not None)
    _require(ok, reason)
    return verdict, verified.keyid


def _static_tensor_types(bundle: dict, verdict) -> dict | None:
    """The tensor types the verdict's static check found, when its evidence is at hand: inline
    (verdicts signed before evidence was served apart) or the bundle's static step row whose
    evidence hashes to the digest the verdict signs. None otherwise (the level is then checked
    without them)."""
    check = verdict.check("static") or {}
    evidence = check.get("evidence")
    if evidence is None:
        rows = bundle.get("steps") if isinstance(bundle.get("steps"), list) else []
        evidence = next((r.get("evidence") for r in rows if isinstance(r, dict) and r.get("name") == "static"
                         and isinstance(r.get("evidence"), dict)
                         and statements.evidence_digest(r["evidence"]) == check.get("evidenceDigest")), None)
    return static_tensor_types(evidence)


def verify_verifier_quorum(bundle: dict, stmt, release_payload: bytes, policy: TrustPolicy, checkpoint, first_keyid: str,
                           counted: list | None = None) -> tuple[str, ...]:
    """The pinned verifiers that each signed a logged, PASSED verdict on this release that the
    policy accepts; refuses fewer than it requires (`assay policy set verifiers K`). The further
    verdicts that counted are appended to `counted`."""
    required = policy.verifiers_required()
    vouching = {first_keyid: ""}
    problems = []
    items = bundle.get("verdicts") if isinstance(bundle.get("verdicts"), list) else []
    for i, item in enumerate(items[:64] if required > 1 else []):
        name = str(item.get("verifier", "")) if isinstance(item, dict) else ""
        try:
            _require(isinstance(item, dict) and isinstance(item.get("log"), dict), "malformed entry")
            logged = unseal(item["sealed"], item["envelope"], "verdict", f"verdict of verifier {name!r}") if "sealed" in item else item["envelope"]
            index = _included(logged, item["log"], checkpoint, f"verdict of verifier {name!r}")
            further, keyid = verify_verdict_envelope(bundle, stmt, release_payload, policy, item["envelope"])
            check_verifier_not_revoked(policy, keyid, index)
            if keyid not in vouching and counted is not None:
                counted.append(further)
            vouching.setdefault(keyid, name)
        except (AssayError, KeyError, TypeError) as exc:
            problems.append(f"{name or 'verdict ' + str(i)}: {exc}")
    _require(len(vouching) >= required,
             f"{bundle.get('reference')} is vouched for by {len(vouching)} of the pinned verifiers, and the trust policy requires "
             f"{required}" + (f" ({'; '.join(problems)})" if problems else "") +
             ": wait for more verifiers, or pin more with `assay policy verifier add NAME`")
    return tuple(vouching)


def check_verifier_not_revoked(policy: TrustPolicy, keyid: str, index: int | None, what: str = "verdict") -> None:
    """Refuse a verdict (or provenance) signed by a verifier key the log revoked (learned by the
    catch-up, step 2): one logged after the revocation, and, as for a publisher key, one logged
    before it too (assay/client/keystate.py)."""
    decision = policy.key_state.may_count_verdict(keyid, index)
    _require(decision.allowed, f"the {what} does not count: {decision.reason}")


def _included(envelope: dict, entry: dict, checkpoint, label: str) -> int:
    try:
        index = entry["index"]
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"index must be an integer, not {index!r}")
        merkle.verify_inclusion(merkle.leaf_hash(canonical_json(envelope)), index, checkpoint.size,
                                [bytes.fromhex(h) for h in entry["proof"]], checkpoint.root)
    except (ValueError, TypeError, KeyError, AttributeError, AssayError) as exc:
        raise VerificationError(f"the {label} is not proven to be in the log of the signed checkpoint: {exc}") from None
    return index


def verify_provenance_envelope(bundle: dict, stmt, policy: TrustPolicy, verdict):
    """For a quant whose verdict says `reproduced` (or whose policy requires the reproduce check),
    or a release at level `converted`: the verifier's SLSA provenance says it built exactly these
    bytes from what the signed statement names (assay/core/levelcheck.py: the base and the recipe,
    or every upstream file of the conversion recipe). None for an original or an unreproduced quant."""
    level = verdict.level_or_unreproduced
    converted = level.name == levels.CONVERTED
    demanded = level.name == levels.REPRODUCED or "reproduce" in policy.required_checks(has_base=True)
    if not converted and (stmt.base is None or not demanded):
        return None
    envelope = bundle.get("provenance_envelope")
    if converted:
        _require(envelope is not None, f"{bundle.get('reference')} is at level 'converted' but has no conversion provenance")
    else:
        _require(envelope is not None,
                 f"{bundle.get('reference')} is a quant of {stmt.base.name} but has no reproduction provenance, "
                 "which its level 'reproduced' (or the trust policy) requires")
    verified = dsse.verify_envelope(envelope, policy.verifier_keys())
    check_verifier_not_revoked(policy, verified.keyid, None, "conversion provenance" if converted else "reproduction provenance")
    prov = statements.parse_provenance_statement(verified.payload)
    problem = level_problem(stmt, verdict, provenance=prov)
    _require(problem is None, f"the provenance of {bundle.get('reference')} does not match its signed release: {problem}")
    return prov


def verify_consistency(old_text: str | None, new_checkpoint, fetch_proof, policy: TrustPolicy, *, allow_older: bool = False) -> None:
    """Check that the new checkpoint extends the newest one this client saw before.

    A monitor asks for the registry's current checkpoint, which must never shrink. A release
    bundle may carry an older checkpoint than one this client saw (two pulls overlapping, or the
    newest one the witnesses cosigned): with allow_older, that is accepted when it is on the same
    history, i.e. a prefix of the newer one (proven by a consistency proof), never one off it."""
    if not old_text:
        return
    old = cp.verify_checkpoint(old_text, policy.log_vkey())
    if new_checkpoint.size < old.size and not allow_older:
        raise VerificationError(f"the registry's log shrank from {old.size} to {new_checkpoint.size} entries: history was rewritten (rollback)")
    if new_checkpoint.size < old.size:
        try:
            merkle.verify_consistency(new_checkpoint.size, old.size, new_checkpoint.root, old.root,
                                      fetch_proof(new_checkpoint.size, old.size))
        except VerificationError:
            raise VerificationError(f"the registry's checkpoint of size {new_checkpoint.size} is not a prefix of the log of size "
                                    f"{old.size} this client saw before: history was rewritten (rollback or fork)") from None
        return
    if new_checkpoint.size == old.size:
        _require(new_checkpoint.root == old.root, f"the registry's log has two different roots at size {old.size}: history was forked")
        return
    proof = fetch_proof(old.size, new_checkpoint.size)
    try:
        merkle.verify_consistency(old.size, new_checkpoint.size, old.root, new_checkpoint.root, proof)
    except VerificationError:
        raise VerificationError(f"the registry's log at size {new_checkpoint.size} is not an extension of the one seen at size {old.size}: history was rewritten or forked") from None


def verify_bundle(bundle: dict, reference: str, policy: TrustPolicy, source: LogSource) -> VerifiedBundle:
    """Everything except the file bytes, which the caller hashes while downloading. `source`
    answers consistency proofs and the key events since this client last caught up."""
    check_bundle_shape(bundle)
    log = verify_log(bundle, policy)
    cosigned = verify_witnesses(log.text, policy)
    verify_consistency(policy.newest_checkpoint(), log.checkpoint, source.consistency_proof, policy, allow_older=True)
    catch_up(policy, source, log.checkpoint)
    key = verify_publisher_key(bundle, policy, log)
    stmt, release_payload = verify_release_envelope(bundle, reference, policy, key, log.indices["release"])
    verdict, verifier_keyid = verify_verdict_envelope(bundle, stmt, release_payload, policy)
    check_verifier_not_revoked(policy, verifier_keyid, log.indices["verdict"])
    counted = [verdict]
    vouching = verify_verifier_quorum(bundle, stmt, release_payload, policy, log.checkpoint, verifier_keyid, counted)
    verify_provenance_envelope(bundle, stmt, policy, verdict)
    model_signing = verify_model_signing(bundle, stmt, key)
    policy.check_version_not_rolled_back(reference, stmt.version)
    size = _served_file(bundle).get("size")
    _require(isinstance(size, int) and not isinstance(size, bool) and size >= 0,
             f"the registry gave no valid file size for {reference} ({str(size)[:40]!r})")
    return VerifiedBundle(
        reference=reference, version=stmt.version, file_name=stmt.subject_name, digest=stmt.subject_digest,
        size=size, publisher_keyid=key.keyid, verifier_keyid=verifier_keyid,
        checks=verdict.checks, checkpoint=log.checkpoint, checkpoint_text=log.text, release=stmt,
        level=verdict.level_or_unreproduced, witnesses=cosigned, verifiers=vouching,
        publisher_public_key=key.public_key, model_signing=model_signing, check_digests=check_digests(stmt, counted),
    )


def check_digests(stmt, verdicts: list) -> dict:
    """sha256 digest -> the `blake3:` digest a download of that file may be checked by instead:
    only when the publisher's statement declares one for every file and every verdict that
    counted repeats the subject's, i.e. each of those verifiers checked every declared BLAKE3
    digest against the bytes whose SHA-256 the publisher signed. Otherwise {} (SHA-256 it is)."""
    if not stmt.declares_blake3 or not verdicts:
        return {}
    if any(v.subject_blake3 != stmt.blake3[stmt.subject_digest] for v in verdicts):
        return {}
    return dict(stmt.blake3)


def verify_model_signing(bundle: dict, stmt, key: PublisherKey) -> dict | None:
    """The bundle's OpenSSF model_signing signature, if it has one: made by the key that signed the
    release and naming exactly its files. One that is there but fails is an altered bundle."""
    signature = bundle.get("model_signing")
    if signature is None:
        return None
    try:
        signed = ossf_signature.verify(signature, key.public_key)
        ossf_signature.check_covers(signed, stmt.parts)
    except AssayError as exc:
        raise VerificationError(f"the release's model_signing signature is not the publisher's: {exc}") from None
    return signature


def record_success(policy: TrustPolicy, verified: VerifiedBundle) -> None:
    """Remember a verified release's version and checkpoint (in memory: TrustPolicy.remembering saves)."""
    policy.record_version(verified.reference, verified.version)
    policy.record_checkpoint(verified.checkpoint_text, verified.checkpoint.size)
