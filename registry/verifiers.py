"""Registered verifiers: each a separate service with its own key, registered with proof of
possession and logged, revoked by the registry (logged too), authenticated by a token of its own.

The registry never holds a verifier's private key: it checks every step result, verdict and
provenance a verifier posts against the key that verifier registered (registry/verification.py).
"""
from __future__ import annotations

import hashlib
import secrets

from django.db import IntegrityError, transaction
from django.utils import timezone

from assay.core import dsse, keys, statements
from assay.core.errors import AssayError
from assay.core.names import NAME_RE

from . import tlog
from .errors import RegistryError
from .models import Verifier
from .serverkeys import log_key

TOKEN_PREFIX = "assay_verifier_"
MAX_CAPABILITIES_BYTES = 16 * 1024


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def register_verifier(envelope: dict, *, name: str, by_user=None) -> tuple[Verifier, str]:
    """Register a verifier from a verifier-key event signed by its own key; logs the event and
    returns the verifier and its token (shown once). A name or key already registered: 409."""
    if not isinstance(name, str) or not NAME_RE.match(name) or len(name) > 64:
        raise RegistryError(400, f"verifier name {str(name)[:80]!r} is invalid: use letters, digits, '-', '_' or '.' (at most 64)")
    try:
        parsed = dsse.parse_envelope(envelope)
        event = statements.parse_verifier_event(parsed.payload)
        dsse.verify_envelope(envelope, {event.keyid: keys.public_key_from_text(event.public_key)})
    except AssayError as exc:
        raise RegistryError(400, f"verifier registration refused: {exc}") from None
    if event.event != "register":
        raise RegistryError(400, f"verifier registration refused: event is {event.event!r}, expected 'register'")
    if event.verifier != name:
        raise RegistryError(400, f"verifier registration refused: the signed event names verifier {event.verifier!r}, not {name!r}")
    if Verifier.objects.filter(name=name).exists():
        raise RegistryError(409, f"a verifier named {name!r} is already registered")
    if Verifier.objects.filter(keyid=event.keyid).exists():
        raise RegistryError(409, f"key {event.keyid} is already registered for another verifier")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    try:
        with transaction.atomic():
            verifier = Verifier.objects.create(name=name, keyid=event.keyid, public_key=event.public_key,
                                               token_hash=_hash(token), registered_by=by_user)
            verifier.registration_log_index = tlog.append("verifier-register", envelope)
            verifier.save(update_fields=["registration_log_index"])
    except IntegrityError:
        raise RegistryError(409, f"verifier {name!r} or key {event.keyid} was registered at the same moment") from None
    return verifier, token


def revoke_verifier(name: str, reason: str = "") -> Verifier:
    """Revoke a verifier: its key signs nothing more here, its token stops working; logged. Its
    verdicts stop vouching (clients learn the revocation from the log and count none of them), so
    each release whose status its verdict decided goes back to the queue, in the same transaction,
    to be verified afresh by an active verifier (verification.reverify_after_revocation), and each
    verified release it gave a second opinion on, or was asked about, gets another verifier asked."""
    from .verification import release_requests_of, reverify_after_revocation

    with transaction.atomic():
        verifier = Verifier.objects.select_for_update().filter(name=name).first()
        if verifier is None:
            raise RegistryError(404, f"no verifier named {name!r}")
        if verifier.revoked:
            return verifier
        verifier.revoked_at, verifier.revoke_reason = timezone.now(), str(reason)[:300]
        payload = statements.build_verifier_event("revoke", keyid=verifier.keyid, public_key=verifier.public_key,
                                                  verifier=verifier.name, time=verifier.revoked_at, reason=verifier.revoke_reason)
        verifier.revocation_log_index = tlog.append("verifier-revoke", dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, log_key()))
        verifier.save(update_fields=["revoked_at", "revoke_reason", "revocation_log_index"])
        # Each release its verdict decided (or whose job it held) is verified again by another.
        reverify_after_revocation(verifier)
    release_requests_of(verifier)  # its verdicts no longer vouch, its requests are released: others are asked
    return verifier


def authenticate_verifier(secret: str) -> Verifier | None:
    """The active verifier a token belongs to; None if the token is not a verifier token.
    RegistryError 401 for a verifier token that is unknown or revoked."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    verifier = Verifier.objects.filter(token_hash=_hash(secret)).first()
    if verifier is None:
        raise RegistryError(401, "unknown verifier token")
    if verifier.revoked:
        raise RegistryError(401, f"verifier {verifier.name!r} was revoked: {verifier.revoke_reason or 'no reason given'}")
    return verifier


def record_capabilities(verifier: Verifier, capabilities: object) -> None:
    """What the verifier can run (it reports this with each job it takes), kept for the web UI
    and for routing."""
    if not isinstance(capabilities, dict):
        raise RegistryError(400, "capabilities must be a JSON object")
    if len(str(capabilities)) > MAX_CAPABILITIES_BYTES:
        raise RegistryError(400, f"capabilities are larger than {MAX_CAPABILITIES_BYTES} bytes")
    verifier.capabilities, verifier.last_seen = capabilities, timezone.now()
    Verifier.objects.filter(pk=verifier.pk).update(capabilities=capabilities, last_seen=verifier.last_seen)


def active_verifiers():
    return Verifier.objects.filter(revoked_at__isnull=True).order_by("name")


def verifier_info(verifier: Verifier) -> dict:
    return {
        "name": verifier.name,
        "keyid": verifier.keyid,
        "public_key": verifier.public_key,
        "created": verifier.created.isoformat(),
        "last_seen": verifier.last_seen.isoformat() if verifier.last_seen else None,
        "revoked": verifier.revoked,
        "revoked_at": verifier.revoked_at.isoformat() if verifier.revoked_at else None,
        "revoke_reason": verifier.revoke_reason,
        "registration_log_index": verifier.registration_log_index,
        "revocation_log_index": verifier.revocation_log_index,
        "capabilities": verifier.capabilities,
    }
