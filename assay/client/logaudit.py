"""What a transparency-log entry is, and who may have signed it (the one verifier of log entries).

A leaf is the canonical JSON of a DSSE envelope; the registry's `kind` label is NOT part of the
leaf hash, so it is never trusted. The kind is read from the signed statement itself (its
predicateType, and for key events the `event` field), and it decides the signer:

- verdict, provenance: a pinned verifier key, not revoked by an EARLIER verifier-revoke entry.
- key-register: the key being registered (proof of possession); the statement names the key.
- key-revoke, namespace-role, verifier-revoke: the registry's pinned log key. A private
  namespace's role events are blinded (no names); they count only for a client holding that
  namespace's role-blinding key (assay/client/keystate.py).
- verifier-register: the verifier key being registered (proof of possession).
- sealed: the registry's log key. It stands for a private namespace's release, verdict or
  provenance and commits to it (salted hash) without revealing it; a reader of that release
  checks the commitment (assay/client/bundle_verify.py), a log auditor can check only the signature.
- release: a publisher key with an EARLIER key-registration entry in the log, no earlier
  revocation, whose owner held a publishing role in the release's namespace (assay/client/keystate.py).
  A registry that signs "releases" with a key of its own making cannot log them unnoticed: the
  key has no registration signed by itself before the release.

`verify_key_registration` / `verify_key_revocation` are also what `assay pull` uses on the key
events a release bundle carries (assay/client/bundle_verify.py).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from assay.core import dsse, keys, statements
from assay.core.errors import AssayError, FormatError, VerificationError
from assay.client.keystate import KeyState
from assay.client.trustpolicy import TrustPolicy

KINDS = ("release", "verdict", "provenance", "key-register", "key-revoke", "namespace-role", "verifier-register", "verifier-revoke", "sealed")
_BY_PREDICATE = {
    statements.RELEASE_PREDICATE: "release",
    statements.VERDICT_PREDICATE: "verdict",
    statements.PROVENANCE_PREDICATE: "provenance",
}


def entry_kind(envelope: dict) -> str:
    """The kind of a logged envelope, from its signed payload (FormatError if none fits)."""
    parsed = dsse.parse_envelope(envelope)
    if parsed.payload_type != statements.PAYLOAD_TYPE:
        raise FormatError(f"payloadType is {parsed.payload_type!r}, not an in-toto statement")
    stmt = statements.parse_statement(parsed.payload)
    if stmt.predicate_type == statements.KEY_EVENT_PREDICATE:
        return "key-" + statements.parse_key_event(parsed.payload).event
    if stmt.predicate_type == statements.ROLE_PREDICATE:
        return "namespace-role"
    if stmt.predicate_type == statements.SEALED_PREDICATE:
        return "sealed"
    if stmt.predicate_type == statements.VERIFIER_EVENT_PREDICATE:
        return "verifier-" + statements.parse_verifier_event(parsed.payload).event
    kind = _BY_PREDICATE.get(stmt.predicate_type)
    if kind is None:
        raise FormatError(f"predicateType {stmt.predicate_type!r} is not one the log may hold")
    return kind


def verify_key_registration(envelope: dict) -> tuple[statements.KeyEvent, keys.Ed25519PublicKey]:
    """A key-register event signed by the key it registers; returns the event and the key."""
    event = statements.parse_key_event_envelope_unverified(envelope)
    if event.event != "register":
        raise VerificationError(f"the key registration is a {event.event!r} event")
    public_key = keys.public_key_from_text(event.public_key)  # parse_key_event checked keyid = hash(key)
    dsse.verify_envelope(envelope, {event.keyid: public_key})
    return event, public_key


def verify_key_revocation(envelope: dict, policy: TrustPolicy) -> statements.KeyEvent:
    """A key-revoke event signed by the pinned log key."""
    event = statements.parse_key_event_envelope_unverified(envelope)
    if event.event != "revoke":
        raise VerificationError(f"the key revocation is a {event.event!r} event")
    dsse.verify_envelope(envelope, {policy.log_keyid(): policy.log_public_key()})
    return event


def verify_verifier_event(envelope: dict, policy: TrustPolicy) -> statements.VerifierEvent:
    """A verifier key's registration (signed by that key) or revocation (signed by the log key)."""
    parsed = dsse.parse_envelope(envelope)
    event = statements.parse_verifier_event(parsed.payload)
    if event.event == "register":
        dsse.verify_envelope(envelope, {event.keyid: keys.public_key_from_text(event.public_key)})
    else:
        dsse.verify_envelope(envelope, {policy.log_keyid(): policy.log_public_key()})
    return event


def verify_role_event(envelope: dict, policy: TrustPolicy) -> statements.RoleEvent:
    """A namespace-role event signed by the pinned log key."""
    return statements.parse_role_event(dsse.verify_envelope(envelope, {policy.log_keyid(): policy.log_public_key()}).payload)


