"""Regenerate the fixed test vectors: `python tests/vectors/make_vectors.py`.

Run this ONLY when a format change is intended; the unit tests compare the code's output with
the checked-in files, so any unintended change to a format breaks them.
Everything is deterministic: Ed25519 with the fixed seed bytes(range(32)), fixed times.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from assay.core import checkpoint, dsse, keyindex, keys, levels, merkle, statements  # noqa: E402
from assay.core.canonical import canonical_json  # noqa: E402

HERE = Path(__file__).resolve().parent
SEED = bytes(range(32))
LOG_NAME = "assay.test/log"
CT_LEAVES = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43",
             bytes(range(0x50, 0x58)), bytes(range(0x60, 0x70))]
# Tricky canonicalization input: UTF-16 key order, number forms, escapes, -0.
CANONICAL_INPUT = (
    '{"numbers": [1e21, 1E+30, 0.1, -0.0, 333333333.33333329, 1e-7, 4.50, 2e-3, 0.000001, 9007199254740991],'
    ' "\\u20ac": "euro", "\\ud83d\\ude00": "smile", "\\ufb33": "dalet", "\\r": "cr", "1": 1, "10": 10, "a": "\\u00e9\\n\\t\\"\\u001f/",'
    ' "nested": {"z": true, "b": null, "A": [], "": {}}}'
)


def fixed_release_payload() -> bytes:
    return statements.build_release_statement(
        subject_name="smollm2-135m-q4_1.gguf",
        subject_digest="sha256:" + "1f" * 32,
        namespace="demo", model="smollm2-135m", tag="q4_1", version=3, quantization="Q4_1",
        base={"name": "demo/smollm2-135m:f16", "digest": "sha256:" + "2e" * 32},
        recipe={"tool": "llama.cpp", "llama_cpp_python_version": "0.3.36", "ggml_build": "b6000",
                "ftype": "Q4_1", "imatrix": None, "options": {"nthread": 1, "pure": False}},
        model_card_digest="sha256:" + "3d" * 32,
        created="2025-01-31T12:00:00Z",
    )


def fixed_verdict_payload(release_payload: bytes, verifier_id: str) -> bytes:
    return statements.build_verdict_statement(
        subject_name="smollm2-135m-q4_1.gguf", subject_digest="sha256:" + "1f" * 32, verifier_id=verifier_id,
        time_created="2025-01-31T12:05:00Z", resource_uri="assay:demo/smollm2-135m:q4_1@3",
        policy_uri="urn:assay:policy:default:v1", release_statement_digest=statements.statement_digest(release_payload),
        passed=True, checks=[
            {"name": "static", "result": "passed", "summary": "header and tensors consistent", "evidence": {"tensors": 30}},
            {"name": "reproduce", "result": "passed", "summary": "bit-exact", "evidence": {"expected_digest": "sha256:" + "1f" * 32}},
            {"name": "probes", "result": "passed", "summary": "top-1 agreement 0.97", "evidence": {"top1": 0.97, "kl": 0.012}},
        ],
    )


def fixed_leveled_verdict_payload(release_payload: bytes, verifier_id: str) -> bytes:
    """A verdict at level reproduced, rebuilt from an original F16 base (the format since levels)."""
    level = levels.Level(levels.REPRODUCED, (levels.ChainLink("demo/smollm2-135m:f16", 1, "sha256:" + "2e" * 32, levels.ORIGINAL),))
    return statements.build_verdict_statement(
        subject_name="smollm2-135m-q4_1.gguf", subject_digest="sha256:" + "1f" * 32, verifier_id=verifier_id,
        time_created="2025-01-31T12:05:00Z", resource_uri="assay:demo/smollm2-135m:q4_1@3",
        policy_uri="urn:assay:policy:default:v1", release_statement_digest=statements.statement_digest(release_payload),
        passed=True, checks=[{"name": "reproduce", "result": "passed", "summary": "bit-exact", "evidence": {}}], level=level,
    )


BLAKE3_PARTS = [("smollm2-135m-q4_1-00001-of-00002.gguf", "sha256:" + "4c" * 32, "blake3:" + "5b" * 32),
                ("smollm2-135m-q4_1-00002-of-00002.gguf", "sha256:" + "6a" * 32, "blake3:" + "79" * 32)]


def fixed_blake3_release_payload() -> bytes:
    """A split original whose files each declare a BLAKE3 digest next to their SHA-256."""
    return statements.build_release_statement(
        subject_name=BLAKE3_PARTS[0][0], subject_digest=BLAKE3_PARTS[0][1],
        namespace="demo", model="smollm2-135m", tag="q4_1-split", version=1, quantization="Q4_1", base=None, recipe=None,
        model_card_digest=None, created="2025-01-31T12:00:00Z",
        parts=[(n, d) for n, d, _ in BLAKE3_PARTS], blake3={d: b for _, d, b in BLAKE3_PARTS},
    )


def fixed_blake3_verdict_payload(release_payload: bytes, verifier_id: str) -> bytes:
    """A verdict whose subject DigestSet repeats the subject's BLAKE3: the verifier checked every declared one."""
    return statements.build_verdict_statement(
        subject_name=BLAKE3_PARTS[0][0], subject_digest=BLAKE3_PARTS[0][1], verifier_id=verifier_id,
        time_created="2025-01-31T12:05:00Z", resource_uri="assay:demo/smollm2-135m:q4_1-split@1",
        policy_uri="urn:assay:policy:default:v1", release_statement_digest=statements.statement_digest(release_payload),
        passed=True, checks=[{"name": "static", "result": "passed", "summary": "checked", "evidence": {"blake3_checked": True}}],
        subject_blake3=BLAKE3_PARTS[0][2],
    )


