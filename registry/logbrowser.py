"""The web log browser: pages of entries and one entry with its inclusion proof.

Everything shown is what the anonymous log API serves (GET /api/v1/log/entries, .../proof/inclusion,
.../checkpoint): a private namespace's release, verdict and provenance are sealed entries there,
so the browser shows their commitment and kind only. The proof is served with the signed
checkpoint it leads to; the page's script recomputes the root in the browser
(registry/static/registry/logproof.js) and `assay log verify --start N --end N+1` checks the same
against the pinned log key."""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from assay.core import merkle, statements

from . import tlog

PAGE = 50


@dataclass(frozen=True)
class EntrySummary:
    index: int
    kind: str
    created: str
    what: str  # the statement's predicate and subjects, in a line
    signers: tuple[str, ...]


def _statement(data: bytes) -> tuple[dict, dict | None]:
    """(envelope, statement) of a logged entry; the statement is None if the payload is not JSON."""
    envelope = json.loads(data)
    try:
        statement = json.loads(base64.b64decode(envelope.get("payload", ""), validate=True))
    except (binascii.Error, ValueError, TypeError):
        statement = None
    return envelope, statement if isinstance(statement, dict) else None


def describe(data: bytes) -> tuple[str, tuple[str, ...]]:
    """A one-line description of a logged envelope, and the key ids that signed it."""
    try:
        envelope, statement = _statement(data)
    except ValueError:
        return "not a JSON envelope", ()
    signers = tuple(str(s.get("keyid", ""))[:71] for s in envelope.get("signatures") or [] if isinstance(s, dict))
    if statement is None:
        return f"payload of type {str(envelope.get('payloadType'))[:80]}", signers
    predicate = statement.get("predicate") if isinstance(statement.get("predicate"), dict) else {}
    subjects = [s.get("name") for s in statement.get("subject") or [] if isinstance(s, dict)]
    predicate_type = str(statement.get("predicateType"))[:80]
    if predicate_type.endswith("sealed-entry:v1"):
        return f"sealed {predicate.get('kind')} of a private namespace, commitment {str(predicate.get('commitment'))[:23]}…", signers
    if predicate_type.endswith("namespace-role:v1") and statements.is_blinded(predicate.get("namespace")):
        return f"role {str(predicate.get('role'))[:16]} in a private namespace (blinded names)", signers
    named = ", ".join(str(s)[:100] for s in subjects[:3]) + (f" and {len(subjects) - 3} more" if len(subjects) > 3 else "")
    where = "/".join(str(predicate[k]) for k in ("namespace", "model") if k in predicate)
    if where and "tag" in predicate:
        where += f":{predicate['tag']}"
    return f"{predicate_type}: {where + ' ' if where else ''}{named}", signers


def page(before: int | None) -> dict:
    """The newest entries below `before` (all when None), newest first, with links to older ones."""
    size = tlog.size()
    end = size if before is None else max(0, min(before, size))
    start = max(0, end - PAGE)
    rows = []
    for e in reversed(tlog.entries(start, end)):
        what, signers = describe(bytes(e.data))
        rows.append(EntrySummary(e.index, e.kind, e.created.isoformat(timespec="seconds"), what, signers))
    return {"size": size, "rows": rows, "older": start if start > 0 else None, "newer": min(end + PAGE, size) if end < size else None}


def entry(index: int) -> dict | None:
    """One entry with its leaf hash and its inclusion proof in the current signed checkpoint."""
    size = tlog.size()
    if not 0 <= index < size:
        return None
    e = tlog.entries(index, index + 1)[0]
    data = bytes(e.data)
    what, signers = describe(data)
    try:
        envelope, statement = _statement(data)
    except ValueError:
        envelope, statement = None, None
    proof = tlog.inclusion_proof(index, size)
    leaf = merkle.leaf_hash(data)
    root = tlog.root(size)
    return {
        "index": index, "kind": e.kind, "created": e.created.isoformat(timespec="seconds"), "what": what, "signers": signers,
        "envelope": json.dumps(envelope, indent=2) if envelope is not None else data.decode("utf-8", "replace"),
        "statement": json.dumps(statement, indent=2, ensure_ascii=False) if statement is not None else None,
        "leaf_hash": leaf.hex(), "tree_size": size, "proof": [h.hex() for h in proof],
        "root": root.hex(), "checkpoint": tlog.signed_checkpoint(size),
        "proof_ok": merkle.root_from_inclusion_proof(leaf, index, size, proof) == root,
    }
