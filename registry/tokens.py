"""Personal access tokens: created once, shown once, stored as a sha256 hash, scoped, expiring."""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from django.utils import timezone

from .models import ApiToken

TOKEN_PREFIX = "assay_"
DEFAULT_DAYS = 90
MAX_DAYS = 365  # as the web form allows


class TokenError(Exception):
    """Authentication failed; str() is the message for the client."""


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_expiry(expires_in_days=DEFAULT_DAYS, parent: ApiToken | None = None, *, given: bool = True) -> datetime:
    """When a new token expires: `expires_in_days` must be a whole number from 1 to MAX_DAYS, and
    a token made with another token (`parent`) may not outlive it. When the lifetime was not
    `given`, the default is cut to the parent's expiry instead of refused."""
    if isinstance(expires_in_days, bool) or not isinstance(expires_in_days, int) or not 1 <= expires_in_days <= MAX_DAYS:
        raise ValueError(f"expires_in_days must be a whole number of days from 1 to {MAX_DAYS}, not {expires_in_days!r}")
    expires_at = timezone.now() + timedelta(days=expires_in_days)
    if parent is not None and parent.expires_at is not None and expires_at > parent.expires_at:
        if given:
            raise ValueError(
                f"expires_in_days={expires_in_days} would outlive the token that creates it "
                f"(it expires on {parent.expires_at:%Y-%m-%d %H:%M} UTC); choose a shorter lifetime"
            )
        expires_at = parent.expires_at
    return expires_at


def create_token(user, name: str, scopes: list[str], namespaces: list[str] | None = None, expires_in_days: int = DEFAULT_DAYS,
                 parent: ApiToken | None = None, *, lifetime_given: bool = True) -> tuple[ApiToken, str]:
    bad = [s for s in scopes if s not in ApiToken.SCOPES]
    if bad or not scopes:
        raise ValueError(f"invalid token scopes {bad or scopes}: choose from {', '.join(ApiToken.SCOPES)}")
    expires_at = token_expiry(expires_in_days, parent, given=lifetime_given)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name[:100],
        prefix=secret[: len(TOKEN_PREFIX) + 6],
        token_hash=_hash(secret),
        scopes=sorted(set(scopes)),
        namespaces=sorted(set(namespaces or [])),
        expires_at=expires_at,
    )
    return token, secret


def authenticate_token(secret: str) -> ApiToken:
    token = ApiToken.objects.select_related("user").filter(token_hash=_hash(secret)).first()
    if token is None:
        raise TokenError("invalid API token")
    now = timezone.now()
    if token.revoked_at is not None:
        raise TokenError(f"API token {token.prefix}… was revoked")
    if token.expires_at is not None and token.expires_at <= now:
        raise TokenError(f"API token {token.prefix}… expired on {token.expires_at:%Y-%m-%d}")
    if not token.user.is_active:
        raise TokenError("the token's account is disabled")
    if token.last_used is None or (now - token.last_used).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used=now)
    return token


def revoke_token(user, token_id: int) -> bool:
    return ApiToken.objects.filter(user=user, pk=token_id, revoked_at__isnull=True).update(revoked_at=timezone.now()) == 1