def fixed_role_payload() -> bytes:
    return statements.build_role_event(namespace="demo", member="alice", role="publisher", time="2025-01-30T00:00:00Z")


BLINDING_KEY = "0f" * 32  # a private namespace's role-blinding key


def fixed_blinded_role_payload() -> bytes:
    """carol made publisher of the private namespace "vault", as the public log shows it."""
    return statements.build_role_event(namespace=statements.blind_namespace(BLINDING_KEY, "vault"),
                                       member=statements.blind_member(BLINDING_KEY, "vault", "carol"),
                                       role="publisher", time="2025-01-30T00:00:00Z")


def fixed_key_index_payload() -> bytes:
    return keyindex.build(LOG_NAME, 5, 8, merkle.root_from_leaves(CT_LEAVES), [5, 7])


INLINE_EVIDENCE_VERDICT = json.loads((HERE / "statements.json").read_text()).get("verdict_payload_inline_evidence") or '{"_type":"https://in-toto.io/Statement/v1","predicate":{"checks":[{"evidence":{"tensors":30},"name":"static","result":"passed","summary":"header and tensors consistent"},{"evidence":{"expected_digest":"sha256:1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f"},"name":"reproduce","result":"passed","summary":"bit-exact"},{"evidence":{"kl":0.012,"top1":0.97},"name":"probes","result":"passed","summary":"top-1 agreement 0.97"}],"inputAttestations":[{"digest":{"sha256":"774f99480c7bfa50ea3a0307dc852943b2d90fc4b280111e3955dec70fd29f10"},"uri":"urn:assay:release-statement"}],"policy":{"uri":"urn:assay:policy:default:v1"},"resourceUri":"assay:demo/smollm2-135m:q4_1@3","timeVerified":"2025-01-31T12:05:00Z","verificationResult":"PASSED","verifiedLevels":[],"verifier":{"id":"sha256:56475aa75463474c0285df5dbf2bcab73da651358839e9b77481b2eab107708c"}},"predicateType":"https://slsa.dev/verification_summary/v1","subject":[{"digest":{"sha256":"1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f"},"name":"smollm2-135m-q4_1.gguf"}]}'


def fixed_verifier_event_payload(keyid: str, public_key: str) -> bytes:
    return statements.build_verifier_event("register", keyid=keyid, public_key=public_key, verifier="cpu-1", time="2025-01-30T00:00:00Z")


