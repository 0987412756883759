"""Ed25519 keys: ids, text/PEM forms, private key files (ECDSA P-256 publisher keys: test_ossf_signature.py)."""
import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from assay.core import keys
from assay.core.errors import AssayError, FormatError

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "keys.json").read_text())
SK = keys.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(VECTORS["seed_hex"]))
PK = SK.public_key()


def test_fixed_key_vectors():
    assert keys.key_id(PK) == VECTORS["keyid"]
    assert keys.public_key_to_text(PK) == VECTORS["public_key"]
    assert keys.fingerprint(PK) == VECTORS["fingerprint"]
    assert VECTORS["keyid"].startswith("sha256:") and len(VECTORS["keyid"]) == 71
    assert keys.key_id(keys.public_key_from_text(VECTORS["public_key"])) == VECTORS["keyid"]


@pytest.mark.parametrize("text", [
    "", "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg", "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbh=",
    "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=", " 6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=", "AAAA", None, 42,
    "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbgA",
])
def test_public_key_from_text_rejects(text):
    with pytest.raises(FormatError):
        keys.public_key_from_text(text)


def test_signer_and_sign():
    s = keys.Signer(SK)
    assert s.keyid == VECTORS["keyid"]
    assert keys.verify_signature(PK, s.sign(b"x"), b"x")
    assert not keys.verify_signature(PK, s.sign(b"x"), b"y")
    assert keys.as_signer(SK).keyid == s.keyid and keys.as_signer(s) is s
    with pytest.raises(TypeError):
        keys.Signer(ec.generate_private_key(ec.SECP384R1()))


def test_save_load_private_key_mode_0600(tmp_path):
    path = tmp_path / "sub" / "default.key"
    keys.save_private_key(path, SK, None)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert keys.key_id(keys.load_private_key(path, None).public_key()) == VECTORS["keyid"]
    assert not keys.is_encrypted_key_file(path)
    assert keys.key_id(keys.load_private_key(path, b"ignored for an unencrypted key").public_key()) == VECTORS["keyid"]
    assert [p.name for p in path.parent.iterdir()] == ["default.key"]  # no temp files left


def test_save_refuses_overwrite(tmp_path):
    path = tmp_path / "k"
    keys.save_private_key(path, SK)
    other = keys.generate_private_key()
    with pytest.raises(FileExistsError) as exc:  # KeyExistsError is both an AssayError and a FileExistsError
        keys.save_private_key(path, other)
    assert isinstance(exc.value, AssayError) and "already exists" in str(exc.value) and "Errno" not in str(exc.value)
    assert keys.key_id(keys.load_private_key(path).public_key()) == VECTORS["keyid"]
    keys.save_private_key(path, other, overwrite=True)
    assert keys.key_id(keys.load_private_key(path).public_key()) == keys.key_id(other.public_key())
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k"]


def test_encrypted_key(tmp_path):
    path = tmp_path / "enc.key"
    keys.save_private_key(path, SK, b"correct horse")
    assert keys.is_encrypted_key_file(path)
    assert b"ENCRYPTED PRIVATE KEY" in path.read_bytes()
    assert keys.key_id(keys.load_private_key(path, b"correct horse").public_key()) == VECTORS["keyid"]
    with pytest.raises(AssayError, match="wrong passphrase"):
        keys.load_private_key(path, b"wrong")
    with pytest.raises(AssayError, match="passphrase is needed"):
        keys.load_private_key(path, None)
    with pytest.raises(AssayError, match="empty passphrase"):
        keys.save_private_key(tmp_path / "x", SK, b"")


def test_load_private_key_errors(tmp_path):
    with pytest.raises(AssayError, match="no key file"):
        keys.load_private_key(tmp_path / "missing")
    (tmp_path / "junk").write_bytes(b"hello")
    with pytest.raises(FormatError, match="not a PEM private key"):
        keys.load_private_key(tmp_path / "junk")
    keys.save_public_key(tmp_path / "pub", PK)
    with pytest.raises(FormatError, match="not a PEM private key"):
        keys.load_private_key(tmp_path / "pub")
    (tmp_path / "ec").write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    assert keys.algorithm_of(keys.load_private_key(tmp_path / "ec")) == keys.ECDSA_P256  # a publisher may sign with P-256
    with pytest.raises(FormatError, match="not an Ed25519 private key"):
        keys.load_private_key(tmp_path / "ec", algorithms=(keys.ED25519,))  # the services sign with Ed25519 only
    with pytest.raises(AssayError, match="directory"):
        keys.load_private_key(tmp_path)


def test_public_key_files(tmp_path):
    keys.save_public_key(tmp_path / "k.pub", PK)
    assert keys.key_id(keys.load_public_key(tmp_path / "k.pub")) == VECTORS["keyid"]
    (tmp_path / "k.txt").write_text(VECTORS["public_key"] + "\n")
    assert keys.key_id(keys.load_public_key(tmp_path / "k.txt")) == VECTORS["keyid"]
    (tmp_path / "bad").write_text("not a key")
    with pytest.raises(FormatError):
        keys.load_public_key(tmp_path / "bad")
    (tmp_path / "ec.pub").write_bytes(ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    with pytest.raises(FormatError, match="not an Ed25519 public key"):
        keys.load_public_key(tmp_path / "ec.pub")
