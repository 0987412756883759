"""Who may sign releases where, learned from the log's key events (the one place that decides).

Four kinds of logged event feed it, each verified by the caller before it is applied:
- key-register (signed by the key itself): a key and the account that owns it;
- key-revoke (signed by the registry's log key): the key signs nothing from then on, and clients
  refuse every release it signed (a stolen key's old signatures are suspect too);
- namespace-role (signed by the log key): an account's role in a namespace from that entry on.
  A private namespace's events are blinded (assay/core/statements.py blind_namespace): this client
  reads them once it holds the namespace's role-blinding keys, which the registry gives readers in
  the bundles of its releases (oldest first; a key is replaced when a member leaves, and a
  "rekeyed" event blinded with the old key links it to the new). The keys first seen for a
  namespace are pinned: later ones must continue them, each linked by a logged event, or are
  refused (a second, hidden role history for the same name);
- verifier-revoke (signed by the log key): a verifier key signs no verdict from then on, and, as
  for a publisher key, clients count none it signed, before or after (a stolen key's old verdicts
  are suspect too); `assay log verify` refuses a verdict logged after it.

A key may sign a release logged at index i in namespace ns when it was registered before i, is
not revoked, and its owner's latest role in ns before i is owner or publisher. So an
organization with several publishers works without prompts, and a member removed at index r
signs nothing new there after r, while what they published before stays valid.

The state is plain JSON (kept in the client's state.json) and grows with the number of key
events, not with the log.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints

from assay.core import statements
from assay.core.errors import FormatError
from assay.core.statements import EVENT_ROLES, PUBLISHING_ROLES, REKEYED, Hex64, KeyEvent, RoleEvent, VerifierEvent
from assay.core.typed import Strict, load


def _role_entry(entry: list) -> list:
    if len(entry) != 2 or isinstance(entry[0], bool) or not isinstance(entry[0], int) or entry[0] < 0 or entry[1] not in EVENT_ROLES:
        raise ValueError(f"must be [log index, role] with a role of {', '.join(EVENT_ROLES)}")
    return entry


RoleEntry = Annotated[list[Any], AfterValidator(_role_entry)]
Index = Annotated[int, Field(ge=0)]


class _LearnedKey(Strict):
    owner: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    registered: Index
    revoked: Index | None
    time: str = ""
    reason: str = ""


class _RevokedVerifier(Strict):
    verifier: Annotated[str, StringConstraints(max_length=64)] = ""
    revoked: Index
    time: str = ""
    reason: str = ""


class _KeyStateDoc(Strict):
    """The key state as kept in state.json (see KeyState)."""
    through: Index = 0
    keys: dict[str, _LearnedKey] = {}
    verifiers: dict[str, _RevokedVerifier] = {}
    roles: dict[str, dict[str, list[RoleEntry]]] = {}
    blinds: dict[Annotated[str, StringConstraints(min_length=1, max_length=64)], Annotated[list[Hex64], Field(min_length=1, max_length=10_000)]] = {}


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


class KeyState:
    """keys: keyid -> {"owner", "registered", "revoked" (index or None), "time", "reason"};
    roles: namespace -> member -> [[index, role], ...] in log order; verifiers: verifier keyid ->
    {"verifier" (its name), "revoked" (index), "time", "reason"} for each revoked verifier key;
    blinds: namespace -> its pinned role-blinding keys (hex, oldest first), for private namespaces;
    through: the log size up to which every key event has been applied."""

    def __init__(self, data: dict | None = None):
        data = {} if data is None else data
        try:
            load(_KeyStateDoc, data, what="")
        except FormatError as exc:
            raise FormatError(f"invalid key state ({exc}): delete the client state file to learn it again from the log") from None
        self.through: int = data.get("through", 0)
        self.keys: dict[str, dict] = data.get("keys", {})
        self.roles: dict[str, dict[str, list]] = data.get("roles", {})
        self.verifiers: dict[str, dict] = data.get("verifiers", {})
        self.blinds: dict[str, list[str]] = data.get("blinds", {})

    def to_dict(self) -> dict:
        return {"through": self.through, "keys": self.keys, "roles": self.roles, "verifiers": self.verifiers, "blinds": self.blinds}

    # ------------------------------------------------------------ applying verified events

    def register(self, index: int, event: KeyEvent) -> None:
        self.keys.setdefault(event.keyid, {"owner": event.owner, "registered": index, "revoked": None, "time": "", "reason": ""})

    def revoke(self, index: int, event: KeyEvent) -> None:
        key = self.keys.get(event.keyid)
        if key is None:
            raise FormatError(f"log entry {index} revokes key {event.keyid}, which has no earlier registration in the log")
        if key["revoked"] is None or index < key["revoked"]:
            key.update(revoked=index, time=event.time, reason=event.reason or "")

    def revoke_verifier(self, index: int, event: VerifierEvent) -> None:
        """A verifier key revoked at log entry `index` (its registration need not be known: clients
        pin verifier keys themselves; the revocation alone decides)."""
        known = self.verifiers.get(event.keyid)
        if known is None or index < known["revoked"]:
            self.verifiers[event.keyid] = {"verifier": event.verifier, "revoked": index, "time": event.time, "reason": event.reason or ""}

    def set_role(self, index: int, event: RoleEvent) -> None:
        history = self.roles.setdefault(event.namespace, {}).setdefault(event.member, [])
        if history and history[-1][0] >= index:
            if any(i == index for i, _ in history):
                return  # applied already
            raise FormatError(f"log entry {index} is older than a role event already applied for {event.member} in {event.namespace}")
        history.append([index, event.role])

    def merge(self, other: "KeyState") -> None:
        """Add what `other` learned, in place. Both are prefixes of one verified log, so their
        union is too: every key, the earliest revocation of each, every role event."""
        for keyid, key in other.keys.items():
            mine = self.keys.setdefault(keyid, dict(key))
            if key.get("revoked") is not None and (mine.get("revoked") is None or key["revoked"] < mine["revoked"]):
                mine.update(revoked=key["revoked"], time=key.get("time", ""), reason=key.get("reason", ""))
        for keyid, revoked in other.verifiers.items():
            mine = self.verifiers.get(keyid)
            if mine is None or revoked["revoked"] < mine["revoked"]:
                self.verifiers[keyid] = dict(revoked)
        for ns, members in other.roles.items():
            for member, history in members.items():
                mine = self.roles.setdefault(ns, {}).setdefault(member, [])
                mine[:] = sorted({i: role for i, role in mine + [list(e) for e in history]}.items())
                mine[:] = [list(e) for e in mine]
        for ns, chain in other.blinds.items():
            mine = self.blinds.get(ns)
            if mine is None or (len(chain) > len(mine) and chain[:len(mine)] == mine):  # each was checked when pinned
                self.blinds[ns] = list(chain)
        self.through = max(self.through, other.through)

    def pin_blinding(self, namespace: str, keys: list[str]) -> None:
        """Take `keys` (oldest first) as `namespace`'s role-blinding keys: pinned on first sight;
        later they must continue what is pinned, each new key linked to the one before by a
        logged "rekeyed" event (so the log must have been caught up to the bundle's checkpoint).
        FormatError otherwise."""
        try:
            for key in keys:
                statements.blind_namespace(key, namespace)
        except FormatError:
            raise FormatError(f"the registry gives namespace '{namespace}' a malformed role-blinding key") from None
        pinned = self.blinds.get(namespace, [])
        if not keys or list(keys[:len(pinned)]) != pinned:
            raise FormatError(
                f"the registry gives namespace '{namespace}' role-blinding keys that do not continue the ones this client pinned: "
                "it may be showing this client a second, hidden history of who may publish there")
        for n, (old, new) in enumerate(zip(keys, keys[1:]), start=2):
            link = self.roles.get(statements.blind_namespace(old, namespace), {}).get(statements.blind_rekey(old, namespace, new), [])
            if not any(role == REKEYED for _, role in link):
                raise FormatError(f"the registry's role-blinding key {n} of namespace '{namespace}' has no logged 'rekeyed' event "
                                  "linking it to the key before it")
        self.blinds[namespace] = list(keys)

    # ------------------------------------------------------------ questions

    def history(self, namespace: str, member: str) -> list:
        """[[index, role], ...] of `member` in `namespace` in log order: the events that name them,
        and, with the namespace's pinned role-blinding key, the blinded ones."""
        history = list(self.roles.get(namespace, {}).get(member, []))
        for key in self.blinds.get(namespace, []):
            history += self.roles.get(statements.blind_namespace(key, namespace), {}).get(statements.blind_member(key, namespace, member), [])
        return sorted(history, key=lambda e: e[0])

    def role_at(self, namespace: str, member: str, index: int) -> str:
        """`member`'s role in `namespace` as of log entry `index` (the latest event before it)."""
        history = self.history(namespace, member)
        at = bisect.bisect_left([i for i, _ in history], index)
        return history[at - 1][1] if at else "none"

    def may_sign(self, keyid: str, namespace: str, index: int) -> Decision:
        key = self.keys.get(keyid)
        if key is None or key["registered"] >= index:
            return Decision(False, f"key {keyid} has no key-registration entry in the log before entry {index}")
        if key["revoked"] is not None:
            return Decision(False, f"publisher key {keyid} was revoked in log entry {key['revoked']}"
                                   f"{' on ' + key['time'] if key.get('time') else ''}: {key.get('reason') or 'no reason given'}")
        role = self.role_at(namespace, key["owner"], index)
        if role not in PUBLISHING_ROLES:
            history = self.history(namespace, key["owner"])
            removed = next((i for i, r in reversed(history) if i < index and r not in PUBLISHING_ROLES), None)
            why = (f"its owner {key['owner']} was made {role} there in log entry {removed}" if removed is not None and role != "none"
                   else f"its owner {key['owner']} was removed from it in log entry {removed}" if removed is not None
                   else f"its owner {key['owner']} has no publishing role there in the log")
            return Decision(False, f"key {keyid} may not sign releases in namespace '{namespace}' at log entry {index}: {why}")
        return Decision(True, f"key {keyid} of {key['owner']} ({role} of '{namespace}' in the log)")

    def verifier_revocation(self, keyid: str) -> dict | None:
        """{"verifier", "revoked" (log index), "time", "reason"} when the log revoked verifier key
        `keyid` (up to `through`), else None."""
        return self.verifiers.get(keyid)

    def may_count_verdict(self, keyid: str, index: int | None = None) -> Decision:
        """May a verdict signed by verifier key `keyid` (logged at `index`, when known) count? Not
        when the log revoked the key: after the revocation it signs nothing, and, as for a
        publisher key, the verdicts it signed before are suspect too (the key may have been stolen
        long before it was revoked)."""
        revoked = self.verifiers.get(keyid)
        if revoked is None:
            return Decision(True, f"verifier key {keyid} is not revoked in the log")
        name = f"verifier {revoked['verifier']!r} (key {keyid})" if revoked.get("verifier") else f"verifier key {keyid}"
        when = ("its verdict was logged after it, in entry " + str(index) if index is not None and index > revoked["revoked"]
                else "a revoked key's earlier verdicts do not count either" if index is not None
                else "none of its verdicts counts")
        return Decision(False, f"{name} was revoked in log entry {revoked['revoked']}"
                               f"{' on ' + revoked['time'] if revoked.get('time') else ''}: "
                               f"{revoked.get('reason') or 'no reason given'}; {when}")

    def publishers(self, namespace: str, at: int | None = None) -> dict[str, str]:
        """keyid -> owner for the keys that may sign in `namespace` at log entry `at` (default: now)."""
        at = self.through if at is None else at
        return {kid: k["owner"] for kid, k in self.keys.items() if self.may_sign(kid, namespace, at).allowed}
