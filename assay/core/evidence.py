"""A verdict's evidence, fetched apart and checked against the digests the verdict signs.

Verdicts sign each check's evidence by digest (statements.evidence_digest); the registry stores
each evidence document once and serves it at GET /api/v1/releases/<ref>/evidence. Whoever wants
to read it (`assay inspect --full`) gets only documents whose digest the signed verdict names.
"""
from __future__ import annotations

from assay.core import statements
from assay.core.errors import VerificationError


def matching_evidence(verdict: statements.VerdictStatement, served: dict) -> dict[str, dict]:
    """{check name: evidence} for the verdict's checks, from the registry's answer; a document
    that does not hash to the digest the verdict signs is refused (VerificationError)."""
    documents = {}
    for verifier in served.get("verifiers") or []:
        if isinstance(verifier, dict) and verifier.get("keyid") == verdict.verifier_id:
            for check in verifier.get("checks") or []:
                if isinstance(check, dict) and isinstance(check.get("evidence"), dict):
                    documents[check.get("name")] = check["evidence"]
    out = {}
    for check in verdict.checks:
        if "evidence" in check:  # a verdict signed before evidence was served apart carries it inline
            out[check["name"]] = check["evidence"]
            continue
        document = documents.get(check["name"])
        if document is None:
            continue
        actual = statements.evidence_digest(document)
        if actual != check["evidenceDigest"]:
            raise VerificationError(f"the registry's evidence for the {check['name']} check hashes to {actual}, "
                                    f"but the signed verdict names {check['evidenceDigest']}")
        out[check["name"]] = document
    return out
