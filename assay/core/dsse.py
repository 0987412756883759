"""DSSE v1 envelopes (https://github.com/secure-systems-lab/dsse): sign over PAE, verify strictly.

Envelope: {"payloadType": str, "payload": base64, "signatures": [{"keyid": str, "sig": base64}]}.
We write standard base64 with padding; we accept standard or URL-safe, padded or not, as the
spec asks, but only the canonical encoding of the bytes (no stray bits, no whitespace).
"""
from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Annotated, Mapping

from pydantic import Field, StringConstraints

from assay.core.canonical import canonical_json
from assay.core.digest import digest_bytes
from assay.core.errors import FormatError, VerificationError
from assay.core.keys import PublicKey, Signer, as_signer, verify_signature
from assay.core.typed import Strict, load

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
MAX_SIGNATURES = 16
MAX_PAYLOAD_BYTES = 16 * 1024 * 1024

_STD_B64 = re.compile(r"\A[A-Za-z0-9+/]*={0,2}\Z")
_URL_B64 = re.compile(r"\A[A-Za-z0-9_-]*={0,2}\Z")


@dataclass(frozen=True)
class VerifiedEnvelope:
    payload_type: str
    payload: bytes
    keyid: str  # the trusted key whose signature verified


@dataclass(frozen=True)
class ParsedEnvelope:
    payload_type: str
    payload: bytes
    signatures: tuple[tuple[str, bytes], ...]  # (keyid, signature)


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSEv1 Pre-Authentication Encoding: "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def b64decode_strict(value: object, what: str) -> bytes:
    """Decode standard or URL-safe base64 (padding optional); FormatError unless canonical."""
    if not isinstance(value, str):
        raise FormatError(f"invalid envelope: {what} must be a base64 string, not {type(value).__name__}")
    if _STD_B64.match(value):
        decode, encode = base64.b64decode, base64.b64encode
    elif _URL_B64.match(value):
        decode, encode = base64.urlsafe_b64decode, base64.urlsafe_b64encode
    else:
        raise FormatError(f"invalid envelope: {what} is not base64")
    bare = value.rstrip("=")
    padded = bare + "=" * (-len(bare) % 4)
    if len(bare) % 4 == 1 or (value != bare and value != padded):
        raise FormatError(f"invalid envelope: {what} is not base64 (bad length or padding)")
    try:
        data = decode(padded)
    except (binascii.Error, ValueError):
        raise FormatError(f"invalid envelope: {what} is not base64") from None
    if encode(data).decode("ascii").rstrip("=") != bare:
        raise FormatError(f"invalid envelope: {what} is not canonical base64")
    return data


def sign_envelope(payload: bytes, payload_type: str, signer: "Signer | object") -> dict:
    """Sign `payload` with a keys.Signer (or a bare Ed25519 private key); return the envelope dict."""
    if not isinstance(payload, (bytes, bytearray)):
        raise TypeError("payload must be bytes")
    if not isinstance(payload_type, str) or not payload_type:
        raise TypeError("payload_type must be a non-empty string")
    s = as_signer(signer)
    sig = s.sign(pae(payload_type, bytes(payload)))
    return {
        "payloadType": payload_type,
        "payload": base64.b64encode(bytes(payload)).decode("ascii"),
        "signatures": [{"keyid": s.keyid, "sig": base64.b64encode(sig).decode("ascii")}],
    }


class _SignatureDoc(Strict):
    keyid: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    sig: Annotated[str, StringConstraints(max_length=64 * 1024)]


class _EnvelopeDoc(Strict):
    """A DSSE envelope (https://github.com/secure-systems-lab/dsse/blob/master/envelope.md)."""
    payloadType: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    payload: Annotated[str, StringConstraints(max_length=MAX_PAYLOAD_BYTES * 4 // 3 + 4)]
    signatures: Annotated[list[_SignatureDoc], Field(min_length=1, max_length=MAX_SIGNATURES)]


def parse_envelope(envelope: object) -> ParsedEnvelope:
    """Check the envelope's shape (its typed model) and decode it, without checking any signature."""
    doc = load(_EnvelopeDoc, envelope, what="invalid envelope:", whole="envelope")
    payload = b64decode_strict(doc.payload, "payload")
    signatures = tuple((s.keyid, b64decode_strict(s.sig, f"signatures[{i}].sig")) for i, s in enumerate(doc.signatures))
    return ParsedEnvelope(doc.payloadType, payload, signatures)


def verify_envelope(
    envelope: object,
    trusted: Mapping[str, PublicKey],
    *,
    payload_type: str | None = INTOTO_PAYLOAD_TYPE,
) -> VerifiedEnvelope:
    """Return the payload if at least one signature is by a trusted key and verifies.

    FormatError: malformed envelope or unexpected payloadType (pass payload_type=None to accept
    any). VerificationError: no trusted key signed it, or its signature does not verify.
    """
    parsed = parse_envelope(envelope)
    if payload_type is not None and parsed.payload_type != payload_type:
        raise FormatError(f"invalid envelope: payloadType is {parsed.payload_type!r}, expected {payload_type!r}")
    message = pae(parsed.payload_type, parsed.payload)
    bad: list[str] = []
    for keyid, sig in parsed.signatures:
        public_key = trusted.get(keyid)
        if public_key is None:
            continue
        if verify_signature(public_key, sig, message):
            return VerifiedEnvelope(parsed.payload_type, parsed.payload, keyid)
        bad.append(keyid)
    if bad:
        raise VerificationError(
            f"signature by key {bad[0]} does not verify: the envelope was altered or not signed by that key"
        )
    signed_by = ", ".join(dict.fromkeys(k for k, _ in parsed.signatures))
    raise VerificationError(f"envelope is not signed by a trusted key: signed by {signed_by}, trusted: {', '.join(trusted) or 'none'}")


def envelope_digest(envelope: dict) -> str:
    """`sha256:` of the envelope's canonical JSON (what the transparency log hashes)."""
    return digest_bytes(canonical_json(envelope))
