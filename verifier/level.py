"""Which verification level a release earned (assay/levels.py decides; this gathers the evidence).

Quantized or full precision is read from the tensor types the static step found in the file
itself; "reproduced" needs the reproduce step's bit-exact rebuild and a base that is a verified
release with a level of its own, read from the verdict this verifier signed for it.
"""
from __future__ import annotations

from assay import dsse, levels, statements
from assay.errors import AssayError
from assay.ggufparse import parse_gguf
from assay.names import parse_reference
from registry.blobstore import get_blob_store
from registry.models import Release, VerificationStep


def _tensor_types(release: Release, static: VerificationStep | None) -> list[str]:
    types = ((static.evidence or {}).get("summary") or {}).get("tensor_types") if static else None
    if isinstance(types, dict) and types:
        return list(types)
    try:  # the static step failed before summarising: read the header (bounded parse)
        return sorted({t.type_name for t in parse_gguf(get_blob_store().local_path(release.blob_id)).tensors})
    except (AssayError, OSError):
        return []


def signed_level(release: Release) -> levels.Level | None:
    """The level in the verdict signed for `release` (None if it has none)."""
    if not release.verdict_envelope:
        return None
    try:
        return statements.parse_verdict_statement(dsse.parse_envelope(release.verdict_envelope).payload).level
    except AssayError:
        return None


def verified_base(release: Release) -> Release | None:
    """The verified release the quant names as its base (name and digest both), newest version."""
    if not release.base_digest or not release.base_name:
        return None
    try:
        ns, model, tag = parse_reference(release.base_name)
    except AssayError:
        return None
    return (Release.objects.filter(model__namespace__name=ns, model__name=model, tag=tag, blob_id=release.base_digest,
                                   status=Release.VERIFIED).select_related("model__namespace").order_by("-version").first())


def release_level(release: Release, steps: dict[str, VerificationStep]) -> levels.Level:
    base = verified_base(release)
    base_level = signed_level(base) if base is not None else None
    link = levels.ChainLink(base.reference, base.version, release.base_digest, base_level.name) if base_level else None
    reproduce = steps.get("reproduce")
    level = levels.decide(
        full_precision=levels.is_full_precision(_tensor_types(release, steps.get("static"))),
        has_base=bool(release.base_digest),
        reproduced=reproduce is not None and reproduce.status == VerificationStep.PASSED,
        base=base_level, base_link=link,
    )
    if level.name == levels.UNREPRODUCED and reproduce is not None and reproduce.status == VerificationStep.SKIPPED and release.base_digest:
        return levels.Level(levels.UNREPRODUCED, (), reproduce.summary[:300])
    return level
