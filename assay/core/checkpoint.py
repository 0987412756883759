"""Log checkpoints in the C2SP tlog-checkpoint form, signed as C2SP signed notes (Ed25519).

    <origin>\n<tree size>\n<base64 root hash>\n[extension lines\n]
    \n
    — <key name> <base64(key hash[4] || Ed25519 signature over the body)>\n

key hash = SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4]. The verifier key
string "<name>+<8 hex key hash>+<base64(0x01 || public key)>" is the golang.org/x/mod/sumdb/note
vkey form, for pinning.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from assay.core.errors import FormatError, VerificationError
from assay.core.keys import Ed25519PrivateKey, Ed25519PublicKey, public_key_bytes, verify_signature

ALG_ED25519 = 0x01
SIG_PREFIX = "\u2014 "  # em dash, space
MAX_NOTE_BYTES = 1 << 20
MAX_SIGNATURES = 100
_SIZE_RE = re.compile(r"\A(0|[1-9][0-9]{0,19})\Z")
_HEX8 = re.compile(r"\A[0-9a-f]{8}\Z")


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_hash: bytes  # 4 bytes
    signature: bytes


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name or "+" in name or any(c.isspace() for c in name) or any(ord(c) < 0x20 for c in name):
        raise FormatError(f"invalid key name {name!r}: it must be non-empty, without spaces or '+'")
    return name


def note_key_hash(name: str, alg: int, public_key: Ed25519PublicKey) -> bytes:
    """The 4-byte key ID of a signed-note key: SHA-256(name || 0x0A || alg || public key)[:4]."""
    _check_name(name)
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([alg]) + public_key_bytes(public_key)).digest()[:4]


def format_vkey(name: str, alg: int, public_key: Ed25519PublicKey) -> str:
    """"<name>+<hex key ID>+<base64(alg || public key)>": a note verifier key (sumdb vkey form)."""
    data = base64.b64encode(bytes([alg]) + public_key_bytes(public_key)).decode("ascii")
    return f"{name}+{note_key_hash(name, alg, public_key).hex()}+{data}"


def parse_vkey(vkey: object, alg: int, what: str, key_kind: str) -> tuple[str, Ed25519PublicKey]:
    """Inverse of format_vkey for keys of type `alg`; FormatError naming `what` for anything
    malformed: a bad name, key ID or base64, another key type, or a key ID that does not match."""
    if not isinstance(vkey, str) or vkey.count("+") < 2:
        raise FormatError(f"invalid {what} {str(vkey)[:80]!r}: expected name+keyid+key")
    name, hexhash, data = vkey.split("+", 2)  # base64 key data may itself contain '+'
    try:
        _check_name(name)
    except FormatError:
        raise FormatError(f"invalid {what}: bad name {name[:80]!r} (non-empty, no spaces or '+')") from None
    if not _HEX8.match(hexhash):
        raise FormatError(f"invalid {what}: the key ID must be 8 lowercase hex digits")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise FormatError(f"invalid {what}: the key is not base64") from None
    if base64.b64encode(raw).decode("ascii") != data:
        raise FormatError(f"invalid {what}: the key is not canonical base64")
    if len(raw) != 33 or raw[0] != alg:
        got = f"type 0x{raw[0]:02x}, {len(raw) - 1} bytes" if raw else "empty"
        raise FormatError(f"invalid {what}: expected {key_kind} (type 0x{alg:02x}, 32 bytes), got {got}")
    public_key = Ed25519PublicKey.from_public_bytes(raw[1:])
    if note_key_hash(name, alg, public_key) != bytes.fromhex(hexhash):
        raise FormatError(f"invalid {what}: the key ID does not match the name and key")
    return name, public_key


def key_hash(name: str, public_key: Ed25519PublicKey) -> bytes:
    """The 4-byte key hash (C2SP signed-note key ID) of an Ed25519 note key."""
    return note_key_hash(name, ALG_ED25519, public_key)


def verifier_key_string(name: str, public_key: Ed25519PublicKey) -> str:
    """"<name>+<hex key hash>+<base64(0x01||pubkey)>" (sumdb note vkey)."""
    return format_vkey(name, ALG_ED25519, public_key)


def parse_verifier_key(vkey: object) -> tuple[str, Ed25519PublicKey]:
    """Inverse of verifier_key_string; FormatError if malformed or its key hash does not match."""
    return parse_vkey(vkey, ALG_ED25519, "log verifier key", "an Ed25519 key")


def _check_text(text: str) -> None:
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise FormatError("invalid note: it contains control characters")


def sign_note(body: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """Append one Ed25519 signature line to a note body (which must end in a newline)."""
    _check_name(name)
    if not body.endswith("\n") or "\n\n" in body or body.startswith("\n"):
        raise FormatError("invalid note body: it must be non-empty lines, each ending in a newline")
    _check_text(body)
    sig = private_key.sign(body.encode("utf-8"))
    blob = base64.b64encode(key_hash(name, private_key.public_key()) + sig).decode("ascii")
    return f"{body}\n{SIG_PREFIX}{name} {blob}\n"


def parse_note(text: object) -> tuple[str, list[NoteSignature]]:
    """Split a signed note into its body and signature lines (nothing is verified here)."""
    if not isinstance(text, str):
        raise FormatError("invalid note: expected text")
    if len(text.encode("utf-8", "surrogatepass")) > MAX_NOTE_BYTES:
        raise FormatError("invalid note: larger than 1 MiB")
    _check_text(text)
    split = text.rfind("\n\n")
    if split < 0 or not text.endswith("\n"):
        raise FormatError("invalid note: no blank line before the signatures, or no final newline")
    body, sig_block = text[: split + 1], text[split + 2:]
    lines = sig_block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise FormatError(f"invalid note: more than {MAX_SIGNATURES} signatures")
    sigs = []
    for line in lines:
        if not line.startswith(SIG_PREFIX):
            raise FormatError(f"invalid note: signature line {line[:60]!r} does not start with '\u2014 '")
        parts = line[len(SIG_PREFIX):].split(" ")
        if len(parts) != 2:
            raise FormatError(f"invalid note: malformed signature line {line[:60]!r}")
        name, blob = parts
        _check_name(name)
        try:
            raw = base64.b64decode(blob, validate=True)
        except (binascii.Error, ValueError):
            raise FormatError(f"invalid note: signature by {name} is not base64") from None
        if len(raw) < 5 or base64.b64encode(raw).decode("ascii") != blob:
            raise FormatError(f"invalid note: signature by {name} is malformed")
        sigs.append(NoteSignature(name, raw[:4], raw[4:]))
    return body, sigs


def verify_note(text: str, name: str, public_key: Ed25519PublicKey) -> str:
    """Return the note body if it carries a valid signature by (name, public_key)."""
    body, sigs = parse_note(text)
    want = key_hash(name, public_key)
    for s in sigs:
        if s.name == name and s.key_hash == want:
            # The first line for our key decides (as Go's note.Open): a bad one rejects the note.
            if len(s.signature) == 64 and verify_signature(public_key, s.signature, body.encode("utf-8")):
                return body
            raise VerificationError(f"the log checkpoint's signature by {name} does not verify: it was altered or forged")
    signers = ", ".join(f"{s.name}+{s.key_hash.hex()}" for s in sigs)
    raise VerificationError(f"the log checkpoint is not signed by the pinned log key {name}+{want.hex()} (signed by: {signers})")


def format_checkpoint_body(origin: str, size: int, root_hash: bytes, extensions: tuple[str, ...] = ()) -> str:
    if not isinstance(origin, str) or not origin or "\n" in origin:
        raise FormatError(f"invalid checkpoint origin {origin!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise FormatError(f"invalid checkpoint tree size {size!r}")
    if not isinstance(root_hash, (bytes, bytearray)) or len(root_hash) != 32:
        raise FormatError("invalid checkpoint root hash: it must be 32 bytes")
    for line in extensions:
        if not line or "\n" in line:
            raise FormatError(f"invalid checkpoint extension line {line!r}")
    lines = [origin, str(size), base64.b64encode(bytes(root_hash)).decode("ascii"), *extensions]
    return "".join(line + "\n" for line in lines)


def sign_checkpoint(origin: str, size: int, root_hash: bytes, name: str, private_key: Ed25519PrivateKey, extensions: tuple[str, ...] = ()) -> str:
    """A signed checkpoint note for a tree of `size` leaves with root `root_hash`."""
    return sign_note(format_checkpoint_body(origin, size, root_hash, tuple(extensions)), name, private_key)


def parse_checkpoint_body(body: str) -> Checkpoint:
    lines = body.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise FormatError("invalid checkpoint: expected origin, tree size and root hash lines")
    origin, size_text, root_text, *extensions = lines[:-1]
    if not origin:
        raise FormatError("invalid checkpoint: the origin line is empty")
    if not _SIZE_RE.match(size_text) or int(size_text) >= 1 << 63:
        raise FormatError(f"invalid checkpoint: tree size {size_text[:40]!r} is not a decimal number")
    try:
        root_hash = base64.b64decode(root_text, validate=True)
    except (binascii.Error, ValueError):
        raise FormatError("invalid checkpoint: the root hash is not base64") from None
    if len(root_hash) != 32 or base64.b64encode(root_hash).decode("ascii") != root_text:
        raise FormatError("invalid checkpoint: the root hash is not base64 of 32 bytes")
    if any(not line for line in extensions):
        raise FormatError("invalid checkpoint: empty extension line")
    return Checkpoint(origin, int(size_text), root_hash, tuple(extensions))


def verify_checkpoint(text: str, verifier: "str | tuple[str, Ed25519PublicKey]", *, origin: str | None = None) -> Checkpoint:
    """Verify a signed checkpoint against a pinned vkey string or (name, public key).

    The origin must equal the key name unless `origin` is given explicitly.
    """
    name, public_key = parse_verifier_key(verifier) if isinstance(verifier, str) else verifier
    body = verify_note(text, name, public_key)
    checkpoint = parse_checkpoint_body(body)
    expected = name if origin is None else origin
    if checkpoint.origin != expected:
        raise VerificationError(f"the log checkpoint is for log {checkpoint.origin!r}, expected {expected!r}")
    return checkpoint
