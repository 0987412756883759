"""OpenSSF model_signing signatures (assay/core/ossf_signature.py) against fixed vectors made by the
reference implementation (tests/vectors/make_model_signing_vector.py), and ECDSA P-256 keys."""
from __future__ import annotations

import base64
import copy
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from assay.core import dsse, keys, ossf_signature, statements
from assay.core.errors import FormatError, VerificationError

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "model_signing.json").read_text())
PRIVATE = ec.derive_private_key(int(VECTORS["private_scalar_hex"], 16), ec.SECP256R1())
SIGNER = keys.Signer(PRIVATE)
ONE = VECTORS["one_file"]
FOLDER = VECTORS["folder"]


def _sha(hex_content: str) -> str:
    return "sha256:" + hashlib.sha256(bytes.fromhex(hex_content)).hexdigest()


ONE_FILES = [(ONE["name"], _sha(ONE["content_hex"]))]
FOLDER_FILES = [(name, _sha(content)) for name, content in FOLDER["files_hex"].items()]


def _payload(bundle: dict) -> dict:
    return json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))


def test_the_fixed_key_has_the_pem_of_the_vector_and_a_p256_key_id():
    pem = SIGNER.public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    assert pem == VECTORS["public_key_pem"]
    text = keys.public_key_to_text(SIGNER.public_key)
    assert len(text) == 124 and SIGNER.algorithm == keys.ECDSA_P256
    assert keys.key_id(keys.public_key_from_text(text)) == SIGNER.keyid
    assert SIGNER.keyid == "sha256:" + hashlib.sha256(base64.b64decode(text)).hexdigest()
    assert ossf_signature.key_hint(SIGNER.public_key) == ONE["signature"]["verificationMaterial"]["publicKey"]["hint"]


@pytest.mark.parametrize("case,files", [(ONE, ONE_FILES), (FOLDER, FOLDER_FILES)], ids=["one-file", "folder"])
def test_signatures_of_the_reference_implementation_verify(case, files):
    signed = ossf_signature.verify(case["signature"], SIGNER.public_key)
    ossf_signature.check_covers(signed, files)
    assert signed.model_name == case["name"]
    assert signed.resources == ossf_signature.resources_for(files)


@pytest.mark.parametrize("case,files", [(ONE, ONE_FILES), (FOLDER, FOLDER_FILES)], ids=["one-file", "folder"])
def test_our_payload_says_what_the_reference_payload_says(case, files):
    ours = json.loads(ossf_signature.build_payload(case["name"], ossf_signature.resources_for(files)))
    theirs = _payload(case["signature"])
    assert ours["subject"] == theirs["subject"]  # the root digest over the resource digests
    assert ours["predicateType"] == theirs["predicateType"] and ours["_type"] == theirs["_type"]
    assert sorted(ours["predicate"]["resources"], key=lambda r: r["name"]) == sorted(theirs["predicate"]["resources"], key=lambda r: r["name"])
    for field in ("method", "hash_type", "allow_symlinks"):
        assert ours["predicate"]["serialization"][field] == theirs["predicate"]["serialization"][field]


def test_what_we_sign_verifies_and_round_trips_through_a_file():
    bundle = ossf_signature.sign(SIGNER, "m", FOLDER_FILES)
    again = ossf_signature.load(ossf_signature.dumps(bundle))
    signed = ossf_signature.verify(again, SIGNER.public_key)
    ossf_signature.check_covers(signed, FOLDER_FILES)
    assert again["verificationMaterial"] == {"publicKey": {"hint": ossf_signature.key_hint(SIGNER.public_key)}, "tlogEntries": []}
    assert again["dsseEnvelope"]["signatures"][0]["keyid"] == ""


def test_a_signature_over_other_bytes_or_other_files_is_named():
    signed = ossf_signature.verify(ONE["signature"], SIGNER.public_key)
    with pytest.raises(VerificationError, match=r"\. has digest .* in the signature but"):
        ossf_signature.check_covers(signed, [("one.gguf", "sha256:" + "0" * 64)])
    folder = ossf_signature.verify(FOLDER["signature"], SIGNER.public_key)
    with pytest.raises(VerificationError, match="m-00002-of-00002.gguf is signed but not part of the release"):
        ossf_signature.check_covers(folder, FOLDER_FILES[:1] + [("other.gguf", FOLDER_FILES[0][1])])


