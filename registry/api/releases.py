"""Release endpoints: create (signed statement), resolve, status."""
from __future__ import annotations

import base64
import json
import re

from django.http import JsonResponse

from ..bundles import release_bundle, step_rows
from ..catalog import search_models
from ..models import Release
from ..releases import create_release, draft_statement, find_release, release_visible, releases_of_file
from .common import ApiError, api, json_body

_DIGEST = re.compile(r"\Asha256:[0-9a-f]{64}\Z")


@api(("GET", "POST"))
def releases_collection(request):
    """GET ?digest=sha256:...: the releases of that file this caller may see; POST: create one."""
    if request.method == "POST":
        return release_create(request)
    digest = request.GET.get("digest", "")
    if not _DIGEST.match(digest):
        raise ApiError(400, "query parameter 'digest' must be sha256:<64 lowercase hex digits>")
    return JsonResponse({"digest": digest, "releases": [
        {"reference": r.reference, "version": r.version, "status": r.status, "file_name": r.file_name}
        for r in releases_of_file(request.user, request.token, digest)]})


@api(("POST",), login_required=True)
def release_statement(request):
    """POST /api/v1/releases/statement: the statement to sign for a release the web page publishes
    (registry.releases.draft_statement); answers its payload bytes in base64 and as JSON."""
    body = json_body(request, max_bytes=2 * 1024 * 1024)

    def text(name: str, *, required: bool = True) -> str:
        value = body.get(name)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or (required and not value):
            raise ApiError(400, f"field '{name}' must be a{' non-empty' if required else ''} string")
        return value

    recipe = body.get("recipe")
    if recipe is not None and not isinstance(recipe, dict):
        raise ApiError(400, "field 'recipe' must be an object (the recipe `assay quantize` wrote) or null")
    payload = draft_statement(
        request.user, request.token, file_name=text("file_name"), digest=text("digest"), reference=text("reference"),
        blake3=text("blake3", required=False) or None,
        quantization=text("quantization"), base_ref=text("base", required=False) or None, recipe=recipe,
        recipe_base_digest=text("recipe_base_digest", required=False) or None, model_card=text("model_card", required=False),
    )
    return JsonResponse({"payload": base64.b64encode(payload).decode("ascii"), "statement": json.loads(payload)})


def release_create(request):
    if not request.user.is_authenticated:
        raise ApiError(401, "authentication required: pass 'Authorization: Bearer <token>' (see `assay login`)")
    body = json_body(request, max_bytes=2 * 1024 * 1024)
    envelope = body.get("envelope")
    if not isinstance(envelope, dict):
        raise ApiError(400, "field 'envelope' (the DSSE envelope over the release statement) is required")
    model_card = body.get("model_card") or ""
    if not isinstance(model_card, str):
        raise ApiError(400, "field 'model_card' must be a string")
    model_signing = body.get("model_signing")
    if model_signing is not None and not isinstance(model_signing, dict):
        raise ApiError(400, "field 'model_signing' must be an OpenSSF model_signing signature (a Sigstore bundle object)")
    release = create_release(request.user, request.token, envelope, model_card, model_signing)
    answer = {
        "reference": release.reference,
        "version": release.version,
        "status": release.status,
        "digest": release.blob_id,
        "log_index": release.release_log_index,
        "status_url": f"/api/v1/releases/{release.reference}/status",
        "web_url": f"/{release.model.namespace.name}/{release.model.name}/releases/{release.tag}/{release.version}",
    }
    if getattr(release, "queue_warning", None):
        answer["warning"] = release.queue_warning
    return JsonResponse(answer, status=201)


def _find_any(request, reference: str) -> Release:
    """The newest release of a tag, whatever its status, for those who may publish in the
    namespace; everyone else sees only verified releases (as on the web pages)."""
    release = find_release(request.user, request.token, reference, verified_only=False)
    if not release_visible(request.user, request.token, release):
        return find_release(request.user, request.token, reference, verified_only=True)
    return release


@api(("GET",))
def release_resolve(request, reference: str):
    if request.GET.get("any") in ("1", "true"):
        release = _find_any(request, reference)
    else:
        release = find_release(request.user, request.token, reference, verified_only=True)
    return JsonResponse(release_bundle(release))


@api(("GET",))
def release_evidence(request, reference: str):
    """The evidence documents the verdicts on a release sign by digest (stored once, served here,
    readable by whoever may read the release)."""
    from ..verification import evidence_documents

    release = _find_any(request, reference) if request.GET.get("any") in ("1", "true") else \
        find_release(request.user, request.token, reference, verified_only=True)
    return JsonResponse({"reference": release.reference, "version": release.version, "verifiers": evidence_documents(release)})


@api(("GET",))
def release_status(request, reference: str):
    release = _find_any(request, reference)
    return JsonResponse(
        {
            "reference": release.reference,
            "version": release.version,
            "status": release.status,
            "status_reason": release.status_reason,
            "level": release.level_detail,
            "digest": release.blob_id,
            "steps": step_rows(release),
        }
    )


@api(("GET",))
def model_search(request):
    """GET /api/v1/models?q=QUERY: the models this caller can read (name, namespace or description
    matching), each with the newest release of every tag it may see and that release's level."""
    query = request.GET.get("q", "").strip()[:100]
    return JsonResponse({"query": query, "models": search_models(request.user, request.token, query)})
