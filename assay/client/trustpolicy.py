"""Client trust policy and state for one registry (DESIGN.md "Client trust policy").

Two JSON files in the registry's folder (the CLI passes ~/.config/assay/registries/<host_port>/):
- policy.json: what the user decided (edit it with `assay policy`, not by hand). Pinned verifier
  keys, the pinned log key (note vkey), the verification levels accepted (assay/core/levels.py), by
  default and per namespace, the publisher keys accepted per namespace ("log": every key the
  log says a publishing member of the namespace registered; "pinned": only the listed ones, which
  must pass the log's check too), the witnesses whose cosignatures a checkpoint needs and how
  many, and the checks a verdict must show as passed.
- state.json: what the client learned. Highest version seen per ns/model:tag (no rollback),
  the newest log checkpoint seen (for consistency proofs), the key events of the log up to the
  size it last caught up to (keys, their owners and revocations, namespace roles:
  assay/client/keystate.py), and every publisher key revocation it verified, saved the moment it was
  verified.
Both are written atomically (temp file + rename, mode 0600); a save merges with what another
process may have saved meanwhile, keeping the highest versions, the largest checkpoint, the
key state that reaches furthest and every revocation.

Example policy.json:
    {"format": 2, "registry": "https://assay.example", "verifier_keys": {"sha256:..": "<base64>"},
     "log": {"vkey": "assay.example/log+1a2b3c4d+AQ..."},
     "levels": {"default": ["converted", "reproduced", "original"], "namespaces": {"lab": ["unreproduced", ...]}},
     "publishers": {"default": "log", "namespaces": {"demo": {"mode": "pinned", "keys": ["sha256:.."]}}},
     "witnesses": {"keys": {"w1": "w1+0a1b2c3d+BA..."}, "required": 1},
     "checks": {"required": ["static", "probes"], "required_with_base": []}}
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Annotated, Any, Iterable, Literal

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from assay.core import checkpoint as cp
from assay.core import levels as lv
from assay.client.config import write_json_atomic
from assay.core.errors import AssayError, FormatError, VerificationError
from assay.core.keys import PublicKey, key_id, public_key_from_text
from assay.client.keystate import KeyState
from assay.core.names import is_name, parse_reference, validate_name
from assay.core.statements import CHECK_STEPS
from assay.core.typed import Digest, FieldError, Strict, load

POLICY_FILE = "policy.json"
STATE_FILE = "state.json"
FORMAT = 2
MODES = ("log", "pinned")
DEFAULT_REQUIRED = ["static", "probes"]
# A cosignature older than this does not count: a registry could otherwise serve an old, honestly
# cosigned checkpoint from before an entry it wants to hide. Registries refresh cosignatures
# well within it (ASSAY_WITNESS_REFRESH_S).
DEFAULT_WITNESS_MAX_AGE_S = 3600
# A quant's rebuild is what the level `reproduced` says (with its provenance, which the client
# demands for that level); requiring the reproduce check on top would refuse an `unreproduced`
# quant that the user accepted for a namespace.
DEFAULT_REQUIRED_WITH_BASE: list[str] = []
_ALIASES = {"reproduced": "reproduce", "probes_passed": "probes"}

try:
    import fcntl
except ImportError:  # pragma: no cover - non-POSIX
    fcntl = None


def _write_json(path: Path, data: dict) -> None:
    write_json_atomic(path, data)


def _read_json(path: Path) -> dict | None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError is a ValueError too
        raise FormatError(f"{path} is not valid JSON ({exc}); fix or delete it") from None
    if not isinstance(data, dict):
        raise FormatError(f"{path} must hold a JSON object")
    return data


@contextlib.contextmanager
def _locked(directory: Path):
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if fcntl is None:
        yield
        return
    with open(directory / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _migrate_policy(policy: object) -> dict:
    """A format-1 policy in format 2: trust-on-first-use becomes the log's key sets, and
    allow_originals becomes the accepted levels."""
    if not isinstance(policy, dict) or policy.get("format") != 1:
        return policy  # type: ignore[return-value]
    policy = json.loads(json.dumps(policy))
    pubs = policy.get("publishers") if isinstance(policy.get("publishers"), dict) else {}
    if pubs.get("default") == "tofu":
        pubs["default"] = "log"
    for entry in (pubs.get("namespaces") or {}).values():
        if isinstance(entry, dict) and entry.get("mode") == "tofu":
            entry["mode"] = "log"
    checks = policy.get("checks") if isinstance(policy.get("checks"), dict) else {}
    accepted = list(lv.DEFAULT_ACCEPTED)
    if checks.pop("allow_originals", True) is False:
        accepted.remove(lv.ORIGINAL)
    policy.setdefault("levels", {"default": accepted, "namespaces": {}})
    policy.setdefault("witnesses", {"keys": {}, "required": 0})
    policy["format"] = FORMAT
    return policy


def _namespaces(value: dict) -> dict:
    for ns in value:
        if not is_name(ns):
            raise FieldError(ns, "is not a namespace name (1-64 lowercase letters, digits, '.', '_' or '-')")
    return value


def _check_names(names: list[str]) -> list[str]:
    normalized = list(dict.fromkeys(_ALIASES.get(n, n) for n in names))
    unknown = [n for n in normalized if n not in CHECK_STEPS]
    if unknown:
        raise ValueError(f"names {', '.join(map(repr, unknown))}; the checks are {', '.join(CHECK_STEPS)}")
    return normalized


def _log_vkey(value: str) -> str:
    try:
        cp.parse_verifier_key(value)
    except FormatError as exc:
        raise ValueError(str(exc)) from None
    return value


def _pinned_keys(keys: dict[str, str]) -> dict[str, str]:
    for kid, text in keys.items():
        try:
            pk = public_key_from_text(text)
        except FormatError:
            raise FieldError(kid, "is not a public key's text form (base64 of a 32-byte Ed25519 key or of a P-256 "
                                  "SubjectPublicKeyInfo)") from None
        if key_id(pk) != kid:
            raise FieldError(kid, f"does not match its public key, whose id is {key_id(pk)}")
    return keys


LevelList = Annotated[list[lv.LevelName], Field(min_length=1)]
CheckNames = Annotated[list[str], AfterValidator(_check_names)]


class _Log(Strict):
    vkey: Annotated[str, AfterValidator(_log_vkey)]


class _Levels(Strict):
    default: LevelList
    namespaces: Annotated[dict[str, LevelList], AfterValidator(_namespaces)] = {}


class _NamespacePublishers(Strict):
    mode: Literal[MODES] = None  # type: ignore[valid-type, assignment]  (absent: the default mode)
    keys: list[Digest] = []  # key ids


class _Publishers(Strict):
    default: Literal[MODES]  # type: ignore[valid-type]
    namespaces: Annotated[dict[str, _NamespacePublishers], AfterValidator(_namespaces)] = {}


class _Witnesses(Strict):
    keys: dict[str, str]
    required: Annotated[int, Field(ge=0)]
    max_age_s: Annotated[int, Field(ge=1)] = DEFAULT_WITNESS_MAX_AGE_S

    @model_validator(mode="after")
    def _keys_and_quorum(self) -> "_Witnesses":
        from assay.core.cosignature import parse_witness_vkey

        for name, vkey in self.keys.items():
            try:
                parsed_name, _ = parse_witness_vkey(vkey)
            except FormatError as exc:
                raise FieldError(f"keys.{name}", str(exc)) from None
            if parsed_name != name:
                raise FieldError(f"keys.{name}", f"is a key named {parsed_name!r}")
        if self.required > len(self.keys):
            raise FieldError("required", f"is {self.required}, more than the {len(self.keys)} witness key(s) listed")
        return self


class _Checks(Strict):
    required: CheckNames = DEFAULT_REQUIRED
    required_with_base: CheckNames = DEFAULT_REQUIRED_WITH_BASE


class _PolicyDoc(Strict):
    """policy.json (format 2): see this module's docstring."""
    format: Literal[FORMAT]  # type: ignore[valid-type]
    registry: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    verifier_keys: Annotated[dict[str, str], Field(min_length=1), AfterValidator(_pinned_keys)]
    verifiers_required: Annotated[int, Field(ge=1)] = 1
    log: _Log
    levels: _Levels
    publishers: _Publishers
    witnesses: _Witnesses = _Witnesses(keys={}, required=0)
    checks: _Checks

    @model_validator(mode="after")
    def _quorum(self) -> "_PolicyDoc":
        if self.verifiers_required > len(self.verifier_keys):
            raise FieldError("verifiers_required", f"is {self.verifiers_required}, more than the {len(self.verifier_keys)} "
                                                   "pinned verifier key(s)")
        return self


