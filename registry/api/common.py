"""Shared plumbing for the JSON API: authentication, errors, JSON bodies. No business logic."""
from __future__ import annotations

import functools
import json
import logging
import math
import re

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from assay.core.errors import AssayError
from assay.core.nul import nul_path, string_path

from ..errors import RegistryError
from ..tokens import TokenError, authenticate_token
from ..uploads import StorageFailure
from ..verifiers import authenticate_verifier

log = logging.getLogger(__name__)


ApiError = RegistryError
DIGITS_RE = re.compile(r"[0-9]{1,19}")
INTERNAL_ERROR = "internal error (logged)"


def error_response(status: int, message: str, **extra) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


def content_length(request) -> int | None:
    """The request's Content-Length, or None when the header is absent; 400 when it is malformed."""
    raw = request.META.get("CONTENT_LENGTH")
    if raw is None or raw == "":
        return None
    if not DIGITS_RE.fullmatch(raw):
        raise ApiError(400, f"invalid Content-Length header {raw[:40]!r}: expected a non-negative whole number of bytes")
    return int(raw)


def is_chunked(request) -> bool:
    return "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is too large")
    return value


def _not_text(value: str) -> bool:
    """An unpaired surrogate: json.loads takes the escape "\\ud800", but it is no text (UTF-8 and
    PostgreSQL cannot hold it)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def json_body(request, max_bytes: int = 4 * 1024 * 1024) -> dict:
    length = content_length(request)
    if length is None and is_chunked(request):
        raise ApiError(411, "Length Required: send the JSON body with a Content-Length header, not chunked")
    if length is not None and length > max_bytes:
        raise ApiError(413, f"request body too large ({length} bytes, limit {max_bytes})")
    try:
        raw = request.body
    except RequestDataTooBig:
        raise ApiError(413, f"request body too large (limit {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes)") from None
    try:
        data = json.loads(raw or b"{}", parse_constant=_no_constant, parse_float=_finite_float)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "request body is nested too deeply") from None
    if not isinstance(data, dict):
        raise ApiError(400, "request body must be a JSON object")
    where = nul_path(data)
    if where is not None:  # PostgreSQL stores no NUL, in text or in jsonb
        raise ApiError(400, f"request body field {where!r} holds a NUL character (U+0000), which this registry does not accept")
    where = string_path(data, _not_text)
    if where is not None:  # psycopg cannot encode it (a 500), nor can str.encode()
        shown = where.encode("utf-8", "backslashreplace").decode("utf-8")
        raise ApiError(400, f"request body field {shown!r} holds an unpaired surrogate escape (\\ud800-\\udfff), which is not text")
    return data


def _authenticate(request) -> None:
    """Sets request.user and request.token from a Bearer token, or keeps the session user."""
    request.token = None
    request.verifier = None
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise ApiError(401, "Authorization header must be 'Bearer <token>'")
        request.verifier = authenticate_verifier(secret.strip())  # a registered verifier's token
        if request.verifier is not None:
            request.user = AnonymousUser()
            return
        try:
            token = authenticate_token(secret.strip())
        except TokenError as exc:
            raise ApiError(401, str(exc)) from None
        request.user = token.user
        request.token = token
    elif not getattr(request, "user", None):
        request.user = AnonymousUser()


def api(methods: tuple[str, ...], login_required: bool = False):
    """Decorator for API views: method check, auth, and errors turned into JSON with a status."""

    def wrap(view):
        @csrf_exempt
        @functools.wraps(view)
        def inner(request, *args, **kwargs):
            if request.method not in methods:
                return error_response(405, f"method {request.method} not allowed; use {', '.join(methods)}")
            try:
                _authenticate(request)
                if request.token is None and request.user.is_authenticated and request.method not in ("GET", "HEAD"):
                    # Session-authenticated writes come from the web UI and must carry a CSRF token.
                    from django.middleware.csrf import CsrfViewMiddleware

                    reason = CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})
                    if reason is not None:
                        return error_response(403, "CSRF check failed")
                if login_required and not request.user.is_authenticated:
                    raise ApiError(401, "authentication required: pass 'Authorization: Bearer <token>' (see `assay login`)")
                return view(request, *args, **kwargs)
            except ApiError as exc:
                return error_response(exc.status, exc.message, **exc.extra)
            except AssayError as exc:
                return error_response(400, str(exc))
            except StorageFailure as exc:  # the blob store full (507) or failing (503): the reason, not a bare 500
                return error_response(507 if exc.full else 503, str(exc))
            except Exception:  # noqa: BLE001 - the client gets JSON, the operator the traceback
                log.exception("unhandled error in %s %s", request.method, request.path)
                return error_response(500, INTERNAL_ERROR)

        return inner

    return wrap
