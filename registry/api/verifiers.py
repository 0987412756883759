"""Verifier endpoints: registration and revocation (registry staff), the public list, and the
job API a registered verifier uses (its own token): claim, steps, errors, verdict. Thin: the
rules are in registry/verifiers.py and registry/verification.py."""
from __future__ import annotations

from django.http import JsonResponse

from .. import verification
from ..models import ApiToken
from ..permissions import token_allows, token_is_account_wide
from ..verifiers import active_verifiers, record_capabilities, register_verifier, revoke_verifier, verifier_info
from .common import ApiError, api, json_body

MAX_RESULT_BYTES = 64 * 1024 * 1024  # a step result carries the step's evidence (probe outputs)


def _require_staff(request) -> None:
    if not request.user.is_authenticated or not request.user.is_staff:
        raise ApiError(403, "only the registry's staff may register or revoke verifiers")
    if request.token is not None and not (token_allows(request.token, ApiToken.ADMIN, None) and token_is_account_wide(request.token)):
        raise ApiError(403, "registering or revoking a verifier needs an account-wide token with the 'admin' scope")


def _verifier(request):
    verifier = getattr(request, "verifier", None)
    if verifier is None:
        raise ApiError(401, "this endpoint is for registered verifiers: pass 'Authorization: Bearer <verifier token>'")
    return verifier


@api(("GET", "POST"))
def verifier_list(request):
    if request.method == "GET":
        show_revoked = request.GET.get("revoked") == "1"
        from ..models import Verifier

        rows = Verifier.objects.order_by("name") if show_revoked else active_verifiers()
        return JsonResponse({"verifiers": [verifier_info(v) for v in rows]})
    _require_staff(request)
    body = json_body(request)
    if not isinstance(body.get("envelope"), dict):
        raise ApiError(400, "field 'envelope' (a verifier-key registration signed by the verifier's key) is required")
    verifier, token = register_verifier(body["envelope"], name=body.get("name"), by_user=request.user)
    return JsonResponse({**verifier_info(verifier), "token": token}, status=201)


@api(("POST",), login_required=True)
def verifier_revoke(request, name: str):
    _require_staff(request)
    body = json_body(request)
    return JsonResponse(verifier_info(revoke_verifier(name, str(body.get("reason", "")))))


@api(("GET", "POST"))
def verifier_me(request):
    """Who this verifier token belongs to (a verifier checks its registration with it); POST
    {"capabilities": {...}} advertises what it can run (as it starts)."""
    verifier = _verifier(request)
    if request.method == "POST":
        record_capabilities(verifier, json_body(request).get("capabilities"))
        verifier.refresh_from_db()
    return JsonResponse(verifier_info(verifier))


@api(("POST",))
def job_claim(request, release_id: int):
    verifier = _verifier(request)
    body = json_body(request)
    if "capabilities" in body:
        record_capabilities(verifier, body["capabilities"])
    return JsonResponse(verification.claim(verifier, release_id))


@api(("GET",))
def job_detail(request, release_id: int):
    return JsonResponse(verification.job_info(_verifier(request), release_id))


@api(("POST",))
def step_begin(request, release_id: int, name: str):
    return JsonResponse(verification.begin_step(_verifier(request), release_id, name))


@api(("POST",))
def step_finish(request, release_id: int, name: str):
    verifier = _verifier(request)
    body = json_body(request, max_bytes=MAX_RESULT_BYTES)
    return JsonResponse(verification.finish_step(verifier, release_id, name, body.get("envelope")))


@api(("POST",))
def step_reopen(request, release_id: int, name: str):
    verifier = _verifier(request)
    verification.reopen_step(verifier, release_id, name, str(json_body(request).get("reason", "")))
    return JsonResponse({"step": name, "status": "pending"})


@api(("POST",))
def job_error(request, release_id: int):
    verifier = _verifier(request)
    body = json_body(request)
    step = body.get("step")
    if step is not None and not isinstance(step, str):
        raise ApiError(400, "field 'step' must be a step name")
    verification.report_error(verifier, release_id, str(body.get("reason", "")) or "the verifier reported an error",
                              step=step, detail=str(body.get("detail", "")))
    return JsonResponse({"status": "error"})


def _verdict_body(request) -> tuple[dict, dict | None, dict]:
    """(verdict envelope, provenance envelope or None, the whole body) of a verdict post."""
    body = json_body(request, max_bytes=MAX_RESULT_BYTES)
    if not isinstance(body.get("verdict"), dict):
        raise ApiError(400, "field 'verdict' (the verdict envelope signed by the verifier) is required")
    provenance = body.get("provenance")
    if provenance is not None and not isinstance(provenance, dict):
        raise ApiError(400, "field 'provenance' must be an envelope or null")
    return body["verdict"], provenance, body


@api(("POST",))
def job_verdict(request, release_id: int):
    verifier = _verifier(request)
    verdict, provenance, _ = _verdict_body(request)
    return JsonResponse(verification.accept_verdict(verifier, release_id, verdict, provenance))


@api(("POST",))
def job_second_opinion(request, release_id: int):
    verifier = _verifier(request)
    verdict, provenance, body = _verdict_body(request)
    return JsonResponse(verification.accept_second_opinion(verifier, release_id, verdict, provenance, body.get("steps")))