class _Revocation(Strict):
    index: Annotated[int, Field(ge=0)]
    time: str = ""
    reason: str = ""


class _SeenCheckpoint(Strict):
    size: Annotated[int, Field(ge=0)]
    text: str


def _references(versions: dict[str, int]) -> dict[str, int]:
    for ref in versions:
        try:
            parse_reference(ref)
        except FormatError:
            raise FieldError(ref, "is not a reference namespace/model:tag") from None
    return versions


class _StateDoc(Strict):
    """state.json: what the client learned (see this module's docstring)."""
    format: Literal[FORMAT]  # type: ignore[valid-type]
    versions: Annotated[dict[str, Annotated[int, Field(ge=1)]], AfterValidator(_references)] = {}
    checkpoint: _SeenCheckpoint | None = None
    revoked_keys: dict[str, _Revocation] = {}
    keys: dict[str, Any] = {}  # assay/client/keystate.py reads and checks it


class TrustPolicy:
    """A registry's trust policy (policy.json) and client state (state.json)."""

    def __init__(self, directory: str | Path, policy: dict, state: dict | None = None):
        self.directory = Path(directory)
        self.policy = _migrate_policy(policy)
        self.state = state or {"format": FORMAT, "versions": {}, "checkpoint": None, "revoked_keys": {}, "keys": {}}
        self._validate()

    # ------------------------------------------------------------ files

    @property
    def policy_path(self) -> Path:
        return self.directory / POLICY_FILE

    @property
    def state_path(self) -> Path:
        return self.directory / STATE_FILE

    @classmethod
    def create(
        cls,
        directory: str | Path,
        *,
        registry_url: str,
        verifier_keys: dict[str, str],
        log_vkey: str,
        publisher_mode: str = "log",
        required_checks: Iterable[str] | None = None,
        required_with_base: Iterable[str] | None = None,
        levels: Iterable[str] | None = None,
        witnesses: dict[str, str] | None = None,
        witnesses_required: int = 0,
    ) -> "TrustPolicy":
        """A new policy (not yet saved). Keeps the client state already in `directory`, if any."""
        policy = {
            "format": FORMAT,
            "registry": registry_url,
            "verifier_keys": dict(verifier_keys),
            "log": {"vkey": log_vkey},
            "levels": {"default": list(lv.DEFAULT_ACCEPTED if levels is None else levels), "namespaces": {}},
            "publishers": {"default": publisher_mode, "namespaces": {}},
            "witnesses": {"keys": dict(witnesses or {}), "required": witnesses_required},
            "checks": {
                "required": list(DEFAULT_REQUIRED if required_checks is None else required_checks),
                "required_with_base": list(DEFAULT_REQUIRED_WITH_BASE if required_with_base is None else required_with_base),
            },
        }
        directory = Path(directory)
        state = _read_json(directory / STATE_FILE)
        try:
            previous = _read_json(directory / POLICY_FILE)
        except FormatError:
            previous = None
        if state and (not previous or (previous.get("log") or {}).get("vkey") != log_vkey):
            state["checkpoint"] = None  # a checkpoint signed by another log key is of no use,
            state["keys"] = {}  # nor what was learned from that log
        if previous and (previous.get("log") or {}).get("vkey") == log_vkey:
            try:  # re-trusting the same registry keeps the user's own decisions
                kept = _migrate_policy(previous)
                for name in ("levels", "publishers", "witnesses", "checks"):
                    if name in kept:
                        policy[name] = kept[name]
            except AssayError:
                pass
        return cls(directory, policy, state)

    @classmethod
    def load(cls, directory: str | Path) -> "TrustPolicy":
        directory = Path(directory)
        policy = _read_json(directory / POLICY_FILE)
        if policy is None:
            raise AssayError(f"no trust policy at {directory / POLICY_FILE}: run `assay trust add URL` first")
        return cls(directory, policy, _read_json(directory / STATE_FILE))

    def save(self) -> None:
        """Write both files atomically, merging state another process saved meanwhile."""
        with _locked(self.directory):
            on_disk = _read_json(self.state_path)
            if on_disk is not None:
                self._merge_state(on_disk)
            self.state["keys"] = self.key_state.to_dict()
            self._validate()  # never write a policy this client could not read back
            _write_json(self.policy_path, self.policy)
            _write_json(self.state_path, self.state)

    @contextlib.contextmanager
    def remembering(self):
        """The one place where what a verification learned is saved. Verifying only learns in memory
        (the log's key events caught up, a revocation found in a bundle, a checkpoint, a version);
        this writes it once, afterwards, whether the verification passed or failed: a revocation
        the client verified must outlive the pull it stopped."""
        try:
            yield self
        except BaseException:
            try:
                self.save()
            except (AssayError, OSError):
                pass  # the verification's own error is the one to report
            raise
        self.save()

    def _merge_state(self, other: dict) -> None:
        try:
            other = TrustPolicy(self.directory, self.policy, other).state
        except AssayError:
            return  # a damaged state file on disk is replaced by ours
        for ref, version in other["versions"].items():
            self.state["versions"][ref] = max(version, self.state["versions"].get(ref, 0))
        try:
            self.key_state.merge(KeyState(other.get("keys")))  # in place: a catch-up in progress holds this object
        except FormatError:
            pass
        for keyid, entry in other["revoked_keys"].items():
            mine = self.state["revoked_keys"].get(keyid)
            if mine is None or entry["index"] < mine["index"]:
                self.state["revoked_keys"][keyid] = entry
        theirs, mine = other.get("checkpoint"), self.state.get("checkpoint")
        if theirs and (not mine or theirs["size"] > mine["size"]):
            self.state["checkpoint"] = theirs

    # ------------------------------------------------------------ validation

    def _bad(self, what: str) -> FormatError:
        return FormatError(f"invalid trust policy {self.policy_path}: {what}")

    def _validate(self) -> None:
        """The policy and state as their typed models (unknown fields refused); keeps the parsed keys."""
        if not isinstance(self.policy, dict) or self.policy.get("format") != FORMAT:
            raise self._bad(f"unsupported format (expected \"format\": {FORMAT})")
        doc = load(_PolicyDoc, self.policy, what=f"invalid trust policy {self.policy_path}:")
        self._verifier_keys: dict[str, PublicKey] = {kid: public_key_from_text(text) for kid, text in doc.verifier_keys.items()}
        self._log_name, self._log_key = cp.parse_verifier_key(doc.log.vkey)
        self._required = list(doc.checks.required)
        self._required_with_base = list(doc.checks.required_with_base)
        s = self.state
        if isinstance(s, dict):
            s.pop("tofu", None)  # format 1: keys pinned on first use, replaced by the log's key sets
            s["format"] = FORMAT
        try:
            load(_StateDoc, s, what="")
            loaded = KeyState(s.get("keys", {}))
        except FormatError as exc:
            raise FormatError(f"invalid client state {self.state_path} ({exc}): delete it to start over "
                              "(rollback and log history will be forgotten)") from None
        for name in ("versions", "revoked_keys", "keys"):
            s.setdefault(name, {})
        s.setdefault("checkpoint", None)
        if not hasattr(self, "key_state"):  # a save re-validates: the live state object stays
            self.key_state = loaded

    # ------------------------------------------------------------ keys

    def verifier_keys(self) -> dict[str, PublicKey]:
        return dict(self._verifier_keys)

    def log_vkey(self) -> str:
        return self.policy["log"]["vkey"]

    def log_name(self) -> str:
        return self._log_name

    def log_public_key(self) -> "PublicKey":
        return self._log_key

    def log_keyid(self) -> str:
        return key_id(self._log_key)

    def _namespace_entry(self, namespace: str) -> tuple[str, list[str]]:
        pubs = self.policy["publishers"]
        entry = pubs.get("namespaces", {}).get(namespace, {})
        return entry.get("mode", pubs["default"]), list(entry.get("keys", []))

    def publisher_key_allowed(self, namespace: str, keyid: str, log_index: int) -> tuple[bool, str]:
        """May `keyid` sign the release logged at `log_index` in `namespace`? The log's key events
        (caught up first) decide; a namespace set to "pinned" also needs the key listed."""
        decision = self.key_state.may_sign(keyid, namespace, log_index)
        if not decision.allowed:
            return False, decision.reason
        mode, listed = self._namespace_entry(namespace)
        if mode == "pinned" and keyid not in listed:
            return False, (f"publisher key {keyid} is not among the keys this client allows for namespace '{namespace}' "
                           f"({', '.join(listed) or 'none'}); to allow it: assay policy allow {namespace} {keyid}")
        return True, decision.reason

    # ------------------------------------------------------------ editing (assay policy)

    def set_publisher_mode(self, mode: str, namespace: str | None = None) -> None:
        if mode not in MODES:
            raise FormatError(f"unknown publisher mode {mode!r}: use log or pinned")
        pubs = self.policy["publishers"]
        if namespace is None:
            pubs["default"] = mode
        else:
            validate_name(namespace, "namespace")
            pubs.setdefault("namespaces", {}).setdefault(namespace, {})["mode"] = mode

    def allow_publisher(self, namespace: str, keyid: str) -> None:
        """Only listed keys (this one among them) may publish in `namespace`, if the log agrees."""
        validate_name(namespace, "namespace")
        if not (isinstance(keyid, str) and keyid.startswith("sha256:") and len(keyid) == 71):
            raise FormatError(f"{keyid!r} is not a key id (sha256:<64 hex>)")
        entry = self.policy["publishers"].setdefault("namespaces", {}).setdefault(namespace, {})
        entry["mode"] = "pinned"
        keys = entry.setdefault("keys", [])
        if keyid not in keys:
            keys.append(keyid)

    def accepted_levels(self, namespace: str | None = None) -> list[str]:
        levels = self.policy["levels"]
        return list(levels.get("namespaces", {}).get(namespace, levels["default"]) if namespace else levels["default"])

    def set_levels(self, names: list[str], namespace: str | None = None) -> None:
        names = lv.parse_level_list(names)
        if namespace is None:
            self.policy["levels"]["default"] = names
        else:
            validate_name(namespace, "namespace")
            self.policy["levels"].setdefault("namespaces", {})[namespace] = names

    def allow_level(self, namespace: str, level: str) -> None:
        lv.check_level(level, "the level to allow")
        names = self.accepted_levels(namespace)
        self.set_levels(names + [level] if level not in names else names, namespace)

    def level_allowed(self, namespace: str, level: "lv.Level") -> tuple[bool, str]:
        accepted = self.accepted_levels(namespace)
        ok, why = lv.accepts(accepted, level)
        if ok:
            return True, why
        missing = level.name if level.name not in accepted else level.origin
        return False, (f"{why}, and this client accepts {', '.join(accepted)} for namespace '{namespace}'; "
                       f"to accept {missing} there: assay policy allow {namespace} {missing}")

    def verifiers_required(self) -> int:
        """How many of the pinned verifiers must each have signed a PASSED verdict on a release."""
        return self.policy.get("verifiers_required", 1)

    def set_verifiers_required(self, count: int) -> None:
        if not 1 <= count <= len(self._verifier_keys):
            raise FormatError(f"verifiers required must be from 1 to the {len(self._verifier_keys)} verifier key(s) this client pins "
                              f"(pin more with `assay policy verifier add NAME`), not {count}")
        self.policy["verifiers_required"] = count

    def pin_verifier(self, keyid: str, public_key_text: str) -> None:
        public = public_key_from_text(public_key_text)
        if key_id(public) != keyid:
            raise FormatError(f"verifier key id {keyid} does not match its public key ({key_id(public)})")
        self.policy["verifier_keys"][keyid] = public_key_text
        self._verifier_keys[keyid] = public

    def unpin_verifier(self, keyid: str) -> None:
        if keyid not in self._verifier_keys:
            raise FormatError(f"verifier key {keyid} is not pinned in this policy")
        if len(self._verifier_keys) == 1:
            raise FormatError("this is the only verifier key this client pins: pin another first")
        del self.policy["verifier_keys"][keyid]
        del self._verifier_keys[keyid]
        self.policy["verifiers_required"] = min(self.verifiers_required(), len(self._verifier_keys))

    def witness_keys(self) -> dict[str, str]:
        return dict(self.policy.get("witnesses", {}).get("keys", {}))

    def witnesses_required(self) -> int:
        return self.policy.get("witnesses", {}).get("required", 0)

    def witness_max_age_s(self) -> int:
        return self.policy.get("witnesses", {}).get("max_age_s", DEFAULT_WITNESS_MAX_AGE_S)

    def set_witness_max_age(self, seconds: int) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 1:
            raise FormatError(f"the witness cosignature age limit must be a positive number of seconds, not {seconds!r}")
        self.policy.setdefault("witnesses", {"keys": {}, "required": 0})["max_age_s"] = seconds

    def add_witness(self, vkey: str) -> str:
        from assay.core.cosignature import parse_witness_vkey

        name, _ = parse_witness_vkey(vkey)
        self.policy.setdefault("witnesses", {"keys": {}, "required": 0})["keys"][name] = vkey
        return name

    def remove_witness(self, name: str) -> None:
        w = self.policy.setdefault("witnesses", {"keys": {}, "required": 0})
        if name not in w["keys"]:
            raise FormatError(f"no witness named {name!r} in this policy")
        del w["keys"][name]
        w["required"] = min(w["required"], len(w["keys"]))

    def set_witnesses_required(self, count: int) -> None:
        w = self.policy.setdefault("witnesses", {"keys": {}, "required": 0})
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= len(w["keys"]):
            raise FormatError(f"cannot require {count} witness cosignatures: this policy names {len(w['keys'])} witness(es) "
                              "(add one with `assay policy witness add VKEY`)")
        w["required"] = count

    # ------------------------------------------------------------ checks

    def required_checks(self, has_base: bool) -> list[str]:
        return list(dict.fromkeys(self._required + (self._required_with_base if has_base else [])))

    def required_checks_satisfied(self, checks: list[dict], has_base: bool) -> tuple[bool, str]:
        """Did the verdict's checks pass every check this policy requires?"""
        by_name = {c.get("name"): c for c in checks if isinstance(c, dict)}
        for name in self.required_checks(has_base):
            check = by_name.get(name)
            if check is None:
                return False, f"the verdict has no '{name}' check, which the trust policy requires"
            if check.get("result") != "passed":
                summary = check.get("summary") or "no summary"
                return False, f"required check '{name}' did not pass ({check.get('result')}): {summary}"
        return True, "all required checks passed: " + ", ".join(self.required_checks(has_base))

    # ------------------------------------------------------------ rollback

    def highest_version(self, reference: str) -> int | None:
        parse_reference(reference)
        return self.state["versions"].get(reference)

    def check_version_not_rolled_back(self, reference: str, version: int) -> None:
        seen = self.highest_version(reference)
        if seen is not None and version < seen:
            raise VerificationError(f"rollback: {reference} is at version {seen} here, the registry now serves version {version}")

    def record_version(self, reference: str, version: int) -> None:
        self.check_version_not_rolled_back(reference, version)
        self.state["versions"][reference] = version

    # ------------------------------------------------------------ log checkpoint

    def newest_checkpoint(self) -> str | None:
        c = self.state.get("checkpoint")
        return c["text"] if c else None

    def newest_checkpoint_size(self) -> int | None:
        c = self.state.get("checkpoint")
        return c["size"] if c else None

    def record_checkpoint(self, text: str, size: int) -> None:
        """Keep `text` if it is at least as new as the stored one (callers verified it first)."""
        current = self.newest_checkpoint_size()
        if current is None or size >= current:
            self.state["checkpoint"] = {"size": size, "text": text}

    # ------------------------------------------------------------ revocations seen in the log

    def record_revocation(self, keyid: str, index: int, time: str = "", reason: str = "") -> None:
        """Remember that log entry `index` revokes `keyid` (callers verified the entry and its inclusion)."""
        known = self.state["revoked_keys"].get(keyid)
        if known is None or index < known["index"]:
            self.state["revoked_keys"][keyid] = {"index": index, "time": time, "reason": reason}
        key = self.key_state.keys.get(keyid)
        if key is not None and (key["revoked"] is None or index < key["revoked"]):
            key.update(revoked=index, time=time, reason=reason)

    def known_revocation(self, keyid: str) -> dict | None:
        """{"index", "time", "reason"} of a revocation of `keyid` this client found in the log, or None."""
        known = self.state["revoked_keys"].get(keyid)
        return dict(known) if known else None
