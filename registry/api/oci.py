"""OCI distribution endpoints, read-only (registry/ocicompat.py decides what they serve)."""
from __future__ import annotations

import logging

from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .. import ocicompat
from .common import ApiError, _authenticate

log = logging.getLogger(__name__)


def _oci_error(status: int, code: str, message: str) -> JsonResponse:
    response = JsonResponse({"errors": [{"code": code, "message": message}]}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="assay", error="invalid_token"'
    return response


def oci_view(view):
    """GET/HEAD only; a Bearer token or anonymous; errors in the distribution spec's form."""

    @csrf_exempt
    def inner(request, *args, **kwargs):
        if request.method not in ("GET", "HEAD"):
            return _oci_error(405, "UNSUPPORTED", f"method {request.method} not allowed: this registry is read-only over /v2/")
        try:
            _authenticate(request)
            response = view(request, *args, **kwargs)
        except ApiError as exc:
            return _oci_error(exc.status, "UNAUTHORIZED" if exc.status == 401 else "DENIED", exc.message)
        except ocicompat.OciError as exc:
            return _oci_error(exc.status, exc.code, exc.message)
        except Exception:  # noqa: BLE001 - the client gets the spec's error form, the operator the traceback
            log.exception("unhandled error in %s %s", request.method, request.path)
            return _oci_error(500, "UNKNOWN", "internal error (logged)")
        response["Docker-Distribution-API-Version"] = "registry/2.0"
        return response

    inner.__name__ = view.__name__
    return inner


def _document(request, doc: ocicompat.Document) -> HttpResponse:
    response = HttpResponse(b"" if request.method == "HEAD" else doc.data, content_type=doc.media_type)
    response["Content-Length"] = str(len(doc.data))
    response["Docker-Content-Digest"] = doc.digest
    return response


@oci_view
def base(request):
    return JsonResponse({})


@oci_view
def tags(request, name: str):
    return JsonResponse({"name": name, "tags": sorted(ocicompat.verified_tags(request.user, request.token, name))})


@oci_view
def manifest(request, name: str, reference: str):
    return _document(request, ocicompat.find_manifest(request.user, request.token, name, reference))


@oci_view
def referrers(request, name: str, digest: str):
    return _document(request, ocicompat.referrer_index(request.user, request.token, name, digest, request.GET.get("artifactType")))


@oci_view
def blob(request, name: str, digest: str):
    kind, doc = ocicompat.find_blob(request.user, request.token, name, digest)
    if doc is not None:
        return _document(request, doc)
    response = HttpResponse(status=307)  # the blob endpoint checks access again, serves Range, nginx or storage
    response["Location"] = request.build_absolute_uri(f"/api/v1/blobs/{digest}")
    response["Docker-Content-Digest"] = digest
    return response
