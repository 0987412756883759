"""Build release bundles (the registry's resolve answer) in memory, for client-side tests.

Mirrors registry/bundles.py with an in-memory log (key registrations and revocations included),
so the client's verifier can be tested against honest and tampered bundles without a server.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import base64

from assay.core import checkpoint, dsse, keyindex, keys, levels, merkle, statements
from assay.core.canonical import canonical_json
from assay.core.digest import digest_bytes
from assay.client.logaudit import entry_kind
from assay.client.trustpolicy import TrustPolicy

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
    envelopes: dict = field(default_factory=dict)  # log index -> envelope
    registered: dict = field(default_factory=dict)  # key id -> log index of its registration
    revoked: dict = field(default_factory=dict)  # key id -> (log index, reason)
    roles: dict = field(default_factory=dict)  # (namespace, member) -> role, as last logged
    hidden: set = field(default_factory=set)
    owners: dict = field(default_factory=dict)  # key id -> the account its registration names  # log indices the "registry" leaves out of its key-event index

    def append(self, envelope: dict) -> int:
        self.leaves.append(canonical_json(envelope))
        self.envelopes[len(self.leaves) - 1] = envelope
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

    consistency_proof = consistency  # the LogSource interface (assay/client/catchup.py)

    def key_events(self, start: int, end: int) -> dict:
        """What GET /api/v1/log/key-events answers (minus any index in self.hidden)."""
        listed = [i for i in range(start, end) if i not in self.hidden and self.kind(i) in keyindex.KINDS]
        root = merkle.root_from_leaves(self.leaves[:end])
        return {"index": keyindex.sign(ORIGIN, start, end, root, listed, self.log_key),
                "entries": [{"index": i, "data": base64.b64encode(self.leaves[i]).decode(), "proof": self.proof(i, end)["proof"]}
                            for i in listed]}

    def kind(self, index: int) -> str | None:
        try:
            return entry_kind(self.envelopes[index])
        except Exception:  # filler entries of the tests are no envelopes
            return None

    def role(self, namespace: str, member: str, role: str) -> int:
        """Log `member`'s role in `namespace` (signed by the log key, as registry/roles.py does)."""
        payload = statements.build_role_event(namespace=namespace, member=member, role=role, time="2026-11-23T00:00:00Z")
        self.roles[(namespace, member)] = role
        return self.append(dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, self.log_key))

    def revoke_verifier(self, key, name: str = "cpu-1", reason: str = "key leaked") -> int:
        """Log the registry's revocation of a verifier key (signed by the log key, as
        registry/verifiers.revoke_verifier does)."""
        pk = key.public_key()
        payload = statements.build_verifier_event("revoke", keyid=keys.key_id(pk), public_key=keys.public_key_to_text(pk),
                                                  verifier=name, time="2026-11-23T00:00:00Z", reason=reason)
        return self.append(dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, self.log_key))

    def with_further_verdict(self, bundle: dict, key, name: str = "second") -> dict:
        """Log a further verifier's PASSED verdict (signed by `key`) on the bundle's release, and
        serve the bundle again at the new log size with it in `verdicts` (a second opinion)."""
        release_payload = dsse.parse_envelope(bundle["release_envelope"]).payload
        first = statements.parse_verdict_statement(dsse.parse_envelope(bundle["verdict_envelope"]).payload)
        payload = statements.build_verdict_statement(
            subject_name=bundle["file"]["name"], subject_digest=bundle["file"]["digest"], verifier_id=keys.key_id(key.public_key()),
            time_created="2026-11-24T00:00:02Z", resource_uri=f"assay:{bundle['reference']}", policy_uri="urn:test",
            release_statement_digest=digest_bytes(release_payload), passed=True,
            checks=[{"name": n, "result": "passed", "summary": "ok", "evidence": {}} for n in ("static", "reproduce", "probes")],
            level=first.level_or_unreproduced)
        index = self.append(dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, key))
        out = copy.deepcopy(bundle)
        size = len(self.leaves)
        out["log"] = {"checkpoint": self.checkpoint(size), "tree_size": size,
                      "entries": {n: self.proof(e["index"]) for n, e in bundle["log"]["entries"].items()}}
        out["verdicts"] = [{**v, "log": self.proof(v["log"]["index"])} for v in bundle.get("verdicts", [])]
        out["verdicts"].append({"verifier": name, "envelope": self.envelopes[index], "log": self.proof(index)})
        return out

    def proof(self, index: int, size: int | None = None) -> dict:
        size = len(self.leaves) if size is None else size
        return {"index": index, "proof": [h.hex() for h in merkle.reference_inclusion_proof(index, self.leaves[:size])]}

    def key_event(self, event: str, key, *, owner: str = "demo", reason: str | None = None, signer=None) -> dict:
        """A key-register (signed by the key) or key-revoke (signed by the log key) envelope."""
        pk = key.public_key()
        payload = statements.build_key_event(event, keyid=keys.key_id(pk), public_key=keys.public_key_to_text(pk), owner=owner,
                                             time="2026-11-23T00:00:00Z", reason=reason)
        return dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, signer or (key if event == "register" else self.log_key))

    def register(self, key, owner: str = "demo") -> int:
        keyid = keys.key_id(key.public_key())
        if keyid not in self.registered:
            self.registered[keyid] = self.append(self.key_event("register", key, owner=owner))
            self.owners[keyid] = owner
        if (owner, owner) not in self.roles:  # the account's own namespace, as create_user logs it
            self.role(owner, owner, "owner")
        return self.registered[keyid]

    def revoke(self, key, reason: str = "laptop stolen", owner: str = "demo") -> int:
        index = self.append(self.key_event("revoke", key, owner=owner, reason=reason))
        self.revoked[keys.key_id(key.public_key())] = (index, reason)
        return index

    def release(self, data: bytes, *, reference="demo/m:q4", version=1, name="m.gguf", verdict_digest=None,
                passed=True, verifier=None, publisher=None, checks=None, hide_revocation=False,
                base: dict | None = None, provenance: dict | None = None, level: "levels.Level | None | str" = "auto",
                owner: str = "demo", conversion: dict | None = None, blake3: str | None = None,
                verdict_blake3: str | None = "declared") -> dict:
        """The registry's bundle for a new release (the publisher key is registered first if needed).

        base: {"name", "digest"} makes it a quant (recipe ftype Q4_1); provenance: keyword
        overrides for the verifier's reproduction provenance of it (subject_digest, base_digest,
        ftype, signer), or {"omit": True} for none. conversion: a conversion recipe (no base): the
        release of a converted file, with the verifier's conversion provenance (overrides: build_type,
        deps). blake3: the `blake3:` digest the statement declares for the file; verdict_blake3:
        the one the verdict repeats ("declared": the statement's, as a verifier that checked it)."""
        ns, rest = reference.split("/")
        model, tag = rest.split(":")
        digest = digest_bytes(data)
        publisher = publisher or self.publisher
        self.register(publisher, owner=owner)
        recipe = {"tool": "llama.cpp", "llama_cpp_python_version": "0.3.36", "ggml_build": "test", "ftype": "Q4_1",
                  "imatrix": None, "options": {}} if base else conversion
        payload = statements.build_release_statement(
            subject_name=name, subject_digest=digest, namespace=ns, model=model, tag=tag, version=version,
            quantization="Q4_1", base=base, recipe=recipe, model_card_digest=None, created="2026-11-24T00:00:00Z",
            blake3={digest: blake3} if blake3 else None,
        )
        release_env = dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, publisher)
        checks = checks or [{"name": n, "result": "passed", "summary": "ok", "evidence": {}} for n in ("static", "reproduce", "probes")]
        verdict_payload = statements.build_verdict_statement(
            subject_name=name, subject_digest=verdict_digest or digest, verifier_id="v", time_created="2026-11-24T00:00:01Z",
            resource_uri=f"assay:{reference}", policy_uri="urn:test", release_statement_digest=digest_bytes(payload),
            passed=passed, checks=checks, level=levels.Level(levels.CONVERTED) if conversion and level == "auto" else self._level(level, base),
            subject_blake3=blake3 if verdict_blake3 == "declared" else verdict_blake3,
        )
        verdict_env = dsse.sign_envelope(verdict_payload, statements.PAYLOAD_TYPE, verifier or self.verifier)
        ri, vi = self.append(release_env), self.append(verdict_env)
        pi = None
        if base and not (provenance or {}).get("omit"):
            p = provenance or {}
            prov_payload = statements.build_provenance_statement(
                subject_name=name, subject_digest=p.get("subject_digest", digest), builder_id="v",
                recipe={**recipe, "ftype": p.get("ftype", recipe["ftype"])},
                resolved_dependencies=[{"uri": "assay:blob", "digest": {"sha256": p.get("base_digest", base["digest"]).split(":")[1]}}],
            )
            pi = self.append(dsse.sign_envelope(prov_payload, statements.PAYLOAD_TYPE, p.get("signer") or verifier or self.verifier))
        elif conversion and not (provenance or {}).get("omit"):
            p = provenance or {}
            deps = p.get("deps") or [{"uri": "assay:blob", "name": f["name"], "digest": {"sha256": f["digest"].split(":")[1]}}
                                     for f in conversion["options"]["files"]]
            prov_payload = statements.build_provenance_statement(
                subject_name=name, subject_digest=p.get("subject_digest", digest), builder_id="v", recipe=conversion,
                resolved_dependencies=deps, build_type=p.get("build_type", statements.CONVERT_BUILD_TYPE))
            pi = self.append(dsse.sign_envelope(prov_payload, statements.PAYLOAD_TYPE, p.get("signer") or verifier or self.verifier))
        return self.bundle(ri, vi, publisher, reference=reference, version=version, name=name, data=data,
                           hide_revocation=hide_revocation, provenance_index=pi)

    @staticmethod
    def _level(level, base: dict | None):
        """"auto": what an honest verifier signs for a release of this shape (reproduced from an
        original base, or an original); None: a verdict without a level."""
        if level != "auto":
            return level
        if base:
            return levels.Level(levels.REPRODUCED, (levels.ChainLink(base["name"], 1, base["digest"], levels.ORIGINAL),))
        return levels.Level(levels.ORIGINAL)

    def bundle(self, ri: int, vi: int, publisher, *, reference: str, version: int, name: str, data: bytes,
               hide_revocation: bool = False, provenance_index: int | None = None) -> dict:
        """What registry/bundles.py serves for the release logged at `ri` (verdict at `vi`)."""
        size = len(self.leaves)
        pk = publisher.public_key()
        keyid = keys.key_id(pk)
        gi = self.registered[keyid]
        revocation = None if hide_revocation else self.revoked.get(keyid)
        entries = {"release": self.proof(ri), "verdict": self.proof(vi), "key_registration": self.proof(gi)}
        if revocation:
            entries["key_revocation"] = self.proof(revocation[0])
        if provenance_index is not None:
            entries["provenance"] = self.proof(provenance_index)
        return {
            "bundle_version": 2, "reference": reference, "version": version, "status": "verified", "status_reason": "",
            "file": {"name": name, "digest": digest_bytes(data), "size": len(data)},
            "release_envelope": self.envelopes[ri], "verdict_envelope": self.envelopes[vi],
            "provenance_envelope": self.envelopes[provenance_index] if provenance_index is not None else None,
            "key_registration_envelope": self.envelopes[gi],
            "key_revocation_envelope": self.envelopes[revocation[0]] if revocation else None,
            "publisher_key": {
                "keyid": keyid, "public_key": keys.public_key_to_text(pk), "owner": self.owners.get(keyid, "demo"),
                "revoked": bool(revocation), "revoked_at": "2026-11-23T00:00:00Z" if revocation else None,
                "revoke_reason": revocation[1] if revocation else "",
                "registration_log_index": gi, "revocation_log_index": revocation[0] if revocation else None,
            },
            "log": {"checkpoint": self.checkpoint(size), "tree_size": size, "entries": entries},
        }


def tampered(bundle: dict) -> dict:
    return copy.deepcopy(bundle)
