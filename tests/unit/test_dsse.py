"""DSSE envelopes: PAE, fixed vectors, securesystemslib interop, malformed and forged input."""
import base64
import copy
import json
from pathlib import Path

import pytest
from securesystemslib.dsse import Envelope
from securesystemslib.signer import CryptoSigner, SSlibKey

from assay.core import dsse, keys, statements
from assay.core.errors import FormatError, VerificationError

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
DSSE_V = json.loads((VECTORS / "dsse.json").read_text())
STMT_V = json.loads((VECTORS / "statements.json").read_text())
SK = keys.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
SIGNER = keys.Signer(SK)
TRUSTED = {SIGNER.keyid: SIGNER.public_key}
OTHER = keys.Signer(keys.Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33))))


def test_pae_spec_example():
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"


@pytest.mark.parametrize("case", DSSE_V["pae"])
def test_pae_vectors(case):
    assert dsse.pae(case["payload_type"], bytes.fromhex(case["payload_hex"])).hex() == case["pae_hex"]


def test_pae_counts_utf8_bytes():
    assert dsse.pae("é", b"\x00") == b"DSSEv1 2 \xc3\xa9 1 \x00"


def test_fixed_release_envelope():
    payload = STMT_V["release_payload"].encode()
    env = dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, SIGNER)
    assert env == STMT_V["release_envelope"]  # Ed25519 is deterministic
    assert dsse.envelope_digest(env) == STMT_V["release_envelope_digest"]
    v = dsse.verify_envelope(STMT_V["release_envelope"], TRUSTED)
    assert (v.payload, v.keyid, v.payload_type) == (payload, SIGNER.keyid, "application/vnd.in-toto+json")


def test_sign_accepts_bare_private_key():
    assert dsse.sign_envelope(b"x", "t", SK) == dsse.sign_envelope(b"x", "t", SIGNER)


def test_interop_ours_verified_by_securesystemslib():
    env = dsse.sign_envelope(b'{"hello":"world"}', statements.PAYLOAD_TYPE, SIGNER)
    key = SSlibKey.from_crypto(SIGNER.public_key, keyid=SIGNER.keyid)
    assert key.keytype == "ed25519" and key.scheme == "ed25519"
    verified = Envelope.from_dict(copy.deepcopy(env)).verify([key], 1)
    assert list(verified) == [SIGNER.keyid]
    tampered = copy.deepcopy(env)
    tampered["payload"] = base64.b64encode(b'{"hello":"there"}').decode()
    with pytest.raises(Exception):
        Envelope.from_dict(tampered).verify([key], 1)


def test_interop_securesystemslib_verified_by_ours():
    key = SSlibKey.from_crypto(SIGNER.public_key, keyid=SIGNER.keyid)
    env = Envelope(b'{"a":1}', statements.PAYLOAD_TYPE, {})
    env.sign(CryptoSigner(SK, key))
    v = dsse.verify_envelope(env.to_dict(), TRUSTED)
    assert v.payload == b'{"a":1}' and v.keyid == SIGNER.keyid
    # identical bytes: both sign the same PAE with a deterministic scheme
    assert env.to_dict()["signatures"] == dsse.sign_envelope(b'{"a":1}', statements.PAYLOAD_TYPE, SIGNER)["signatures"]


