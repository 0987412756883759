"""The signed key-event index: which log entries in [start, end) are key events.

A client catches up with the log by fetching only the key events (key registrations, key
revocations, namespace roles, verifier key revocations) that were logged since it last looked,
instead of every entry.
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
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from assay.core import dsse
from assay.core.canonical import canonical_json, parse_json_strict
from assay.core.keys import key_id
from assay.core.typed import FieldError, Strict, load

TYPE = "urn:assay:key-event-index:v1"
PAYLOAD_TYPE = "application/vnd.assay.key-event-index+json"
KINDS = ("key-register", "key-revoke", "namespace-role", "verifier-revoke")
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


UInt = Annotated[int, Field(ge=0, lt=1 << 63)]


class _IndexDoc(Strict):
    type: Literal[TYPE] = Field(alias="_type")  # type: ignore[valid-type]
    origin: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    start: UInt
    end: UInt
    root: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    entries: Annotated[list[UInt], Field(max_length=MAX_ENTRIES)]

    @model_validator(mode="after")
    def _range(self) -> "_IndexDoc":
        if self.start > self.end:
            raise FieldError("end", f"is {self.end}, before start {self.start}")
        indices = self.entries
        if any(not self.start <= i < self.end for i in indices) or any(a >= b for a, b in zip(indices, indices[1:])):
            raise FieldError("entries", "must be ascending indices inside [start, end)")
        return self


def parse(payload: bytes) -> KeyEventIndex:
    doc = load(_IndexDoc, parse_json_strict(payload), what="invalid key-event index:", whole="payload")
    return KeyEventIndex(doc.origin, doc.start, doc.end, bytes.fromhex(doc.root), tuple(doc.entries))


def verify(envelope: dict, log_public_key) -> KeyEventIndex:
    """The index, if `envelope` is signed by the log key (VerificationError / FormatError if not)."""
    verified = dsse.verify_envelope(envelope, {key_id(log_public_key): log_public_key}, payload_type=PAYLOAD_TYPE)
    return parse(verified.payload)
