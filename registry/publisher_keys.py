"""Publisher keys: registration (with proof of possession) and revocation, each logged."""
from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from assay.core import dsse, keys, statements
from assay.core.errors import AssayError

from . import tlog
from .errors import RegistryError
from .models import PublisherKey
from .serverkeys import log_key


def register_key(user, envelope: dict, name: str = "") -> PublisherKey:
    """Register a key from a key-event envelope signed by that same key (proof of possession)."""
    try:
        event = statements.parse_key_event_envelope_unverified(envelope)
        public_key = keys.public_key_from_text(event.public_key)
        dsse.verify_envelope(envelope, {keys.key_id(public_key): public_key})
    except AssayError as exc:
        raise RegistryError(400, f"key registration refused: {exc}") from None
    if event.event != "register":
        raise RegistryError(400, f"key registration refused: event is {event.event!r}, expected 'register'")
    if event.owner != user.username:
        raise RegistryError(400, f"key registration refused: statement names owner {event.owner!r}, you are {user.username!r}")
    existing = PublisherKey.objects.filter(keyid=event.keyid).first()
    if existing is None:
        try:
            with transaction.atomic():
                key = PublisherKey.objects.create(keyid=event.keyid, public_key=event.public_key, user=user, name=name[:100])
                key.registration_log_index = tlog.append("key-register", envelope)
                key.save(update_fields=["registration_log_index"])
            return key
        except IntegrityError:
            # A concurrent registration of the same key won the race (and logged it): answer as
            # if this request had come second.
            existing = PublisherKey.objects.filter(keyid=event.keyid).first()
            if existing is None:
                raise
    if existing.user_id != user.id:
        raise RegistryError(409, f"key {event.keyid} is registered to another account")
    return existing


def revoke_key(user, keyid: str, reason: str = "") -> PublisherKey:
    """Revoke a key; the registry signs the revocation with its log key and logs it."""
    with transaction.atomic():
        key = PublisherKey.objects.select_for_update().filter(keyid=keyid, user=user).first()
        if key is None:
            raise RegistryError(404, f"key {keyid} is not registered to your account")
        if key.revoked:
            return key
        key.revoked_at = timezone.now()
        key.revoke_reason = reason[:300]
        payload = statements.build_key_event("revoke", keyid=key.keyid, public_key=key.public_key, owner=user.username, time=key.revoked_at, reason=key.revoke_reason)
        envelope = dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, log_key())
        key.revocation_log_index = tlog.append("key-revoke", envelope)
        key.save(update_fields=["revoked_at", "revoke_reason", "revocation_log_index"])
    return key


def key_info(key: PublisherKey) -> dict:
    return {
        "keyid": key.keyid,
        "public_key": key.public_key,
        "owner": key.user.username,
        "name": key.name,
        "created": key.created.isoformat(),
        "revoked": key.revoked,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
        "revoke_reason": key.revoke_reason,
        "registration_log_index": key.registration_log_index,
        "revocation_log_index": key.revocation_log_index,
    }
