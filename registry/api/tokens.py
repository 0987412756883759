"""Personal access token endpoints (token creation needs an admin-scoped token or a session)."""
from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse

from assay.core.errors import AssayError
from assay.core.names import validate_name

from ..models import ApiToken
from ..permissions import token_allows, token_is_account_wide
from ..ratelimits import limited
from ..tokens import DEFAULT_DAYS, create_token, revoke_token
from .common import ApiError, api, json_body


def token_info(t: ApiToken) -> dict:
    return {
        "id": t.pk, "name": t.name, "prefix": t.prefix, "scopes": t.scopes, "namespaces": t.namespaces,
        "created": t.created.isoformat(), "expires_at": t.expires_at.isoformat() if t.expires_at else None,
        "revoked": t.revoked_at is not None, "last_used": t.last_used.isoformat() if t.last_used else None,
    }


def _manageable(request):
    """The tokens the caller may list and revoke: all of the account's with a session or an
    account-wide admin token; with an admin token limited to namespaces, only the tokens limited
    to some of those namespaces (never an account-wide one, nor one reaching further)."""
    if not token_allows(request.token, ApiToken.ADMIN, None):
        raise ApiError(403, "managing tokens needs a token with the 'admin' scope")
    tokens = request.user.api_tokens.order_by("created")
    if token_is_account_wide(request.token):
        return list(tokens)
    limit = set(request.token.namespaces)
    return [t for t in tokens if t.namespaces and set(t.namespaces) <= limit]


def _namespaces(value) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
        raise ApiError(400, f"'namespaces' must be a list of namespace names, not {type(value).__name__} {str(value)[:60]!r}")
    for name in value:
        try:
            validate_name(name, "namespace")
        except AssayError as exc:
            raise ApiError(400, str(exc)) from None
    return list(dict.fromkeys(value))


@api(("GET", "POST"), login_required=True)
def token_list(request):
    manageable = _manageable(request)
    if request.method == "GET":
        return JsonResponse({"tokens": [token_info(t) for t in manageable]})
    if limited(request, "tokens-user", "user", "ASSAY_RATE_TOKENS"):
        raise ApiError(429, f"too many new tokens for this account: at most {settings.ASSAY_RATE_TOKENS}; try again later")
    body = json_body(request)
    try:
        namespaces = _namespaces(body.get("namespaces", []))
        limit = request.token.namespaces if request.token is not None else []
        if limit and (not namespaces or not set(namespaces) <= set(limit)):
            # A token limited to some namespaces must not mint one that reaches further.
            raise ApiError(403, f"this token is limited to namespaces {', '.join(limit)}; the new token must be limited to some of them")
        token, secret = create_token(
            request.user, str(body.get("name", "cli")), list(body.get("scopes", ["read"])),
            namespaces, body.get("expires_in_days", DEFAULT_DAYS), request.token,
            lifetime_given="expires_in_days" in body,
        )
    except (ValueError, TypeError) as exc:
        raise ApiError(400, str(exc)) from None
    return JsonResponse({**token_info(token), "token": secret}, status=201)


@api(("DELETE",), login_required=True)
def token_detail(request, token_id: int):
    if token_id not in {t.pk for t in _manageable(request)} or not revoke_token(request.user, token_id):
        raise ApiError(404, f"token {token_id} not found")
    return JsonResponse({"revoked": token_id})


@api(("GET",), login_required=True)
def whoami(request):
    token = request.token
    return JsonResponse({"username": request.user.username, "token": token_info(token) if token else None})