def apply_key_event(state: KeyState, index: int, envelope: dict, policy: TrustPolicy) -> str:
    """Verify a key event and apply it to `state`; returns its kind (FormatError for other kinds).
    A verified revocation is recorded in the policy's state (TrustPolicy.remembering saves it, whatever follows)."""
    kind = entry_kind(envelope)
    if kind == "key-register":
        state.register(index, verify_key_registration(envelope)[0])
    elif kind == "key-revoke":
        event = verify_key_revocation(envelope, policy)
        state.revoke(index, event)
        policy.record_revocation(event.keyid, index, event.time, event.reason or "")
    elif kind == "namespace-role":
        state.set_role(index, verify_role_event(envelope, policy))
    elif kind == "verifier-revoke":
        state.revoke_verifier(index, verify_verifier_event(envelope, policy))
    else:
        raise FormatError(f"log entry {index} is a {kind}, not a key event")
    return kind


@dataclass
class LogAuditor:
    """Checks entries in log order, applying key events to a KeyState as it goes. A replay that
    does not start at 0 first feeds it the key events before its start (`assay log verify` takes
    them from the signed key-event index). Every revocation is recorded in the policy's state and
    saved as soon as it verifies."""

    policy: TrustPolicy
    keys: KeyState = field(default_factory=KeyState)
    public_keys: dict = field(default_factory=dict)
    key_event_indices: list = field(default_factory=list)

    def check(self, index: int, data: bytes, served_kind: str | None = None) -> str:
        """Verify entry `index` (its canonical bytes); return its kind. VerificationError if bad."""
        kind = "unknown"
        try:
            envelope = json.loads(data)
            kind = entry_kind(envelope)
            if served_kind is not None and served_kind != kind:
                raise VerificationError(f"the registry labels it {served_kind!r}, but its signed statement is a {kind}")
            if kind == "key-register":  # verified once: the key state and the public key both come from it
                event, public_key = verify_key_registration(envelope)
                self.keys.register(index, event)
                self.public_keys.setdefault(event.keyid, public_key)
                self.key_event_indices.append(index)
            elif kind in ("key-revoke", "namespace-role", "verifier-revoke"):
                apply_key_event(self.keys, index, envelope, self.policy)
                self.key_event_indices.append(index)
            else:
                getattr(self, "_" + kind.replace("-", "_"))(index, envelope)
        except (AssayError, KeyError, IndexError, TypeError, ValueError) as exc:
            raise VerificationError(f"log entry {index} ({kind}) does not verify: {exc}") from None
        return kind

    def revocations(self) -> dict[str, dict]:
        return {kid: k for kid, k in self.keys.keys.items() if k.get("revoked") is not None}

    # ------------------------------------------------------------ per kind

    def _by_verifier(self, index: int, envelope: dict, what: str) -> bytes:
        """The payload of a verdict or provenance signed by a pinned verifier key that the log had
        not revoked before entry `index` (one logged after its key's revocation is refused)."""
        verified = dsse.verify_envelope(envelope, self.policy.verifier_keys())
        revoked = self.keys.verifier_revocation(verified.keyid)
        if revoked is not None and revoked["revoked"] < index:
            raise VerificationError(f"it is a {what} signed by verifier key {verified.keyid} ({revoked.get('verifier') or 'unnamed'}), "
                                    f"which was revoked in log entry {revoked['revoked']}, before this entry")
        return verified.payload

    def _verdict(self, index: int, envelope: dict) -> None:
        statements.parse_verdict_statement(self._by_verifier(index, envelope, "verdict"))

    def _sealed(self, index: int, envelope: dict) -> None:
        statements.parse_sealed_entry(dsse.verify_envelope(envelope, {self.policy.log_keyid(): self.policy.log_public_key()}).payload)

    def _verifier_register(self, index: int, envelope: dict) -> None:
        verify_verifier_event(envelope, self.policy)

    def _provenance(self, index: int, envelope: dict) -> None:
        statements.parse_provenance_statement(self._by_verifier(index, envelope, "provenance"))

    def _release(self, index: int, envelope: dict) -> None:
        keyids = list(dict.fromkeys(keyid for keyid, _ in dsse.parse_envelope(envelope).signatures))
        registered = [k for k in keyids if k in self.keys.keys and self.keys.keys[k]["registered"] < index]
        if not registered:
            raise VerificationError(
                f"it is signed by key {', '.join(keyids)}, which has no earlier key-registration entry in the log: "
                "a release signed by a key its owner never registered (forged by the registry?)"
            )
        valid = {k: self.public_keys[k] for k in registered
                 if self.keys.keys[k]["revoked"] is None or self.keys.keys[k]["revoked"] > index}
        if not valid:
            k = registered[0]
            raise VerificationError(f"it is signed by key {k}, which was revoked in log entry {self.keys.keys[k]['revoked']}, before this release")
        verified = dsse.verify_envelope(envelope, valid)
        stmt = statements.parse_release_statement(verified.payload)
        owner = self.keys.keys[verified.keyid]["owner"]
        role = self.keys.role_at(stmt.namespace, owner, index)
        if role not in statements.PUBLISHING_ROLES:
            raise VerificationError(f"it is signed by key {verified.keyid} of {owner}, whose role in namespace "
                                    f"'{stmt.namespace}' at that point of the log is {role!r}, not owner or publisher")
