"""OpenSSF model_signing signatures (predicate v1.0, "sign key" form): the one module that builds
and checks them, so that `model_signing verify key` (PyPI `model-signing`) accepts what Assay
writes and Assay accepts what `model_signing sign key` wrote.

The signature is a Sigstore bundle (v0.3 JSON) holding a DSSE envelope:

    {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
     "verificationMaterial": {"publicKey": {"hint": HEX}, "tlogEntries": []},
     "dsseEnvelope": {"payload": B64, "payloadType": "application/vnd.in-toto+json",
                      "signatures": [{"sig": B64, "keyid": ""}]}}

- `hint` is the SHA-256 (hex) of the signing key's PEM SubjectPublicKeyInfo;
- `sig` is an ECDSA P-256 / SHA-256 DER signature over the DSSE PAE of the payload;
- the payload is an in-toto v1 statement with predicateType
  "https://model_signing/signature/v1.0" whose predicate lists the model's files as
  `resources` ({name, algorithm "sha256", digest hex}, sorted by name) under a `files`
  serialization, and whose one subject's sha256 is the SHA-256 of the resource digests' bytes
  in that order. A model that is one file has the one resource named "." (model_signing names
  files relative to the model path, and a file is its own model path).

model_signing supports elliptic-curve keys only, so only a publisher's ECDSA P-256 key can make
or check one (assay/core/keys.py).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Iterable

from cryptography.hazmat.primitives import serialization

from assay.core import keys
from assay.core.dsse import pae
from assay.core.errors import FormatError, VerificationError

MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
SINGLE_FILE_RESOURCE = "."
MAX_BUNDLE_BYTES = 256 * 1024
MAX_RESOURCES = 1024
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class SignedModel:
    """What a checked model_signing signature vouches for."""

    model_name: str
    resources: tuple[tuple[str, str], ...]  # (name, sha256 hex), sorted by name
    key_hint: str


def key_hint(public_key: keys.PublicKey) -> str:
    """model_signing's public-key hint: SHA-256 hex of the PEM SubjectPublicKeyInfo."""
    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(pem).hexdigest()


