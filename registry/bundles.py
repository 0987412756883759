"""The release bundle served to clients: everything `assay pull` needs to verify on its own.

The client never trusts `status`; it checks the envelopes, key and log proofs itself
(assay/bundle_verify.py is the one verifier of this format).
"""
from __future__ import annotations

from . import tlog
from .models import Release
from .publisher_keys import key_info

BUNDLE_VERSION = 1


def step_rows(release: Release) -> list[dict]:
    order = {n: i for i, n in enumerate(("static", "reproduce", "probes", "attest"))}
    return [
        {
            "name": s.name,
            "status": s.status,
            "summary": s.summary,
            "started": s.started.isoformat() if s.started else None,
            "finished": s.finished.isoformat() if s.finished else None,
            "evidence": s.evidence,
        }
        for s in sorted(release.steps.all(), key=lambda s: order.get(s.name, 99))
    ]


def release_bundle(release: Release, *, with_evidence: bool = True) -> dict:
    tree_size = tlog.size()
    indices = {
        "release": release.release_log_index,
        "verdict": release.verdict_log_index,
        "provenance": release.provenance_log_index,
        "key_registration": release.publisher_key.registration_log_index,
    }
    proofs = {
        name: {"index": index, "proof": [h.hex() for h in tlog.inclusion_proof(index, tree_size)]}
        for name, index in indices.items()
        if index is not None
    }
    steps = step_rows(release)
    if not with_evidence:
        for s in steps:
            s.pop("evidence")
    return {
        "bundle_version": BUNDLE_VERSION,
        "reference": release.reference,
        "version": release.version,
        "status": release.status,
        "status_reason": release.status_reason,
        "file": {"name": release.file_name, "digest": release.blob_id, "size": release.blob.size},
        "download_url": f"/api/v1/blobs/{release.blob_id}",
        "quantization": release.quantization,
        "base": {"name": release.base_name, "digest": release.base_digest} if release.base_digest else None,
        "model_card": release.model_card,
        "release_envelope": release.envelope,
        "verdict_envelope": release.verdict_envelope,
        "provenance_envelope": release.provenance_envelope,
        "publisher_key": key_info(release.publisher_key),
        "steps": steps,
        "log": {"checkpoint": tlog.signed_checkpoint(tree_size), "tree_size": tree_size, "entries": proofs},
        "created": release.created.isoformat(),
    }
