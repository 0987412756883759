"""Catch up with the log's key events before trusting anything a release bundle says about keys.

`catch_up(policy, source, checkpoint)` brings the client's KeyState from the log size it last
reached to `checkpoint.size`: it fetches the registry's signed key-event index for that range
(assay/core/keyindex.py) and the listed entries, checks that the index is signed by the pinned log key
and bound to the checkpoint's root, that the registry served exactly the listed entries, and each
entry's inclusion proof; then applies them in log order. Each revocation is saved in the client's
state the moment it verifies, so a failure later in the range cannot lose it.

Cost: one request, the signed index, and only the key events since the last catch-up with their
inclusion proofs; nothing in it grows with the size of the log, except the proofs' log2(n) hashes.

`source.key_events(start, end)` answers {"index": <signed envelope>, "entries": [{"index", "data"
(base64 of the logged bytes), "proof": [hex]}]}, as GET /api/v1/log/key-events does.
"""
from __future__ import annotations

import base64
import binascii
import json
from typing import Protocol

from assay.core import keyindex, merkle
from assay.core import checkpoint as cp
from assay.core.errors import AssayError, FormatError, VerificationError
from assay.client.keystate import KeyState
from assay.client.logaudit import apply_key_event
from assay.client.trustpolicy import TrustPolicy


class LogSource(Protocol):
    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]: ...
    def key_events(self, start: int, end: int) -> dict: ...


def key_event_entries(source: LogSource, policy: TrustPolicy, checkpoint: "cp.Checkpoint", start: int) -> list[tuple[int, dict]]:
    """The key events logged in [start, checkpoint.size), proven complete and included:
    [(index, envelope)] in log order."""
    end = checkpoint.size
    answer = source.key_events(start, end)
    try:
        index = keyindex.verify(answer["index"], policy.log_public_key())
    except (KeyError, TypeError) as exc:
        raise VerificationError(f"the registry's key-event answer is malformed ({exc})") from None
    except AssayError as exc:
        raise VerificationError(f"the registry's key-event index does not verify: {exc}") from None
    if (index.origin, index.start, index.end, index.root) != (checkpoint.origin, start, end, checkpoint.root):
        raise VerificationError(
            f"the registry's signed key-event index covers {index.origin} [{index.start}, {index.end}) at another root, "
            f"not [{start}, {end}) of the checkpoint it serves")
    served = answer.get("entries")
    if not isinstance(served, list) or [e.get("index") if isinstance(e, dict) else None for e in served] != list(index.entries):
        raise VerificationError("the registry did not serve exactly the key events its signed index lists: one was hidden or added")
    out = []
    for entry in served:
        i = entry["index"]
        try:
            data = base64.b64decode(entry["data"], validate=True)
            proof = [bytes.fromhex(h) for h in entry["proof"]]
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise VerificationError(f"key event {i} is malformed") from None
        try:
            merkle.verify_inclusion(merkle.leaf_hash(data), i, end, proof, checkpoint.root)
        except (VerificationError, FormatError, ValueError):
            raise VerificationError(f"key event {i} as served is not in the signed log of size {end}") from None
        try:
            out.append((i, json.loads(data)))
        except ValueError:
            raise VerificationError(f"key event {i} is not JSON") from None
    return out


def catch_up(policy: TrustPolicy, source: LogSource, checkpoint: "cp.Checkpoint") -> KeyState:
    """Apply every key event up to `checkpoint.size` to the policy's key state (see module doc)."""
    state = policy.key_state
    if state.through >= checkpoint.size:
        return state
    for index, envelope in key_event_entries(source, policy, checkpoint, state.through):
        try:
            apply_key_event(state, index, envelope, policy)
        except AssayError as exc:
            raise VerificationError(f"key event {index} of the log does not verify: {exc}") from None
    state.through = checkpoint.size
    return state

