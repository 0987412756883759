"""Build release bundles (the registry's resolve answer) in memory, for client-side tests.

Mirrors registry/bundles.py with an in-memory log, so the client's verifier can be tested
against honest and tampered bundles without a server.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

from assay import checkpoint, dsse, keys, merkle, statements
from assay.canonical import canonical_json
from assay.digest import digest_bytes
from assay.trustpolicy import TrustPolicy

ORIGIN = "test.registry/log"


def _from_seed(seed: int):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


@dataclass
class World:
    publisher: object = field(default_factory=lambda: _from_seed(1))
    verifier: object = field(default_factory=lambda: _from_seed(2))
    log_key: object = field(default_factory=lambda: _from_seed(3))
    leaves: list = field(default_factory=list)

    def append(self, envelope: dict) -> int:
        self.leaves.append(canonical_json(envelope))
        return len(self.leaves) - 1

    def checkpoint(self, size: int | None = None, key=None) -> str:
        size = len(self.leaves) if size is None else size
        root = merkle.root_from_leaves(self.leaves[:size])
        return checkpoint.sign_checkpoint(ORIGIN, size, root, ORIGIN, key or self.log_key)

    def policy(self, directory: Path, **kw) -> TrustPolicy:
        vpk = self.verifier.public_key()
        return TrustPolicy.create(
            directory, registry_url="http://test.registry", verifier_keys={keys.key_id(vpk): keys.public_key_to_text(vpk)},
            log_vkey=checkpoint.verifier_key_string(ORIGIN, self.log_key.public_key()), **kw,
        )

    def consistency(self, old: int, new: int) -> list[bytes]:
        return merkle.reference_consistency_proof(old, self.leaves[:new])

    def release(self, data: bytes, *, reference="demo/m:q4", version=1, name="m.gguf", verdict_digest=None,
                passed=True, verifier=None, publisher=None, checks=None) -> dict:
        ns, rest = reference.split("/")
        model, tag = rest.split(":")
        digest = digest_bytes(data)
        publisher = publisher or self.publisher
        payload = statements.build_release_statement(
            subject_name=name, subject_digest=digest, namespace=ns, model=model, tag=tag, version=version,
            quantization="Q4_1", base=None, recipe=None, model_card_digest=None, created="2026-11-24T00:00:00Z",
        )
        release_env = dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, publisher)
        checks = checks or [{"name": n, "result": "passed", "summary": "ok", "evidence": {}} for n in ("static", "reproduce", "probes")]
        verdict_payload = statements.build_verdict_statement(
            subject_name=name, subject_digest=verdict_digest or digest, verifier_id="v", time_created="2026-11-24T00:00:01Z",
            resource_uri=f"assay:{reference}", policy_uri="urn:test", release_statement_digest=digest_bytes(payload),
            passed=passed, checks=checks,
        )
        verdict_env = dsse.sign_envelope(verdict_payload, statements.PAYLOAD_TYPE, verifier or self.verifier)
        ri, vi = self.append(release_env), self.append(verdict_env)
        size = len(self.leaves)
        pk = publisher.public_key()
        return {
            "bundle_version": 1, "reference": reference, "version": version, "status": "verified", "status_reason": "",
            "file": {"name": name, "digest": digest, "size": len(data)},
            "release_envelope": release_env, "verdict_envelope": verdict_env, "provenance_envelope": None,
            "publisher_key": {"keyid": keys.key_id(pk), "public_key": keys.public_key_to_text(pk), "revoked": False, "revoked_at": None, "revoke_reason": ""},
            "log": {"checkpoint": self.checkpoint(size), "tree_size": size, "entries": {
                "release": {"index": ri, "proof": [h.hex() for h in merkle.reference_inclusion_proof(ri, self.leaves[:size])]},
                "verdict": {"index": vi, "proof": [h.hex() for h in merkle.reference_inclusion_proof(vi, self.leaves[:size])]},
            }},
        }


def tampered(bundle: dict) -> dict:
    return copy.deepcopy(bundle)
