"""Personal access tokens: created once, shown once, stored as a sha256 hash, scoped, expiring."""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.utils import timezone

from .models import ApiToken

TOKEN_PREFIX = "assay_"


class TokenError(Exception):
    """Authentication failed; str() is the message for the client."""


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(user, name: str, scopes: list[str], namespaces: list[str] | None = None, expires_in_days: int | None = 90) -> tuple[ApiToken, str]:
    bad = [s for s in scopes if s not in ApiToken.SCOPES]
    if bad or not scopes:
        raise ValueError(f"invalid token scopes {bad or scopes}: choose from {', '.join(ApiToken.SCOPES)}")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name[:100],
        prefix=secret[: len(TOKEN_PREFIX) + 6],
        token_hash=_hash(secret),
        scopes=sorted(set(scopes)),
        namespaces=sorted(set(namespaces or [])),
        expires_at=(timezone.now() + timedelta(days=expires_in_days)) if expires_in_days else None,
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