def resources_for(files: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The resources for a release's files, given as (file name, "sha256:<hex>" or hex) in order.

    One file: the single resource "."; several (the parts of a split GGUF): one per file name,
    to be verified as a folder holding them."""
    pairs = [(name, _hex_of(digest)) for name, digest in files]
    if not pairs:
        raise FormatError("a model_signing signature needs at least one file")
    if len(pairs) == 1:
        return ((SINGLE_FILE_RESOURCE, pairs[0][1]),)
    return tuple(sorted(pairs))


def _root_digest(resources: tuple[tuple[str, str], ...]) -> str:
    h = hashlib.sha256()
    for _, hexdigest in resources:
        h.update(bytes.fromhex(hexdigest))
    return h.hexdigest()


def build_payload(model_name: str, resources: tuple[tuple[str, str], ...]) -> bytes:
    """The in-toto statement model_signing signs, as JSON bytes."""
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": model_name, "digest": {"sha256": _root_digest(resources)}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": False},
            "resources": [{"name": name, "algorithm": "sha256", "digest": hexdigest} for name, hexdigest in resources],
        },
    }
    return json.dumps(statement, indent=2).encode("utf-8")


def sign(signer: keys.Signer, model_name: str, files: Iterable[tuple[str, str]]) -> dict:
    """A model_signing bundle over `files` (see resources_for), signed with an ECDSA P-256 signer."""
    if signer.algorithm != keys.ECDSA_P256:
        raise FormatError(f"model_signing signs with elliptic-curve keys only; key {signer.keyid} is {signer.algorithm}")
    payload = build_payload(model_name, resources_for(files))
    signature = signer.sign(pae(PAYLOAD_TYPE, payload))
    return {
        "mediaType": MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": key_hint(signer.public_key)}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode("ascii"),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{"sig": base64.b64encode(signature).decode("ascii"), "keyid": ""}],
        },
    }


def load(data: bytes) -> dict:
    """Parse a signature file's bytes (FormatError if it is not a JSON object of sane size)."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise FormatError(f"not a model_signing signature: larger than {MAX_BUNDLE_BYTES // 1024} KiB")
    try:
        bundle = json.loads(data)
    except (ValueError, RecursionError):
        raise FormatError("not a model_signing signature: not JSON") from None
    if not isinstance(bundle, dict):
        raise FormatError("not a model_signing signature: not a JSON object")
    return bundle


def dumps(bundle: dict) -> bytes:
    return (json.dumps(bundle, indent=2) + "\n").encode("utf-8")


def verify(bundle: object, public_key: keys.PublicKey) -> SignedModel:
    """Check a bundle's form and its signature by `public_key`; return what it vouches for.

    FormatError: not a model_signing v1.0 key-signed bundle. VerificationError: made with another
    key, or the signature does not verify."""
    payload, signature, hint = _parse_bundle(bundle)
    if keys.algorithm_of(public_key) != keys.ECDSA_P256:
        raise VerificationError(f"model_signing signatures need an ECDSA P-256 key; key {keys.key_id(public_key)} is Ed25519 "
                                "(make one with `assay keygen --algorithm ecdsa-p256`)")
    if not keys.verify_signature(public_key, signature, pae(PAYLOAD_TYPE, payload)):
        expected = key_hint(public_key)
        if hint and hint != expected:
            raise VerificationError(f"the model_signing signature was made with key {hint[:16]}…, not with key {expected[:16]}…")
        raise VerificationError("the model_signing signature does not verify with the publisher's key")
    model_name, resources = _parse_payload(payload)
    return SignedModel(model_name, resources, hint)


def check_covers(signed: SignedModel, files: Iterable[tuple[str, str]]) -> None:
    """VerificationError unless the signature names exactly these files with these digests."""
    expected = resources_for(files)
    if signed.resources == expected:
        return
    got = dict(signed.resources)
    want = dict(expected)
    problems = [f"{n} is not signed" for n in want if n not in got]
    problems += [f"{n} is signed but not part of the release" for n in got if n not in want]
    problems += [f"{n} has digest {got[n][:16]}… in the signature but {want[n][:16]}… in the release"
                 for n in want if n in got and got[n] != want[n]]
    raise VerificationError("the model_signing signature does not cover the release's files: " + "; ".join(problems))


def _parse_bundle(bundle: object) -> tuple[bytes, bytes, str]:
    if not isinstance(bundle, dict):
        raise FormatError("not a model_signing signature: not a JSON object")
    if bundle.get("mediaType") != MEDIA_TYPE:
        raise FormatError(f"not a model_signing signature: mediaType must be {MEDIA_TYPE!r}")
    material = bundle.get("verificationMaterial")
    if not isinstance(material, dict) or not isinstance(material.get("publicKey"), dict):
        raise FormatError("this model_signing signature was not made with a key (sigstore or certificate signatures are not accepted)")
    hint = material["publicKey"].get("hint") or ""
    if not isinstance(hint, str) or (hint and (len(hint) != 64 or not set(hint) <= _HEX)):
        raise FormatError("invalid model_signing signature: publicKey.hint must be a SHA-256 hex digest")
    envelope = bundle.get("dsseEnvelope")
    if not isinstance(envelope, dict):
        raise FormatError("invalid model_signing signature: no dsseEnvelope")
    if envelope.get("payloadType") != PAYLOAD_TYPE:
        raise FormatError(f"invalid model_signing signature: payloadType must be {PAYLOAD_TYPE!r}")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or len(signatures) != 1 or not isinstance(signatures[0], dict):
        raise FormatError("invalid model_signing signature: expected exactly one signature")
    return _b64(envelope.get("payload"), "payload"), _b64(signatures[0].get("sig"), "sig"), hint


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise FormatError(f"invalid model_signing signature: {what} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise FormatError(f"invalid model_signing signature: {what} is not base64") from None


def _parse_payload(payload: bytes) -> tuple[str, tuple[tuple[str, str], ...]]:
    try:
        statement = json.loads(payload)
    except (ValueError, RecursionError):
        raise FormatError("invalid model_signing signature: the payload is not JSON") from None
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        raise FormatError(f"invalid model_signing signature: the payload is not an in-toto {STATEMENT_TYPE} statement")
    if statement.get("predicateType") != PREDICATE_TYPE:
        raise FormatError(f"unsupported model_signing signature: predicateType {statement.get('predicateType')!r}, expected {PREDICATE_TYPE!r}")
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or len(subjects) != 1 or not isinstance(subjects[0], dict):
        raise FormatError("invalid model_signing signature: expected exactly one subject")
    model_name = subjects[0].get("name")
    root = subjects[0].get("digest", {}).get("sha256") if isinstance(subjects[0].get("digest"), dict) else None
    if not isinstance(model_name, str) or not isinstance(root, str):
        raise FormatError("invalid model_signing signature: the subject needs a name and a sha256 digest")
    predicate = statement.get("predicate")
    if not isinstance(predicate, dict):
        raise FormatError("invalid model_signing signature: no predicate")
    serialization_args = predicate.get("serialization")
    if not isinstance(serialization_args, dict) or serialization_args.get("method") != "files" or serialization_args.get("hash_type") != "sha256":
        raise FormatError("unsupported model_signing signature: only the per-file sha256 serialization is accepted "
                          "(sign with `model_signing sign key` without --use_shard_serialization or another hash)")
    raw = predicate.get("resources")
    if not isinstance(raw, list) or not raw or len(raw) > MAX_RESOURCES:
        raise FormatError("invalid model_signing signature: resources must list the model's files")
    resources = []
    for i, r in enumerate(raw):
        if not isinstance(r, dict) or r.get("algorithm") != "sha256" or not isinstance(r.get("name"), str):
            raise FormatError(f"invalid model_signing signature: resources[{i}] must be a named sha256 digest")
        resources.append((r["name"], _hex_of(r.get("digest"))))
    resources_t = tuple(resources)
    if _root_digest(resources_t) != root:
        raise FormatError("invalid model_signing signature: the subject digest does not match the listed resources")
    if len({n for n, _ in resources_t}) != len(resources_t):
        raise FormatError("invalid model_signing signature: a resource is listed twice")
    return model_name, tuple(sorted(resources_t))


def _hex_of(digest: object) -> str:
    text = digest.removeprefix("sha256:") if isinstance(digest, str) else None
    if text is None or len(text) != 64 or not set(text) <= _HEX:
        raise FormatError("invalid model_signing signature: a digest is not SHA-256 hex")
    return text
