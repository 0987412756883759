"""C2SP tlog-cosignature v1 (Ed25519): fixed vector, real witnesses' cosignatures, vkeys, verification."""
import base64
import hashlib
import re

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from assay.core import checkpoint as cp
from assay.core import cosignature as cs
from assay.core.errors import FormatError

SK = Ed25519PrivateKey.from_private_bytes(bytes([7]) * 32)
OTHER = Ed25519PrivateKey.from_private_bytes(bytes([8]) * 32)
LOG_SK = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
NAME = "witness.example/w1"
BODY = "example.com/log\n8\n" + base64.b64encode(bytes(range(32))).decode() + "\n"
TIMESTAMP = 1700000000
VKEY = "witness.example/w1+aa4a09d1+BOpKbGPinFIKvvVQexMuxfmVR3auvr57kkIe6mkURtIs"
LINE = ("\u2014 witness.example/w1 qkoJ0QAAAABlU/EA+sediyWL449bqrYgV+7xJOJelbOdreGOWQGvR7rN4Duzc4sa2tndQ18/"
        "d03A4BX8alyx4G2qDSIcJCoDW9bYCw==\n")

# A real checkpoint of the arche2025h1 CT log with real witness cosignatures and the witnesses'
# published vkeys (as quoted in the tlog_scales and transparency-dev/formats test suites).
REAL_CHECKPOINT = (
    "arche2025h1.staging.ct.transparency.dev\n1432088532\nU7WM79jrzyhGZ5/GUBTpM7NzwdyfFx61t3RovgcC4Ro=\n\n"
    "\u2014 arche2025h1.staging.ct.transparency.dev zTM8sQAAAZ5W0WdjBAMARjBEAiBjW5IQf9pvsYLfQFX6hoGREPMHbdQ3urbllzalApkptQIgIpwtEroeW2BXaHAI4kJXFbon5Ch9MNL5zRNZ55lvGt0=\n"
    "\u2014 arche2025h1.staging.ct.transparency.dev ui8GwCF1+kWqZrxGdhj4aX3gcw7XUlXQQabg/27lefwhUkzbC3NygNI75MdhL1bfTW9g8Ei59RA23oHP7Ry1k3ZFWwQ=\n"
    "\u2014 transparency.dev/DEV:witness-little-garden 2AQqhwAAAABqEiEgzgFIqqhbUoDwjMWE6UP8nd8/KYTzwZ2rhIgcqoXHAwVkjZr4AscylP3v7sEodkRAErumC2q44vdgJY096st5BQ==\n"
    "\u2014 witness1.smartit.nu/witness1 pIyCDwAAAABqEiEghIp82KWebrw7/oHQwlTAm3g2RKS4+eebl8eO0WH+/iEcxZ75W3u5hNI7TOQtmJbqmNWVuE0tgh0XwzdZsDsUAQ==\n"
    "\u2014 remora.n621.de 2net5wAAAABqEiEgPlfF3V06o0Y+fHM+J5J9s27wgxxcOVSpZ/2g/KSiXCg9DEZI+aVCIobWX9sXTynk5XeU/zZ0WBxtqB0DrAWfBw==\n"
    "\u2014 witness.stagemole.eu Z/euoAAAAABqEiEgw0i+7g2ENfDAWHmtRzCfKTHSDwYDJA2NmKeGi9Y8FtEyOUvVr+AJmIY/2TUFucgKi7lI7cUiOvKFYe/TmN9DAg==\n"
)
REAL_LOG_VKEY = "arche2025h1.staging.ct.transparency.dev+ba2f06c0+AU0vHmlGCS/PdN8b2OaGmKprLI8HKM+dJ472xgFYh15f"
REAL_WITNESSES = [
    "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",
    "transparency.dev/DEV:witness-little-garden+d8042a87+BCtusOxINQNUTN5Oj8HObRkh2yHf/MwYaGX4CPdiVEPM",
    "witness1.smartit.nu/witness1+a48c820f+BPSFWg9G6KPiO7QPryYO5Xq4oYJJ+kAvLKLSimDhoxMO",
]
REAL_TIME = 1779573024


def raw_public(private_key):
    return private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def signed_checkpoint(body=BODY):
    return cp.sign_note(body, "example.com/log", LOG_SK)


# ---------------------------------------------------------------- fixed vector

def test_fixed_vector():
    assert cs.witness_vkey(NAME, SK.public_key()) == VKEY
    assert cs.sign_cosignature(BODY, NAME, SK, TIMESTAMP) == LINE
    assert cs.sign_cosignature(signed_checkpoint(), NAME, SK, TIMESTAMP) == LINE  # a signed note: its body


