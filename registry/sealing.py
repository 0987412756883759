"""What the public log shows of a private namespace: a commitment, not the statement.

A release, verdict or provenance of a private namespace is logged as a sealed entry (signed by
the log key; assay/core/statements.py SealedEntry) that holds only sha256(salt || envelope). Names,
file names, digests and the verifier's outputs stay out of the log. Readers of the release get
the envelope and the salt in its bundle, and check that they match the logged commitment
(assay/client/bundle_verify.py); the log's consistency and inclusion proofs work as for any entry.

Not sealed: key registrations and revocations (they name users, not namespaces). Namespace roles,
which clients replay to decide who may publish, are not sealed either but blinded: a private
namespace's role events name it and its members only by an HMAC under the namespace's key
(registry/roles.py), which readers get in the bundle.
"""
from __future__ import annotations

import json
import secrets

from assay.core import dsse, statements

from . import tlog
from .serverkeys import log_key


def log_statement(kind: str, envelope: dict, private: bool) -> tuple[int, str]:
    """Append `envelope` (kind release, verdict or provenance) to the log, sealed when it belongs
    to a private namespace. Returns (log index, salt); the salt is "" when not sealed."""
    if not private:
        return tlog.append(kind, envelope), ""
    salt = secrets.token_hex(32)
    payload = statements.build_sealed_entry(kind=kind, commitment=statements.seal_commitment(salt, envelope))
    return tlog.append("sealed", dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, log_key())), salt


def seal_for_bundle(salt: str, index: int | None) -> dict | None:
    """What a reader needs to check a sealed entry: the salt and the logged entry itself."""
    if not salt or index is None:
        return None
    entry = tlog.entries(index, index + 1)
    return {"salt": salt, "entry": json.loads(bytes(entry[0].data)) if entry else None}