def fixed_step_result_payload(release_payload: bytes, verifier_id: str) -> bytes:
    return statements.build_step_result(
        subject_name="smollm2-135m-q4_1.gguf", subject_digest="sha256:" + "1f" * 32,
        release_statement_digest=statements.statement_digest(release_payload), verifier_id=verifier_id, step="static",
        result="passed", summary="header and tensors consistent", evidence={"tensors": 30}, time="2025-01-31T12:01:00Z")


def build() -> dict[str, dict]:
    sk = Ed25519PrivateKey.from_private_bytes(SEED)
    signer = keys.Signer(sk)
    pk_text = keys.public_key_to_text(signer.public_key)
    release = fixed_release_payload()
    verdict = fixed_verdict_payload(release, signer.keyid)
    key_event = statements.build_key_event("register", keyid=signer.keyid, public_key=pk_text, owner="alice", time="2025-01-30T00:00:00Z")
    release_env = dsse.sign_envelope(release, statements.PAYLOAD_TYPE, signer)
    root8 = merkle.root_from_leaves(CT_LEAVES)
    return {
        "keys.json": {
            "seed_hex": SEED.hex(), "public_key": pk_text, "keyid": signer.keyid,
            "fingerprint": keys.fingerprint(signer.public_key),
            "log_name": LOG_NAME, "vkey": checkpoint.verifier_key_string(LOG_NAME, signer.public_key),
        },
        "canonical.json": {
            "input": CANONICAL_INPUT,
            "canonical_utf8_hex": canonical_json(json.loads(CANONICAL_INPUT)).hex(),
        },
        "dsse.json": {
            "pae": [
                {"payload_type": "http://example.com/HelloWorld", "payload_hex": b"hello world".hex(),
                 "pae_hex": b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".hex()},
                {"payload_type": statements.PAYLOAD_TYPE, "payload_hex": b"{}".hex(),
                 "pae_hex": dsse.pae(statements.PAYLOAD_TYPE, b"{}").hex()},
                {"payload_type": "t", "payload_hex": "", "pae_hex": dsse.pae("t", b"").hex()},
            ],
        },
        "statements.json": {
            "release_payload": release.decode("utf-8"),
            "release_statement_digest": statements.statement_digest(release),
            "release_envelope": release_env,
            "release_envelope_digest": dsse.envelope_digest(release_env),
            "release_leaf_hash_hex": merkle.leaf_hash(canonical_json(release_env)).hex(),
            "verdict_payload": verdict.decode("utf-8"),
            "verdict_envelope": dsse.sign_envelope(verdict, statements.PAYLOAD_TYPE, signer),
            "key_register_envelope": dsse.sign_envelope(key_event, statements.PAYLOAD_TYPE, signer),
            "leveled_verdict_payload": fixed_leveled_verdict_payload(release, signer.keyid).decode("utf-8"),
            "role_payload": fixed_role_payload().decode("utf-8"),
            "role_envelope": dsse.sign_envelope(fixed_role_payload(), statements.PAYLOAD_TYPE, signer),
            "blinded_role_payload": fixed_blinded_role_payload().decode("utf-8"),
            "key_index_payload": fixed_key_index_payload().decode("utf-8"),
            "key_index_envelope": dsse.sign_envelope(fixed_key_index_payload(), keyindex.PAYLOAD_TYPE, signer),
            # A verdict as signed before evidence was served apart (checks carry it inline): still read.
            "verdict_payload_inline_evidence": INLINE_EVIDENCE_VERDICT,
            "verifier_event_payload": fixed_verifier_event_payload(signer.keyid, pk_text).decode("utf-8"),
            "step_result_payload": fixed_step_result_payload(release, signer.keyid).decode("utf-8"),
            "blake3_release_payload": fixed_blake3_release_payload().decode("utf-8"),
            "blake3_verdict_payload": fixed_blake3_verdict_payload(fixed_blake3_release_payload(), signer.keyid).decode("utf-8"),
        },
        "checkpoint.json": {
            "origin": LOG_NAME, "size": 8, "root_hex": root8.hex(),
            "signed": checkpoint.sign_checkpoint(LOG_NAME, 8, root8, LOG_NAME, sk),
        },
    }


def main() -> None:
    for name, data in build().items():
        (HERE / name).write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
        print("wrote", HERE / name)


if __name__ == "__main__":
    main()
