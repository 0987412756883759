"""The release bundle served to clients: everything `assay pull` needs to verify on its own.

The client never trusts `status`; it checks the envelopes, key and log proofs itself
(assay/client/bundle_verify.py is the one verifier of this format). Besides the release's own
envelopes, the bundle carries the publisher key's registration envelope (signed by the key)
and, when the key was revoked, its revocation envelope (signed by the log key), each as
logged and with an inclusion proof: the client decides which key signed the release and
whether it was revoked from these, not from `publisher_key`, which is informational.
"""
from __future__ import annotations

import json

from . import tlog, witnessing
from .models import PublisherKey, Release, VerificationStep, VerifierVerdict
from .publisher_keys import key_info
from .sealing import seal_for_bundle

BUNDLE_VERSION = 2


def logged_envelope(index: int | None) -> dict | None:
    """The envelope stored at log index `index` (None for None)."""
    if index is None:
        return None
    entry = tlog.entries(index, index + 1)
    return json.loads(bytes(entry[0].data)) if entry else None


def step_rows(release: Release) -> list[dict]:
    order = {n: i for i, n in enumerate(VerificationStep.NAMES)}
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


def _checkpoint_covering(min_size: int, current: int) -> tuple[int, str]:
    """(size, text): the newest witness-cosigned checkpoint that holds the first `min_size`
    entries (collected now if none does), else the registry's own checkpoint of the current size."""
    if witnessing.configured():
        row = witnessing.current_cosigned(min_size)
        if row is not None:
            return row.size, row.text
    return current, tlog.signed_checkpoint(current)


def release_bundle(release: Release, *, with_evidence: bool = False) -> dict:
    """The bundle; the verdict signs each check's evidence by digest, served apart at
    GET /api/v1/releases/<ref>/evidence (with_evidence puts it in the steps as well)."""
    # The key is read before the tree size: a revocation committed by then is inside the tree.
    key = PublisherKey.objects.select_related("user").get(pk=release.publisher_key_id)
    current = tlog.size()
    indices = {
        "release": release.release_log_index,
        "verdict": release.verdict_log_index,
        "provenance": release.provenance_log_index,
        "key_registration": key.registration_log_index,
        "key_revocation": key.revocation_log_index,
    }
    # Further verifiers' verdicts (second opinions; the first verifier's is verdict_envelope).
    others = list(VerifierVerdict.objects.filter(release=release, envelope__isnull=False, log_index__isnull=False)
                  .exclude(log_index=release.verdict_log_index).select_related("verifier").order_by("log_index"))
    needed = [i for i in indices.values() if i is not None] + [v.log_index for v in others]
    tree_size, checkpoint = _checkpoint_covering(max(needed, default=-1) + 1, current)
    present = {name: index for name, index in indices.items() if index is not None and index < tree_size}
    others = [v for v in others if v.log_index < tree_size]
    by_index = tlog.inclusion_proofs(sorted(set(present.values()) | {v.log_index for v in others}), tree_size)
    proofs = {name: {"index": index, "proof": [h.hex() for h in by_index[index]]} for name, index in present.items()}
    more_verdicts = [{"verifier": v.verifier.name, "envelope": v.envelope,
                      "log": {"index": v.log_index, "proof": [h.hex() for h in by_index[v.log_index]]},
                      **({"sealed": seal_for_bundle((v.seal_salts or {}).get("verdict", ""), v.log_index)}
                         if (v.seal_salts or {}).get("verdict") else {})} for v in others]
    salts = release.seal_salts or {}
    sealed = {name: seal_for_bundle(salts.get(name, ""), indices[name]) for name in ("release", "verdict", "provenance")
              if salts.get(name) and name in present}
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
        # A split GGUF: every part in order (the statement signs names and digests; sizes bound the downloads).
        "parts": [{"name": release.file_name, "digest": release.blob_id, "size": release.blob.size}, *others] if (others := release.split_parts()) else None,
        "download_url": f"/api/v1/blobs/{release.blob_id}",
        "quantization": release.quantization,
        "level": release.level_detail,
        "base": {"name": release.base_name, "digest": release.base_digest} if release.base_digest else None,
        "model_card": release.model_card,
        "release_envelope": release.envelope,
        "verdict_envelope": release.verdict_envelope,
        "verdicts": more_verdicts,
        "provenance_envelope": release.provenance_envelope,
        # The publisher's OpenSSF model_signing signature (same key as release_envelope), if any.
        "model_signing": release.model_signing,
        "key_registration_envelope": logged_envelope(indices["key_registration"]),
        "key_revocation_envelope": logged_envelope(indices["key_revocation"]) if "key_revocation" in proofs else None,
        "publisher_key": key_info(key),
        "steps": steps,
        "log": {"checkpoint": checkpoint, "tree_size": tree_size, "entries": proofs},
        # For a private namespace: the log holds sealed entries for these; salt and entry to check them.
        "sealed": sealed,
        # A private namespace's role events are blinded in the log: the key that reads them.
        **({"role_blinding": {"namespace": ns.name, "keys": ns.role_blinding_keys}} if (ns := release.model.namespace).role_blinding_keys else {}),
        "created": release.created.isoformat(),
    }
