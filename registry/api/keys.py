"""Publisher key endpoints and the registry's own public keys (trust information)."""
from __future__ import annotations

from django.http import JsonResponse

from assay.core import checkpoint, keys

from ..models import ApiToken, PublisherKey
from ..permissions import token_allows, token_is_account_wide
from ..publisher_keys import key_info, register_key, revoke_key
from ..serverkeys import log_key, log_key_name
from ..verifiers import active_verifiers
from .common import ApiError, api, json_body


def _require(request, action: str) -> None:
    """Publisher keys belong to the account and sign in every namespace it publishes in: managing
    them needs the scope and a token that is not limited to some namespaces."""
    if not token_allows(request.token, action, None):
        raise ApiError(403, f"this token lacks the '{action}' scope")
    if not token_is_account_wide(request.token):
        raise ApiError(403, f"this token is limited to namespaces {', '.join(request.token.namespaces)}; publisher keys "
                            "belong to the whole account: register or revoke them with a token that is not limited to namespaces")


@api(("GET", "POST"), login_required=True)
def key_list(request):
    if request.method == "GET":
        return JsonResponse({"keys": [key_info(k) for k in PublisherKey.objects.filter(user=request.user).order_by("created")]})
    _require(request, ApiToken.PUBLISH)
    body = json_body(request)
    if not isinstance(body.get("envelope"), dict):
        raise ApiError(400, "field 'envelope' (a key registration statement signed by the key) is required")
    key = register_key(request.user, body["envelope"], str(body.get("name", "")))
    return JsonResponse(key_info(key), status=201)


@api(("GET",))
def key_detail(request, keyid: str):
    key = PublisherKey.objects.select_related("user").filter(keyid=keyid).first()
    if key is None:
        raise ApiError(404, f"key {keyid} not found")
    return JsonResponse(key_info(key))


@api(("POST",), login_required=True)
def key_revoke(request, keyid: str):
    _require(request, ApiToken.PUBLISH)
    body = json_body(request)
    key = revoke_key(request.user, keyid, str(body.get("reason", "")))
    return JsonResponse(key_info(key))


def trust_info() -> dict:
    lpk = log_key().public_key()
    return {
        # The registered verifiers' keys (registry/verifiers.py); the registry itself holds none.
        "verifier_keys": [{"keyid": v.keyid, "public_key": v.public_key, "name": v.name} for v in active_verifiers()],
        "log": {
            "origin": log_key_name(),
            "keyid": keys.key_id(lpk),
            "public_key": keys.public_key_to_text(lpk),
            "vkey": checkpoint.verifier_key_string(log_key_name(), lpk),
        },
    }


@api(("GET",))
def trust(request):
    return JsonResponse(trust_info())
