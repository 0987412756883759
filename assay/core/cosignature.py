"""Witness cosignatures of log checkpoints: C2SP tlog-cosignature v1, Ed25519 (signature type 0x04).

A cosignature is one more C2SP signed-note signature line on a checkpoint:

    — <witness name> base64(key ID[4] || timestamp[8, big-endian] || Ed25519 signature[64])

key ID = SHA-256(name || 0x0A || 0x04 || 32-byte public key)[:4]. The signed message is
"cosignature/v1\\ntime <timestamp>\\n" followed by the whole checkpoint body (its final newline
included, no signature lines). The witness vkey is "<name>+<8 hex key ID>+<base64(0x04 || key)>".
The name is not part of the signed message, so one key must never serve two witness names.
"""
from __future__ import annotations

import base64
import time
from typing import Iterable, Mapping

from assay.core import checkpoint as cp
from assay.core.errors import FormatError
from assay.core.keys import Ed25519PrivateKey, Ed25519PublicKey, verify_signature

ALG_COSIGNATURE_V1 = 0x04
HEADER = "cosignature/v1\n"
MAX_TIMESTAMP = (1 << 63) - 1
BLOB_SIZE = 4 + 8 + 64


def witness_key_hash(name: str, public_key: Ed25519PublicKey) -> bytes:
    """The 4-byte key ID of a witness's cosignature/v1 key."""
    return cp.note_key_hash(name, ALG_COSIGNATURE_V1, public_key)


def witness_vkey(name: str, public_key: Ed25519PublicKey) -> str:
    """The witness vkey "<name>+<hex key ID>+<base64(0x04 || public key)>"."""
    return cp.format_vkey(name, ALG_COSIGNATURE_V1, public_key)


def parse_witness_vkey(vkey: object) -> tuple[str, Ed25519PublicKey]:
    """Inverse of witness_vkey: (name, public key); FormatError with one line for anything malformed."""
    return cp.parse_vkey(vkey, ALG_COSIGNATURE_V1, "witness vkey", "an Ed25519 cosignature/v1 key")


def _check_timestamp(timestamp: object) -> int:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or not 0 <= timestamp <= MAX_TIMESTAMP:
        raise FormatError(f"invalid cosignature timestamp {timestamp!r}: expected 0 to 2**63-1 seconds")
    return timestamp


def cosignature_message(body: str, timestamp: int) -> bytes:
    """The bytes a witness signs: "cosignature/v1\\ntime <timestamp>\\n" + the checkpoint body."""
    if not isinstance(body, str) or not body.endswith("\n"):
        raise FormatError("invalid checkpoint body: it must end in a newline")
    return f"{HEADER}time {_check_timestamp(timestamp)}\n{body}".encode("utf-8")


def _checkpoint_body(text: str) -> str:
    """The body of a signed checkpoint note, or `text` itself when it is a bare checkpoint body."""
    body = cp.parse_note(text)[0] if isinstance(text, str) and "\n\n" in text else text
    if not isinstance(body, str):
        raise FormatError("invalid checkpoint: expected text")
    cp._check_text(body)
    cp.parse_checkpoint_body(body)
    return body


def sign_cosignature(checkpoint_text_or_body: str, name: str, private_key: Ed25519PrivateKey, timestamp: int | None = None) -> str:
    """One cosignature line "— <name> <base64>\\n" over a checkpoint (signed note or bare body).

    The timestamp defaults to now (POSIX seconds)."""
    body = _checkpoint_body(checkpoint_text_or_body)
    timestamp = int(time.time()) if timestamp is None else _check_timestamp(timestamp)
    key_id = witness_key_hash(name, private_key.public_key())
    signature = private_key.sign(cosignature_message(body, timestamp))
    blob = base64.b64encode(key_id + timestamp.to_bytes(8, "big") + signature).decode("ascii")
    return f"{cp.SIG_PREFIX}{name} {blob}\n"


def add_cosignatures(note_text: str, lines: Iterable[str]) -> str:
    """`note_text` with the given signature lines appended (each once; lines already there are kept
    as they are). Entries may hold several lines, e.g. an add-checkpoint response body."""
    cp.parse_note(note_text)
    present = set(note_text.split("\n"))
    extra = []
    for entry in lines:
        for line in str(entry).split("\n"):
            if line and line not in present:
                present.add(line)
                extra.append(line + "\n")
    text = note_text + "".join(extra)
    cp.parse_note(text)  # every added line must be a well-formed signature line
    return text


def parse_cosignature_blob(blob: bytes) -> tuple[bytes, int, bytes]:
    """(key ID, timestamp, Ed25519 signature) of a decoded cosignature; FormatError if malformed."""
    if len(blob) != BLOB_SIZE:
        raise FormatError(f"invalid cosignature: {len(blob)} bytes, expected {BLOB_SIZE}")
    timestamp = int.from_bytes(blob[4:12], "big")
    if timestamp > MAX_TIMESTAMP:
        raise FormatError("invalid cosignature: the timestamp is above 2**63-1")
    return blob[:4], timestamp, blob[12:]


def _witness_keys(witness_vkeys: "Mapping[str, str] | Iterable[str]") -> dict[tuple[str, bytes], Ed25519PublicKey]:
    """(name, key ID) -> public key, from vkey strings (a mapping's values are the vkeys)."""
    vkeys = witness_vkeys.values() if isinstance(witness_vkeys, Mapping) else witness_vkeys
    if isinstance(vkeys, str):
        vkeys = [vkeys]
    keys = {}
    for vkey in vkeys:
        name, public_key = parse_witness_vkey(vkey)
        keys[(name, witness_key_hash(name, public_key))] = public_key
    return keys


def verify_cosignatures(note_text: str, witness_vkeys: "Mapping[str, str] | Iterable[str]") -> dict[str, int]:
    """Witness name -> timestamp of every valid cosignature on the note by a listed witness.

    Lines of other keys are ignored; a line with a listed name and key ID whose signature does not
    verify is not counted (never an exception). With several valid lines of one witness, the newest
    timestamp wins. A malformed note or vkey raises FormatError."""
    keys = _witness_keys(witness_vkeys)
    body, signatures = cp.parse_note(note_text)
    valid: dict[str, int] = {}
    for sig in signatures:
        public_key = keys.get((sig.name, sig.key_hash))
        if public_key is None:
            continue
        try:
            _, timestamp, signature = parse_cosignature_blob(sig.key_hash + sig.signature)
        except FormatError:
            continue
        if verify_signature(public_key, signature, cosignature_message(body, timestamp)):
            valid[sig.name] = max(timestamp, valid.get(sig.name, -1))
    return valid
