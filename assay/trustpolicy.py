"""Client trust policy and state for one registry (DESIGN.md "Client trust policy").

Two JSON files in the registry's folder (the CLI passes ~/.config/assay/registries/<host_port>/):
- policy.json: what the user decided. Pinned verifier keys, the pinned log key (note vkey),
  publisher key trust per namespace ("pinned": listed key ids only; "tofu": the first key seen
  for the namespace, plus any listed), and the checks a verdict must show as passed.
- state.json: what the client learned. Highest version seen per ns/model:tag (no rollback),
  the newest log checkpoint seen (for consistency proofs), keys pinned on first use, and the
  publisher key revocations found in the log by `assay log verify` (signed by the log key and
  proven to be in it), so a registry that later hides a revocation from a bundle is caught.
Both are written atomically (temp file + rename, mode 0600); a save merges with what another
process may have saved meanwhile, keeping the highest versions, the largest checkpoint and
every revocation.

Example policy.json:
    {"format": 1, "registry": "https://assay.example", "verifier_keys": {"sha256:..": "<base64>"},
     "log": {"vkey": "assay.example/log+1a2b3c4d+AQ..."},
     "publishers": {"default": "tofu", "namespaces": {"demo": {"mode": "pinned", "keys": ["sha256:.."]}}},
     "checks": {"required": ["static", "probes"], "required_with_base": ["reproduce"], "allow_originals": true}}
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterable

from . import checkpoint as cp
from .errors import AssayError, FormatError, VerificationError
from .keys import Ed25519PublicKey, key_id, public_key_from_text
from .names import parse_reference, validate_name

POLICY_FILE = "policy.json"
STATE_FILE = "state.json"
FORMAT = 1
MODES = ("tofu", "pinned")
DEFAULT_REQUIRED = ["static", "probes"]
DEFAULT_REQUIRED_WITH_BASE = ["reproduce"]
_ALIASES = {"reproduced": "reproduce", "probes_passed": "probes"}

try:
    import fcntl
except ImportError:  # pragma: no cover - non-POSIX
    fcntl = None


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_json(path: Path) -> dict | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except ValueError as exc:
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


def _normalize_checks(names: object, where: str) -> list[str]:
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise FormatError(f"invalid trust policy: {where} must be a list of check names")
    return list(dict.fromkeys(_ALIASES.get(n, n) for n in names))


class TrustPolicy:
    """A registry's trust policy (policy.json) and client state (state.json)."""

    def __init__(self, directory: str | Path, policy: dict, state: dict | None = None):
        self.directory = Path(directory)
        self.policy = policy
        self.state = state or {"format": FORMAT, "versions": {}, "tofu": {}, "checkpoint": None, "revoked_keys": {}}
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
        publisher_mode: str = "tofu",
        required_checks: Iterable[str] | None = None,
        required_with_base: Iterable[str] | None = None,
        allow_originals: bool = True,
    ) -> "TrustPolicy":
        """A new policy (not yet saved). Keeps the client state already in `directory`, if any."""
        policy = {
            "format": FORMAT,
            "registry": registry_url,
            "verifier_keys": dict(verifier_keys),
            "log": {"vkey": log_vkey},
            "publishers": {"default": publisher_mode, "namespaces": {}},
            "checks": {
                "required": list(DEFAULT_REQUIRED if required_checks is None else required_checks),
                "required_with_base": list(DEFAULT_REQUIRED_WITH_BASE if required_with_base is None else required_with_base),
                "allow_originals": allow_originals,
            },
        }
        directory = Path(directory)
        state = _read_json(directory / STATE_FILE)
        try:
            previous = _read_json(directory / POLICY_FILE)
        except FormatError:
            previous = None
        if state and (not previous or (previous.get("log") or {}).get("vkey") != log_vkey):
            state["checkpoint"] = None  # a checkpoint signed by another log key is of no use
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
            _write_json(self.policy_path, self.policy)
            _write_json(self.state_path, self.state)

    def _merge_state(self, other: dict) -> None:
        try:
            other = TrustPolicy(self.directory, self.policy, other).state
        except AssayError:
            return  # a damaged state file on disk is replaced by ours
        for ref, version in other["versions"].items():
            self.state["versions"][ref] = max(version, self.state["versions"].get(ref, 0))
        for ns, keyids in other["tofu"].items():
            mine = self.state["tofu"].setdefault(ns, [])
            mine[:0] = [k for k in keyids if k not in mine]  # the earliest pin stays first
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
        p = self.policy
        if not isinstance(p, dict) or p.get("format") != FORMAT:
            raise self._bad(f"unsupported format (expected \"format\": {FORMAT})")
        vkeys = p.get("verifier_keys")
        if not isinstance(vkeys, dict) or not vkeys:
            raise self._bad("verifier_keys must map at least one key id to its public key")
        self._verifier_keys: dict[str, Ed25519PublicKey] = {}
        for kid, text in vkeys.items():
            try:
                pk = public_key_from_text(text)
            except FormatError:
                raise self._bad(f"verifier key {kid} is not base64 of a 32-byte Ed25519 key") from None
            if key_id(pk) != kid:
                raise self._bad(f"verifier key id {kid} does not match its public key ({key_id(pk)})")
            self._verifier_keys[kid] = pk
        log = p.get("log")
        if not isinstance(log, dict):
            raise self._bad("log must be an object with the log's vkey")
        try:
            self._log_name, self._log_key = cp.parse_verifier_key(log.get("vkey"))
        except FormatError as exc:
            raise self._bad(str(exc)) from None
        pubs = p.get("publishers")
        if not isinstance(pubs, dict) or pubs.get("default") not in MODES or not isinstance(pubs.get("namespaces", {}), dict):
            raise self._bad('publishers must be {"default": "tofu" or "pinned", "namespaces": {...}}')
        for ns, entry in pubs.get("namespaces", {}).items():
            try:
                validate_name(ns, "namespace")
            except FormatError as exc:
                raise self._bad(str(exc)) from None
            if not isinstance(entry, dict) or entry.get("mode", pubs["default"]) not in MODES:
                raise self._bad(f"publishers.namespaces.{ns} must be {{\"mode\": \"tofu\" or \"pinned\", \"keys\": [...]}}")
            keys = entry.get("keys", [])
            if not isinstance(keys, list) or not all(isinstance(k, str) and k.startswith("sha256:") for k in keys):
                raise self._bad(f"publishers.namespaces.{ns}.keys must be a list of key ids")
        checks = p.get("checks")
        if not isinstance(checks, dict) or not isinstance(checks.get("allow_originals", True), bool):
            raise self._bad("checks must be an object (required, required_with_base, allow_originals)")
        self._required = _normalize_checks(checks.get("required", DEFAULT_REQUIRED), "checks.required")
        self._required_with_base = _normalize_checks(checks.get("required_with_base", DEFAULT_REQUIRED_WITH_BASE), "checks.required_with_base")
        s = self.state
        bad_state = FormatError(f"invalid client state {self.state_path}: delete it to start over (rollback and log history will be forgotten)")
        if not isinstance(s, dict):
            raise bad_state
        s.setdefault("format", FORMAT)
        s.setdefault("versions", {})
        s.setdefault("tofu", {})
        s.setdefault("checkpoint", None)
        s.setdefault("revoked_keys", {})
        if not isinstance(s["versions"], dict) or not all(isinstance(v, int) and not isinstance(v, bool) for v in s["versions"].values()):
            raise bad_state
        if not isinstance(s["tofu"], dict) or not all(isinstance(v, list) for v in s["tofu"].values()):
            raise bad_state
        revoked = s["revoked_keys"]
        if not isinstance(revoked, dict) or not all(
            isinstance(e, dict) and isinstance(e.get("index"), int) and not isinstance(e.get("index"), bool)
            and isinstance(e.get("time", ""), str) and isinstance(e.get("reason", ""), str)
            for e in revoked.values()
        ):
            raise bad_state
        c = s["checkpoint"]
        if c is not None and not (isinstance(c, dict) and isinstance(c.get("text"), str) and isinstance(c.get("size"), int)):
            raise bad_state

    # ------------------------------------------------------------ keys

    def verifier_keys(self) -> dict[str, Ed25519PublicKey]:
        return dict(self._verifier_keys)

    def log_vkey(self) -> str:
        return self.policy["log"]["vkey"]

    def log_name(self) -> str:
        return self._log_name

    def log_public_key(self) -> Ed25519PublicKey:
        return self._log_key

    def log_keyid(self) -> str:
        return key_id(self._log_key)

    def _namespace_entry(self, namespace: str) -> tuple[str, list[str]]:
        pubs = self.policy["publishers"]
        entry = pubs.get("namespaces", {}).get(namespace, {})
        return entry.get("mode", pubs["default"]), list(entry.get("keys", []))

    def publisher_key_allowed(self, namespace: str, keyid: str) -> tuple[bool, str]:
        """May `keyid` publish in `namespace`? In tofu mode the first key seen is pinned (in memory; save() keeps it)."""
        mode, listed = self._namespace_entry(namespace)
        if keyid in listed:
            return True, f"publisher key {keyid} is pinned for namespace '{namespace}'"
        if mode == "pinned":
            pinned = ", ".join(listed) or "none"
            return False, (f"publisher key {keyid} is not pinned for namespace '{namespace}' (pinned: {pinned}); "
                           f"add it to publishers.namespaces.{namespace}.keys in {self.policy_path} to trust it")
        seen = self.state["tofu"].get(namespace) or []
        if not seen and not listed:
            self.state["tofu"][namespace] = [keyid]
            return True, f"trusting publisher key {keyid} for namespace '{namespace}' on first use"
        if keyid in seen:
            return True, f"publisher key {keyid} was trusted on first use for namespace '{namespace}'"
        trusted = (seen or listed)[0]
        return False, (f"publisher key {keyid} for namespace '{namespace}' is not the key this client trusts "
                       f"({trusted}): the publisher changed keys or the release is forged; if the change is expected, "
                       f"add the key to publishers.namespaces.{namespace}.keys in {self.policy_path}")

    def pin_publisher_key(self, namespace: str, keyid: str, mode: str | None = None) -> None:
        validate_name(namespace, "namespace")
        entry = self.policy["publishers"].setdefault("namespaces", {}).setdefault(namespace, {})
        if mode is not None:
            if mode not in MODES:
                raise AssayError(f"unknown publisher trust mode {mode!r}: use tofu or pinned")
            entry["mode"] = mode
        keys = entry.setdefault("keys", [])
        if keyid not in keys:
            keys.append(keyid)

    # ------------------------------------------------------------ checks

    def required_checks(self, has_base: bool) -> list[str]:
        return list(dict.fromkeys(self._required + (self._required_with_base if has_base else [])))

    def required_checks_satisfied(self, checks: list[dict], has_base: bool) -> tuple[bool, str]:
        """Did the verdict's checks pass every check this policy requires?"""
        if not has_base and not self.policy["checks"].get("allow_originals", True):
            return False, f"this release is an original (no base to reproduce from) and the policy in {self.policy_path} does not allow originals"
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

    def known_revocation(self, keyid: str) -> dict | None:
        """{"index", "time", "reason"} of a revocation of `keyid` this client found in the log, or None."""
        known = self.state["revoked_keys"].get(keyid)
        return dict(known) if known else None
