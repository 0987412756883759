"""C2SP signed-note checkpoints: fixed vector, Go interop (sumdb), malformed and forged notes."""
import base64
import json
from pathlib import Path

import pytest

from assay.core import checkpoint as cp, keys
from assay.core.errors import FormatError, VerificationError

V = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "checkpoint.json").read_text(encoding="utf-8"))
KV = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "keys.json").read_text())
SK = keys.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
NAME = V["origin"]
VKEY = KV["vkey"]
OTHER = keys.Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))

# Example from the golang.org/x/mod/sumdb/note documentation.
GO_DOC_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_DOC_NOTE = ("If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n"
               "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n")
# A real checkpoint signed by sum.golang.org, and Go's published verifier key for it.
SUMDB_VKEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
SUMDB_NOTE = ("go.sum database tree\n65664258\nWVVNVD2qx+fTq31zkj6UAqxT5X6HvGphGM+o8Thnbsg=\n\n"
              "\u2014 sum.golang.org Az3grligJmgX7KGyGPKybykNTh3VgsbLvUuvOwrM5zLVlulmFp2wdvbxOw74/gcNxURShXEpb7RXcs3+BYflYN+w0gQ=\n")


def test_fixed_vector():
    root = bytes.fromhex(V["root_hex"])
    assert cp.sign_checkpoint(NAME, 8, root, NAME, SK) == V["signed"]
    assert cp.verifier_key_string(NAME, SK.public_key()) == VKEY
    c = cp.verify_checkpoint(V["signed"], VKEY)
    assert (c.origin, c.size, c.root, c.extensions) == (NAME, 8, root, ())
    assert cp.verify_checkpoint(V["signed"], (NAME, SK.public_key())) == c
    assert V["signed"].startswith(f"{NAME}\n8\n{base64.b64encode(root).decode()}\n\n\u2014 {NAME} ")


def test_signature_line_layout():
    body, sigs = cp.parse_note(V["signed"])
    assert len(sigs) == 1 and sigs[0].name == NAME and len(sigs[0].signature) == 64
    import hashlib
    pub = keys.public_key_bytes(SK.public_key())
    assert sigs[0].key_hash == hashlib.sha256(NAME.encode() + b"\n\x01" + pub).digest()[:4]
    key_data = base64.b64encode(bytes([1]) + pub).decode()
    assert VKEY == f"{NAME}+{sigs[0].key_hash.hex()}+{key_data}"


def test_go_note_documentation_example():
    name, pk = cp.parse_verifier_key(GO_DOC_VKEY)
    assert cp.verify_note(GO_DOC_NOTE, name, pk).startswith("If you think cryptography")


def test_real_sumdb_checkpoint():
    c = cp.verify_checkpoint(SUMDB_NOTE, SUMDB_VKEY, origin="go.sum database tree")
    assert c.size == 65664258 and c.root == base64.b64decode("WVVNVD2qx+fTq31zkj6UAqxT5X6HvGphGM+o8Thnbsg=")
    with pytest.raises(VerificationError, match="checkpoint is for log"):
        cp.verify_checkpoint(SUMDB_NOTE, SUMDB_VKEY)  # origin differs from the key name
    with pytest.raises(VerificationError, match="does not verify"):
        cp.verify_checkpoint(SUMDB_NOTE.replace("65664258", "65664259"), SUMDB_VKEY, origin="go.sum database tree")


def test_extensions_and_size_zero():
    text = cp.sign_checkpoint(NAME, 0, bytes(32), NAME, SK, extensions=("ext one",))
    c = cp.verify_checkpoint(text, VKEY)
    assert (c.size, c.extensions) == (0, ("ext one",))


def test_extra_signatures_by_unknown_keys_are_ignored():
    extra = cp.sign_note(cp.parse_note(V["signed"])[0], "witness.example", OTHER).split("\n\n", 1)[1]
    assert cp.verify_checkpoint(V["signed"] + extra, VKEY).size == 8
    assert cp.verify_checkpoint(V["signed"].split("\n\n")[0] + "\n\n" + extra + V["signed"].split("\n\n")[1], VKEY).size == 8