def test_fixed_vector_by_independent_computation():
    """The same line and vkey from the spec's definitions, with hashlib and cryptography only."""
    pub = raw_public(SK)
    key_id = hashlib.sha256(NAME.encode() + b"\n" + b"\x04" + pub).digest()[:4]
    key_data = base64.b64encode(b"\x04" + pub).decode()
    assert VKEY == f"{NAME}+{key_id.hex()}+{key_data}"
    message = b"cosignature/v1\ntime 1700000000\n" + BODY.encode()
    assert cs.cosignature_message(BODY, TIMESTAMP) == message
    signature = SK.sign(message)  # Ed25519 is deterministic
    blob = key_id + TIMESTAMP.to_bytes(8, "big") + signature
    assert LINE == "\u2014 " + NAME + " " + base64.b64encode(blob).decode() + "\n"
    raw = base64.b64decode(LINE.split(" ")[2])
    assert len(raw) == 76 and raw[4:12] == bytes.fromhex("000000006553f100")
    SK.public_key().verify(raw[12:], message)


def test_fixed_vector_verifies():
    note = cs.add_cosignatures(signed_checkpoint(), [LINE])
    assert cs.verify_cosignatures(note, [VKEY]) == {NAME: TIMESTAMP}
    assert cs.verify_cosignatures(note, {"w1": VKEY}) == {NAME: TIMESTAMP}
    assert cs.verify_cosignatures(note, VKEY) == {NAME: TIMESTAMP}
    assert cp.verify_checkpoint(note, cp.verifier_key_string("example.com/log", LOG_SK.public_key())).size == 8


# ---------------------------------------------------------------- real witnesses

def test_real_witness_cosignatures():
    assert cs.verify_cosignatures(REAL_CHECKPOINT, REAL_WITNESSES) == {cs.parse_witness_vkey(v)[0]: REAL_TIME for v in REAL_WITNESSES}
    assert cp.verify_checkpoint(REAL_CHECKPOINT, REAL_LOG_VKEY).size == 1432088532
    forged = REAL_CHECKPOINT.replace("1432088532", "1432088533")
    assert cs.verify_cosignatures(forged, REAL_WITNESSES) == {}


def test_real_witness_vkeys_parse():
    for vkey in REAL_WITNESSES:
        name, public_key = cs.parse_witness_vkey(vkey)
        assert cs.witness_vkey(name, public_key) == vkey


def test_timestamp_of_go_vector():
    """transparency-dev/formats note_cosigv1_test.go: CosignatureTimestamp."""
    blob = base64.b64decode("ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA==")
    assert cs.parse_cosignature_blob(blob)[1] == 1727964367
    plain = base64.b64decode("eQjRQm6eSKzFoiYalgwCPXu2y3ijtg68is9M46JKxuZB+dRfTmeQeDBoXnvxZx2ugnkyV+MUMLXpWs1hPb/W/4xkNQY=")
    with pytest.raises(FormatError, match="68 bytes"):
        cs.parse_cosignature_blob(plain)
    with pytest.raises(FormatError, match="2\\*\\*63"):
        cs.parse_cosignature_blob(bytes(4) + bytes([0x80]) + bytes(7) + bytes(64))


# ---------------------------------------------------------------- verify_cosignatures

def test_wrong_key_is_not_counted():
    impostor = cs.witness_vkey(NAME, OTHER.public_key())  # same name, other key: other key ID
    note = cs.add_cosignatures(signed_checkpoint(), [LINE])
    assert cs.verify_cosignatures(note, [impostor]) == {}


def test_tampered_body_is_not_counted():
    tampered = BODY.replace("\n8\n", "\n9\n")
    note = cs.add_cosignatures(signed_checkpoint(tampered), [LINE])
    assert cs.verify_cosignatures(note, [VKEY]) == {}


def test_right_key_id_bad_signature_is_not_counted():
    raw = bytearray(base64.b64decode(LINE.split(" ")[2]))
    raw[-1] ^= 1
    bad = f"\u2014 {NAME} {base64.b64encode(bytes(raw)).decode()}\n"
    note = cs.add_cosignatures(signed_checkpoint(), [bad])
    assert cs.verify_cosignatures(note, [VKEY]) == {}
    short = f"\u2014 {NAME} {base64.b64encode(bytes(raw[:40])).decode()}\n"  # right key ID, wrong length
    assert cs.verify_cosignatures(cs.add_cosignatures(signed_checkpoint(), [short]), [VKEY]) == {}
    assert cs.verify_cosignatures(cs.add_cosignatures(signed_checkpoint(), [bad, LINE]), [VKEY]) == {NAME: TIMESTAMP}


