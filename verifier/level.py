"""Which verification level a release earned (assay/core/levels.py decides; this gathers the evidence).

Quantized or full precision is read from the tensor types the static step found in the file
itself; "reproduced" needs the reproduce step's bit-exact rebuild and a base that is a verified
release with a level of its own, read from the verdict signed for it by this verifier or by a
verifier its operator pinned (ASSAY_VERIFIER_PEERS; checked here: neither the registry's word nor a
key the registry lists raises a level).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from assay.core import dsse, keys, levels, statements
from assay.core.conversion import is_conversion
from assay.core.errors import AssayError
from assay.core.levelcheck import level_problem, static_tensor_types
from assay.core.ggufparse import parse_gguf

from .job import Job


def _tensor_types(candidate: Callable[[], Path], static: statements.StepResult | None) -> list[str]:
    types = static_tensor_types(static.evidence) if static else None
    if types:
        return list(types)
    try:  # the static step failed before summarising: read the header (bounded parse)
        return sorted({t.type_name for t in parse_gguf(candidate()).tensors})
    except (AssayError, OSError):
        return []


def base_level(job: Job, verifier_keys: dict) -> levels.Level | None:
    """The level in the verdict signed for the job's base, if a registered verifier signed it for
    exactly the base digest the quant names, over the base's own release statement, and the base's
    statement and checks support that level (assay/core/levelcheck.py): a quant copies its base's
    chain into its own, so a chain that names another release stops here."""
    if not job.base or not job.base.get("verdict_envelope"):
        return None
    try:
        verdict = statements.parse_verdict_statement(dsse.verify_envelope(job.base["verdict_envelope"], verifier_keys).payload)
        payload = dsse.parse_envelope(job.base.get("release_envelope")).payload
        stmt = statements.parse_release_statement(payload)
    except (AssayError, TypeError, AttributeError):
        return None
    if verdict.subject_digest != job.base_digest or not verdict.passed:
        return None
    if statements.statement_digest(payload) != verdict.release_statement_digest or stmt.subject_digest != job.base_digest:
        return None
    if level_problem(stmt, verdict) is not None:
        return None
    return verdict.level


PEERS_ENV = "ASSAY_VERIFIER_PEERS"


def pinned_peers() -> set[str]:
    """The key ids of the other verifiers whose verdicts on a base this verifier's operator
    accepts (ASSAY_VERIFIER_PEERS, comma-separated); none unless set."""
    return {k.strip() for k in os.environ.get(PEERS_ENV, "").split(",") if k.strip()}


def registered_keys(verifiers: list[dict], own) -> dict:
    """The keys whose verdict on a base this verifier reads the base's level from: its own (`own`,
    its private key), and each verifier its operator pinned (pinned_peers) that the registry still
    lists, under the key id of the listed key itself. The registry answers /api/v1/verifiers: a
    key it listed, or listed under another verifier's key id, would put a level of the registry's
    choosing into this verifier's signed chain."""
    own_public = own.public_key()
    out = {keys.key_id(own_public): own_public}
    pinned = pinned_peers()
    for v in verifiers:
        try:
            public = keys.public_key_from_text(v["public_key"])
        except (AssayError, KeyError, TypeError):
            continue
        keyid = keys.key_id(public)
        if keyid in pinned and v.get("keyid") == keyid:
            out[keyid] = public
    return out


def release_level(job: Job, candidate: Callable[[], Path], results: dict[str, statements.StepResult], verifier_keys: dict) -> levels.Level:
    base = base_level(job, verifier_keys)
    link = levels.ChainLink(job.base["reference"], int(job.base["version"]), job.base_digest, base.name) if base else None
    reproduce = results.get("reproduce")
    level = levels.decide(
        full_precision=levels.is_full_precision(_tensor_types(candidate, results.get("static"))),
        has_base=bool(job.base_digest),
        reproduced=reproduce is not None and reproduce.result == "passed",
        base=base, base_link=link,
        converted=not job.base_digest and is_conversion(job.recipe) and reproduce is not None and reproduce.result == "passed",
    )
    if level.name == levels.UNREPRODUCED and reproduce is not None and reproduce.result == "skipped" and job.base_digest:
        return levels.Level(levels.UNREPRODUCED, (), reproduce.summary[:300])
    return level
