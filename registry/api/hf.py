"""Hugging Face Hub-compatible read-only endpoints (registry/hfcompat.py decides what they serve)."""
from __future__ import annotations

import logging
import re

from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .. import hfcompat
from .common import ApiError, _authenticate

log = logging.getLogger(__name__)


def _header_text(text: str) -> str:
    """`text` on one line: the message may quote the request's path, whose percent-encoded line
    break Django refuses in a header (a 500 instead of the Hub's error)."""
    return re.sub(r"[\x00-\x1f\x7f\s]+", " ", text)


def _hub_error(status: int, code: str | None, message: str) -> JsonResponse:
    response = JsonResponse({"error": message}, status=status)
    if code:
        response["X-Error-Code"] = code
    response["X-Error-Message"] = _header_text(message)[:500]
    return response


def hub_view(view):
    """GET/HEAD only, Bearer token or anonymous, errors in the Hub's own form (X-Error-Code)."""

    @csrf_exempt
    def inner(request, *args, **kwargs):
        if request.method not in ("GET", "HEAD"):
            return _hub_error(405, None, f"method {request.method} not allowed: this is a read-only view")
        try:
            _authenticate(request)
            return view(request, *args, **kwargs)
        except ApiError as exc:
            return _hub_error(exc.status, None, exc.message)
        except hfcompat.HubError as exc:
            return _hub_error(exc.status, exc.code, exc.message)
        except Exception:  # noqa: BLE001 - the client gets the Hub's error form, the operator the traceback
            log.exception("unhandled error in %s %s", request.method, request.path)
            return _hub_error(500, None, "internal error (logged)")

    inner.__name__ = view.__name__
    return inner


@hub_view
def model_info(request, ns: str, model: str, revision: str | None = None):
    rev = hfcompat.revision(request.user, request.token, ns, model, revision)
    return JsonResponse(hfcompat.model_info(rev))


@hub_view
def model_tree(request, ns: str, model: str, revision: str, path: str = ""):
    rev = hfcompat.revision(request.user, request.token, ns, model, revision)
    return JsonResponse(hfcompat.tree(rev, path), safe=False)


@hub_view
def resolve(request, ns: str, model: str, revision: str, filename: str):
    """The Hub's file URL: a redirect to the blob (whose endpoint checks access again and serves
    Range requests), with the metadata the Hub's clients read from it."""
    rev = hfcompat.revision(request.user, request.token, ns, model, revision)
    f = rev.file(filename)
    response = HttpResponse(status=302)
    response["Location"] = request.build_absolute_uri(f"/api/v1/blobs/{f.digest}")
    response["X-Repo-Commit"] = rev.commit
    response["X-Linked-Etag"] = f'"{f.sha256}"'
    response["X-Linked-Size"] = str(f.size)
    response["ETag"] = f'"{f.sha256}"'
    response["Docker-Content-Digest"] = f.digest
    return response
