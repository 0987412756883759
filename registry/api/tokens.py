"""Personal access token endpoints (token creation needs an admin-scoped token or a session)."""
from __future__ import annotations

from django.http import JsonResponse

from ..models import ApiToken
from ..permissions import token_allows
from ..tokens import DEFAULT_DAYS, create_token, revoke_token
from .common import ApiError, api, json_body


def token_info(t: ApiToken) -> dict:
    return {
        "id": t.pk, "name": t.name, "prefix": t.prefix, "scopes": t.scopes, "namespaces": t.namespaces,
        "created": t.created.isoformat(), "expires_at": t.expires_at.isoformat() if t.expires_at else None,
        "revoked": t.revoked_at is not None, "last_used": t.last_used.isoformat() if t.last_used else None,
    }


@api(("GET", "POST"), login_required=True)
def token_list(request):
    if not token_allows(request.token, ApiToken.ADMIN, None):
        raise ApiError(403, "managing tokens needs a token with the 'admin' scope")
    if request.method == "GET":
        return JsonResponse({"tokens": [token_info(t) for t in request.user.api_tokens.order_by("created")]})
    body = json_body(request)
    try:
        namespaces = list(body.get("namespaces", []))
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
    if not token_allows(request.token, ApiToken.ADMIN, None):
        raise ApiError(403, "managing tokens needs a token with the 'admin' scope")
    if not revoke_token(request.user, token_id):
        raise ApiError(404, f"token {token_id} not found")
    return JsonResponse({"revoked": token_id})


@api(("GET",), login_required=True)
def whoami(request):
    token = request.token
    return JsonResponse({"username": request.user.username, "token": token_info(token) if token else None})