def test_another_key_an_ed25519_key_and_an_altered_payload_are_refused():
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(VerificationError, match="made with key .*, not with key"):
        ossf_signature.verify(ONE["signature"], other)
    with pytest.raises(VerificationError, match="need an ECDSA P-256 key"):
        ossf_signature.verify(ONE["signature"], keys.generate_private_key().public_key())
    altered = copy.deepcopy(ONE["signature"])
    statement = _payload(altered)
    statement["predicate"]["resources"][0]["digest"] = "ab" * 32
    altered["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    with pytest.raises(VerificationError, match="does not verify"):
        ossf_signature.verify(altered, SIGNER.public_key)


def _signed_with(statement: dict) -> dict:
    payload = json.dumps(statement).encode()
    bundle = ossf_signature.sign(SIGNER, "x", ONE_FILES)
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(payload).decode()
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(SIGNER.sign(dsse.pae(ossf_signature.PAYLOAD_TYPE, payload))).decode()
    return bundle


def _statement(**changes) -> dict:
    statement = json.loads(ossf_signature.build_payload("x", ossf_signature.resources_for(ONE_FILES)))
    statement.update(changes)
    return statement


@pytest.mark.parametrize("bundle,message", [
    ([], "not a JSON object"),
    ({"mediaType": "application/json"}, "mediaType"),
    ({"mediaType": ossf_signature.MEDIA_TYPE, "verificationMaterial": {"certificate": {}}}, "not made with a key"),
    (_signed_with(_statement(predicateType="https://model_signing/Digests/v0.1")), "predicateType"),
    (_signed_with(_statement(subject=[])), "exactly one subject"),
    (_signed_with(_statement(subject=[{"name": "x", "digest": {"sha256": "00" * 32}}])), "subject digest does not match"),
    (_signed_with(_statement(predicate={"serialization": {"method": "shards", "hash_type": "sha256"}, "resources": []})), "per-file sha256"),
    (_signed_with(_statement(_type="https://in-toto.io/Statement/v0.1")), "in-toto"),
])
def test_malformed_signatures_get_a_clear_format_error(bundle, message):
    with pytest.raises(FormatError, match=message):
        ossf_signature.verify(bundle, SIGNER.public_key)


def test_load_refuses_what_is_not_a_signature_file():
    with pytest.raises(FormatError, match="not JSON"):
        ossf_signature.load(b"-----BEGIN PGP SIGNATURE-----")
    with pytest.raises(FormatError, match="larger than"):
        ossf_signature.load(b" " * (ossf_signature.MAX_BUNDLE_BYTES + 1))
    with pytest.raises(FormatError, match="not JSON"):
        ossf_signature.load(b"[" * 100_000 + b"]" * 100_000)


def test_an_ed25519_signer_makes_no_model_signing_signature():
    with pytest.raises(FormatError, match="elliptic-curve keys only"):
        ossf_signature.sign(keys.Signer(keys.generate_private_key()), "m", ONE_FILES)


# -- ECDSA P-256 publisher keys through the formats that carry keys ------------------------------------

def test_an_ecdsa_key_signs_and_registers_like_an_ed25519_key():
    text = keys.public_key_to_text(SIGNER.public_key)
    payload = statements.build_key_event("register", keyid=SIGNER.keyid, public_key=text, owner="alice", time="2026-11-27T00:00:00Z")
    envelope = dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, SIGNER)
    assert dsse.verify_envelope(envelope, {SIGNER.keyid: keys.public_key_from_text(text)}).keyid == SIGNER.keyid
    assert statements.parse_key_event(payload).public_key == text
    assert not keys.verify_signature(SIGNER.public_key, b"\0" * 64, b"x")
    assert not keys.verify_signature(SIGNER.public_key, b"\0" * 1000, b"x")


@pytest.mark.parametrize("curve", [ec.SECP384R1(), ec.SECP256K1()])
def test_other_curves_are_refused_in_text_form_and_as_signers(curve):
    other = ec.generate_private_key(curve)
    der = other.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(FormatError):
        keys.public_key_from_text(base64.b64encode(der).decode())
    with pytest.raises(TypeError):
        keys.Signer(other)


def test_a_compressed_p256_point_is_not_the_text_form():
    der = SIGNER.public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    compressed = SIGNER.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    assert len(der) == 91 and len(compressed) == 33
    with pytest.raises(FormatError):
        keys.public_key_from_text(base64.b64encode(der[:-1] + bytes([der[-1] ^ 1])).decode())  # not on the curve


def test_load_private_key_takes_openssl_ec_key_files_and_refuses_other_curves(tmp_path):
    traditional = PRIVATE.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    (tmp_path / "ec.pem").write_bytes(traditional)
    assert keys.key_id(keys.load_private_key(tmp_path / "ec.pem").public_key()) == SIGNER.keyid
    with pytest.raises(FormatError, match="holds an ECDSA P-256 key, not an Ed25519 private key"):
        keys.load_private_key(tmp_path / "ec.pem", algorithms=(keys.ED25519,))
    (tmp_path / "p384.pem").write_bytes(ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with pytest.raises(FormatError, match="curve secp384r1, not an Ed25519 or ECDSA P-256 private key"):
        keys.load_private_key(tmp_path / "p384.pem")