def test_other_witness_lines_are_ignored():
    other_line = cs.sign_cosignature(BODY, "witness.example/w2", OTHER, TIMESTAMP + 5)
    note = cs.add_cosignatures(signed_checkpoint(), [other_line, LINE])
    assert cs.verify_cosignatures(note, [VKEY]) == {NAME: TIMESTAMP}
    both = [VKEY, cs.witness_vkey("witness.example/w2", OTHER.public_key())]
    assert cs.verify_cosignatures(note, both) == {NAME: TIMESTAMP, "witness.example/w2": TIMESTAMP + 5}
    assert cs.verify_cosignatures(note, []) == {}


def test_newest_valid_timestamp_wins():
    later = cs.sign_cosignature(BODY, NAME, SK, TIMESTAMP + 60)
    note = cs.add_cosignatures(signed_checkpoint(), [LINE, later])
    assert cs.verify_cosignatures(note, [VKEY]) == {NAME: TIMESTAMP + 60}


def test_log_signature_is_not_a_cosignature():
    """A plain note signature (type 0x01) by the same key and name never counts as a cosignature."""
    note = cp.sign_note(BODY, NAME, SK)
    assert cs.verify_cosignatures(note, [VKEY]) == {}


@pytest.mark.parametrize("vkey, message", [
    (REAL_LOG_VKEY, "type 0x01"),  # a log (note) key, not a cosignature key
    ("TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6", "type 0x01"),
    (VKEY.replace("+BOp", "+BOp!"), "not base64"),
    (VKEY.replace("aa4a09d1", "aa4a09d2"), "key ID does not match"),
    (VKEY.replace("aa4a09d1", "AA4A09D1"), "8 lowercase hex"),
    (VKEY.replace("aa4a09d1", "aa4a09"), "8 lowercase hex"),
    ("witness example+aa4a09d1+BOpKbGPinFIKvvVQexMuxfmVR3auvr57kkIe6mkURtIs", "bad name"),
    ("+aa4a09d1+BOpKbGPinFIKvvVQexMuxfmVR3auvr57kkIe6mkURtIs", "bad name"),
    (VKEY[:-4], "got type 0x04, 29 bytes"),
    (VKEY[:-1], "not base64"),
    (VKEY + "AAAA", "32 bytes"),
    ("witness.example/w1+aa4a09d1", "expected name+keyid+key"),
    (None, "expected name+keyid+key"),
])
def test_malformed_vkey(vkey, message):
    with pytest.raises(FormatError, match=re.escape(message)) as info:
        cs.parse_witness_vkey(vkey)
    assert "\n" not in str(info.value)
    with pytest.raises(FormatError):
        cs.verify_cosignatures(cs.add_cosignatures(signed_checkpoint(), [LINE]), [VKEY, vkey])


@pytest.mark.parametrize("note", [BODY, BODY + "\n", BODY + "\n\u2014 x\n", BODY + "\n\u2014 w1 !!!!\n", "", 42])
def test_malformed_note(note):
    with pytest.raises(FormatError):
        cs.verify_cosignatures(note, [VKEY])


# ---------------------------------------------------------------- signing and adding lines

def test_sign_defaults_to_now_and_checks_input():
    import time

    before = int(time.time())
    line = cs.sign_cosignature(BODY, NAME, SK)
    (timestamp,) = cs.verify_cosignatures(cs.add_cosignatures(signed_checkpoint(), [line]), [VKEY]).values()
    assert before <= timestamp <= int(time.time())
    for bad in (-1, 1 << 63, True, 1.5):
        with pytest.raises(FormatError, match="timestamp"):
            cs.sign_cosignature(BODY, NAME, SK, bad)
    for body in ("not a checkpoint\n", BODY.rstrip("\n"), "example.com/log\n8\nnot-base64\n"):
        with pytest.raises(FormatError):
            cs.sign_cosignature(body, NAME, SK, TIMESTAMP)
    with pytest.raises(FormatError):
        cs.sign_cosignature(BODY, "bad name", SK, TIMESTAMP)


def test_add_cosignatures_keeps_the_note_form():
    note = signed_checkpoint()
    other_line = cs.sign_cosignature(BODY, "witness.example/w2", OTHER, TIMESTAMP)
    out = cs.add_cosignatures(note, [LINE, LINE.rstrip("\n"), other_line + LINE])  # duplicates kept once
    assert out == note + LINE + other_line
    body, sigs = cp.parse_note(out)
    assert body == BODY and [s.name for s in sigs] == ["example.com/log", NAME, "witness.example/w2"]
    assert cs.add_cosignatures(out, [LINE]) == out
    with pytest.raises(FormatError):
        cs.add_cosignatures(note, ["not a signature line"])
    with pytest.raises(FormatError):
        cs.add_cosignatures(BODY, [LINE])  # not a signed note
