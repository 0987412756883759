"""The signed key-event index: which log entries in [start, end) are key events.

A client catches up with the log by fetching only the key events (key registrations, key
revocations, namespace roles) that were logged since it last looked, instead of every entry.
The registry signs, with its log key, the list of their indices for a range and binds it to the
tree's root at `end`; the client checks each listed entry's inclusion proof under that root and
that the registry served exactly the listed entries. A registry that leaves a revocation out of
this list has signed a false statement that anyone replaying the log (`assay log verify`, which
compares the index with the entries it replays) can prove.

Envelope: DSSE, payloadType PAYLOAD_TYPE, payload canonical JSON
    {"_type": TYPE, "origin": <log origin>, "start": s, "end": e, "root": <hex root of tree e>,
     "entries": [i, ...]}    # ascending, each s <= i < e
"""
from __future__ import annotations

from dataclasses import dataclass

from assay.core import dsse
from assay.core.canonical import canonical_json, parse_json_strict
from assay.core.errors import FormatError
from assay.core.keys import key_id

TYPE = "urn:assay:key-event-index:v1"
PAYLOAD_TYPE = "application/vnd.assay.key-event-index+json"
KINDS = ("key-register", "key-revoke", "namespace-role")
MAX_ENTRIES = 100_000


@dataclass(frozen=True)
class KeyEventIndex:
    origin: str
    start: int
    end: int
    root: bytes
    entries: tuple[int, ...]


def build(origin: str, start: int, end: int, root: bytes, entries: list[int]) -> bytes:
    payload = canonical_json({"_type": TYPE, "origin": origin, "start": start, "end": end, "root": root.hex(), "entries": list(entries)})
    parse(payload)
    return payload


def sign(origin: str, start: int, end: int, root: bytes, entries: list[int], log_private_key) -> dict:
    return dsse.sign_envelope(build(origin, start, end, root, entries), PAYLOAD_TYPE, log_private_key)


def _uint(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 63:
        raise FormatError(f"invalid key-event index: {what} must be a non-negative integer")
    return value


def parse(payload: bytes) -> KeyEventIndex:
    data = parse_json_strict(payload)
    if not isinstance(data, dict) or set(data) != {"_type", "origin", "start", "end", "root", "entries"} or data["_type"] != TYPE:
        raise FormatError(f"invalid key-event index: expected an object of type {TYPE}")
    start, end = _uint(data["start"], "start"), _uint(data["end"], "end")
    if not isinstance(data["origin"], str) or not data["origin"] or start > end:
        raise FormatError("invalid key-event index: bad origin or range")
    try:
        root = bytes.fromhex(data["root"]) if isinstance(data["root"], str) else b""
    except ValueError:
        root = b""
    if len(root) != 32:
        raise FormatError("invalid key-event index: root must be 32 bytes of hex")
    entries = data["entries"]
    if not isinstance(entries, list) or len(entries) > MAX_ENTRIES:
        raise FormatError("invalid key-event index: entries must be a list")
    indices = tuple(_uint(i, "an entry index") for i in entries)
    if any(not start <= i < end for i in indices) or any(a >= b for a, b in zip(indices, indices[1:])):
        raise FormatError("invalid key-event index: entries must be ascending indices inside [start, end)")
    return KeyEventIndex(data["origin"], start, end, root, indices)


def verify(envelope: dict, log_public_key) -> KeyEventIndex:
    """The index, if `envelope` is signed by the log key (VerificationError / FormatError if not)."""
    verified = dsse.verify_envelope(envelope, {key_id(log_public_key): log_public_key}, payload_type=PAYLOAD_TYPE)
    return parse(verified.payload)