def test_forgeries():
    body = cp.parse_note(V["signed"])[0]
    other_signed = cp.sign_note(body, NAME, OTHER)  # same name, another key
    with pytest.raises(VerificationError, match="not signed by the pinned log key"):
        cp.verify_checkpoint(other_signed, VKEY)
    with pytest.raises(VerificationError, match="not signed by the pinned log key"):
        cp.verify_checkpoint(V["signed"], cp.verifier_key_string(NAME, OTHER.public_key()))
    with pytest.raises(VerificationError, match="not signed by the pinned log key"):
        cp.verify_checkpoint(cp.sign_note(body, "someone-else", SK), VKEY)
    for old, new in (("\n8\n", "\n9\n"), ("Xcna", "Xcnb")):
        with pytest.raises(VerificationError, match="does not verify"):
            cp.verify_checkpoint(V["signed"].replace(old, new, 1), VKEY)
    sig_line = V["signed"].rsplit("\u2014 ", 1)[1].split(" ")[1].strip()
    raw = bytearray(base64.b64decode(sig_line))
    raw[10] ^= 1
    with pytest.raises(VerificationError, match="does not verify"):
        cp.verify_checkpoint(V["signed"].replace(sig_line, base64.b64encode(bytes(raw)).decode()), VKEY)


def test_only_unknown_keys():
    text = cp.sign_checkpoint(NAME, 8, bytes(32), "stranger", OTHER)
    with pytest.raises(VerificationError, match="signed by: stranger"):
        cp.verify_checkpoint(text, VKEY)


@pytest.mark.parametrize("text", [
    V["signed"].replace("\u2014", "-"),
    V["signed"].replace("\u2014 ", "\u2014"),
    V["signed"].rstrip("\n"),
    V["signed"].replace("\n\n", "\n"),
    V["signed"] + "trailing\n",
    V["signed"].replace(f"\u2014 {NAME} ", f"\u2014 {NAME}  "),
    V["signed"].replace(f"\u2014 {NAME} ", "\u2014 bad+name "),
    V["signed"][:-5] + "!!!!\n",
    V["signed"].replace("\n8\n", "\n8\r\n"),
    "", None, 42,
])
def test_malformed_notes(text):
    with pytest.raises((FormatError, VerificationError)):
        cp.verify_checkpoint(text, VKEY)


@pytest.mark.parametrize("body", [
    f"{NAME}\n08\n{base64.b64encode(bytes(32)).decode()}\n",
    f"{NAME}\n-1\n{base64.b64encode(bytes(32)).decode()}\n",
    f"{NAME}\n1e3\n{base64.b64encode(bytes(32)).decode()}\n",
    f"{NAME}\n \n{base64.b64encode(bytes(32)).decode()}\n",
    f"{NAME}\n99999999999999999999\n{base64.b64encode(bytes(32)).decode()}\n",
    f"{NAME}\n8\n{base64.b64encode(bytes(31)).decode()}\n",
    f"{NAME}\n8\nnot base64!\n",
    f"{NAME}\n8\n",
    f"{NAME}\n",
])
def test_malformed_checkpoint_bodies(body):
    with pytest.raises(FormatError, match="invalid checkpoint"):
        cp.verify_checkpoint(cp.sign_note(body, NAME, SK), VKEY)


@pytest.mark.parametrize("vkey", [
    "", "name", "name+abc+key", VKEY.replace(VKEY.split("+")[1], "00000000"), VKEY.replace("+AQ", "+Ag"),
    "bad name+faed9aa7+" + VKEY.split("+", 2)[2], VKEY[:-4], None,
])
def test_bad_verifier_keys(vkey):
    with pytest.raises(FormatError):
        cp.parse_verifier_key(vkey)


def test_sign_rejects_bad_input():
    for args in ((NAME, -1, bytes(32)), (NAME, 1, bytes(31)), ("", 1, bytes(32)), ("two\nlines", 1, bytes(32))):
        with pytest.raises(FormatError):
            cp.sign_checkpoint(*args, NAME, SK)
    with pytest.raises(FormatError):
        cp.sign_checkpoint(NAME, 1, bytes(32), "bad name", SK)