def _flip(b64: str, bit: int = 0) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[bit // 8 % len(raw)] ^= 1 << (bit % 8)
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize("bit", [0, 7, 100, 511])
def test_bit_flip_in_signature(bit):
    env = copy.deepcopy(STMT_V["release_envelope"])
    env["signatures"][0]["sig"] = _flip(env["signatures"][0]["sig"], bit)
    with pytest.raises(VerificationError, match=SIGNER.keyid):
        dsse.verify_envelope(env, TRUSTED)


@pytest.mark.parametrize("bit", [0, 9, 1000])
def test_bit_flip_in_payload(bit):
    env = copy.deepcopy(STMT_V["release_envelope"])
    env["payload"] = _flip(env["payload"], bit)
    with pytest.raises(VerificationError, match="does not verify"):
        dsse.verify_envelope(env, TRUSTED)


def test_payload_type_is_signed():
    env = dsse.sign_envelope(b"{}", "application/json", SIGNER)
    env["payloadType"] = statements.PAYLOAD_TYPE
    with pytest.raises(VerificationError):
        dsse.verify_envelope(env, TRUSTED)


def test_unexpected_payload_type():
    env = dsse.sign_envelope(b"{}", "application/json", SIGNER)
    with pytest.raises(FormatError, match="payloadType"):
        dsse.verify_envelope(env, TRUSTED)
    assert dsse.verify_envelope(env, TRUSTED, payload_type=None).payload == b"{}"


def test_unknown_and_wrong_keys():
    env = STMT_V["release_envelope"]
    with pytest.raises(VerificationError, match=f"not signed by a trusted key.*{SIGNER.keyid}"):
        dsse.verify_envelope(env, {OTHER.keyid: OTHER.public_key})
    with pytest.raises(VerificationError, match="not signed by a trusted key"):
        dsse.verify_envelope(env, {})
    # the key id is right but the key behind it is not: a forged signature
    with pytest.raises(VerificationError, match=f"signature by key {SIGNER.keyid} does not verify"):
        dsse.verify_envelope(env, {SIGNER.keyid: OTHER.public_key})


def test_one_trusted_signature_among_several():
    env = dsse.sign_envelope(b"{}", statements.PAYLOAD_TYPE, OTHER)
    env["signatures"].append(dsse.sign_envelope(b"{}", statements.PAYLOAD_TYPE, SIGNER)["signatures"][0])
    assert dsse.verify_envelope(env, TRUSTED).keyid == SIGNER.keyid
    assert dsse.verify_envelope(env, {OTHER.keyid: OTHER.public_key}).keyid == OTHER.keyid


def test_url_safe_and_unpadded_base64_accepted():
    env = copy.deepcopy(STMT_V["release_envelope"])
    env["payload"] = base64.urlsafe_b64encode(base64.b64decode(env["payload"])).decode().rstrip("=")
    env["signatures"][0]["sig"] = env["signatures"][0]["sig"].rstrip("=").replace("+", "-").replace("/", "_")
    assert dsse.verify_envelope(env, TRUSTED).keyid == SIGNER.keyid


GOOD = STMT_V["release_envelope"]


@pytest.mark.parametrize("mutate", [
    lambda e: "not a dict",
    lambda e: [e],
    lambda e: {**e, "extra": 1},
    lambda e: {k: v for k, v in e.items() if k != "payload"},
    lambda e: {k: v for k, v in e.items() if k != "payloadType"},
    lambda e: {k: v for k, v in e.items() if k != "signatures"},
    lambda e: {**e, "payloadType": 7},
    lambda e: {**e, "payloadType": ""},
    lambda e: {**e, "payload": 12},
    lambda e: {**e, "payload": e["payload"] + "!"},
    lambda e: {**e, "payload": " " + e["payload"]},
    lambda e: {**e, "payload": e["payload"][:-2] + "\n"},
    lambda e: {**e, "payload": "e31="},  # non-zero trailing bits: not the canonical encoding
    lambda e: {**e, "payload": "e30=="},
    lambda e: {**e, "payload": "A"},
    lambda e: {**e, "signatures": []},
    lambda e: {**e, "signatures": {}},
    lambda e: {**e, "signatures": ["sig"]},
    lambda e: {**e, "signatures": [{"sig": e["signatures"][0]["sig"]}]},
    lambda e: {**e, "signatures": [{"keyid": e["signatures"][0]["keyid"]}]},
    lambda e: {**e, "signatures": [{**e["signatures"][0], "keyid": 5}]},
    lambda e: {**e, "signatures": [{**e["signatures"][0], "sig": None}]},
    lambda e: {**e, "signatures": [{**e["signatures"][0], "sig": "***"}]},
    lambda e: {**e, "signatures": [{**e["signatures"][0], "cert": "x"}]},
    lambda e: {**e, "signatures": e["signatures"] * 17},
])
def test_malformed_envelopes(mutate):
    with pytest.raises(FormatError, match="invalid envelope"):
        dsse.verify_envelope(mutate(copy.deepcopy(GOOD)), TRUSTED)


def test_truncated_signature_is_a_verification_failure():
    env = copy.deepcopy(GOOD)
    env["signatures"][0]["sig"] = base64.b64encode(base64.b64decode(env["signatures"][0]["sig"])[:63]).decode()
    with pytest.raises(VerificationError):
        dsse.verify_envelope(env, TRUSTED)


def _provenance_envelope() -> dict:
    payload = statements.build_provenance_statement(
        subject_name="m.Q8_0.gguf", subject_digest="sha256:" + "a" * 64, builder_id=SIGNER.keyid,
        recipe={"tool": "llama.cpp", "ftype": "Q8_0"}, resolved_dependencies=[{"uri": "assay:blob", "digest": {"sha256": "b" * 64}}],
        started_on="2026-11-24T00:00:00Z", finished_on="2026-11-24T00:00:05Z",
    )
    return dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, SIGNER)


@pytest.mark.parametrize("name", ["release", "verdict", "key_register", "provenance"])
def test_real_envelopes_read_by_standard_readers(name):
    """Every kind of envelope the registry logs verifies with securesystemslib's DSSE reader, and
    its payload parses and validates as an in-toto Statement v1 with the in-toto-attestation
    bindings (protobuf), with the predicate type the design names."""
    from google.protobuf import json_format
    from in_toto_attestation.v1 import statement_pb2
    from in_toto_attestation.v1.statement import Statement

    env = _provenance_envelope() if name == "provenance" else STMT_V[f"{name}_envelope"]
    signer_keyid = env["signatures"][0]["keyid"]
    if name == "key_register":  # signed by the registered key itself (proof of possession)
        public = keys.public_key_from_text(statements.parse_key_event(base64.b64decode(env["payload"])).public_key)
    else:
        public = SIGNER.public_key
    key = SSlibKey.from_crypto(public, keyid=signer_keyid)
    assert list(Envelope.from_dict(copy.deepcopy(env)).verify([key], 1)) == [signer_keyid]
    stmt = Statement.copy_from_pb(json_format.Parse(base64.b64decode(env["payload"]), statement_pb2.Statement()))
    stmt.validate()
    expected = {"release": "urn:assay:release:v1", "verdict": "https://slsa.dev/verification_summary/v1",
                "provenance": "https://slsa.dev/provenance/v1"}
    if name in expected:
        assert stmt.pb.predicate_type == expected[name]
    assert stmt.pb.subject[0].digest["sha256"]
