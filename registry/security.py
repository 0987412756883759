"""Browser-facing security: a Content-Security-Policy with a per-request script nonce, the
refusal to serve a public host with a development SECRET_KEY, and the refusal of a NUL character
in a request's path, query string or form fields (PostgreSQL stores no NUL: it would be a 500).

The policy allows scripts, styles and connections from the registry itself only (model cards are
sanitized Markdown; their https images may load), no framing, no plugins, forms to the registry
only. The one inline script (live status on the release page) carries the request's nonce. A page
that hashes in WebAssembly (the publish page) sets `response.csp_allows_wasm`: its policy adds
'wasm-unsafe-eval', which lets the page compile WebAssembly and still runs no string as script.
"""
from __future__ import annotations

import secrets
from urllib.parse import unquote_plus

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from django.urls import Resolver404, resolve

from assay.core.nul import NUL, NUL_SYMBOL

DEVELOPMENT_SECRET_KEYS = {"assay-dev-insecure-secret-key-change-me", "change-me-in-production", ""}
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1", "testserver"}


def check_secret_key(secret_key: str, allowed_hosts: list[str], debug: bool) -> None:
    """Refuse to start when a development SECRET_KEY would protect sessions on a public host."""
    public = [h for h in allowed_hosts if h not in LOOPBACK_HOSTS]
    if secret_key in DEVELOPMENT_SECRET_KEYS and public and not debug:
        raise ImproperlyConfigured(
            f"refusing to start: SECRET_KEY is a development default while serving {', '.join(public)} "
            "(ALLOWED_HOSTS); set SECRET_KEY to a long random value, e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))'")


def content_security_policy(nonce: str, *, wasm: bool = False) -> str:
    return "; ".join([
        "default-src 'self'", f"script-src 'self' 'nonce-{nonce}'" + (" 'wasm-unsafe-eval'" if wasm else ""), "style-src 'self'", "img-src 'self' data: https:",
        "connect-src 'self'", "object-src 'none'", "base-uri 'self'", "form-action 'self'", "frame-ancestors 'none'",
    ])


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.csp_nonce = secrets.token_urlsafe(16)
        response = self.get_response(request)
        if response.get("Content-Type", "").startswith("text/html"):
            response["Content-Security-Policy"] = content_security_policy(request.csp_nonce, wasm=getattr(response, "csp_allows_wasm", False))
        return response


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def nul_in_request(request) -> str | None:
    """What part of the request holds a NUL character (U+0000), raw or percent-encoded: "path",
    "query string", "form field 'name'"; None when none does. JSON bodies are checked where the
    API parses them (registry.api.common.json_body), signed statements by their parser."""
    if NUL in request.path_info or NUL in request.path:
        return "path"
    query = request.META.get("QUERY_STRING", "")
    if NUL in query or NUL in unquote_plus(query, errors="replace"):
        return "query string"
    if request.method == "POST" and request.content_type in FORM_TYPES and _family(request) == "web":
        for name, values in request.POST.lists():
            if NUL in name or any(NUL in v for v in values):
                return f"form field {name.replace(NUL, NUL_SYMBOL)!r}"
    return None


def _family(request) -> str:
    """Which error form the route answers in: "api" (JSON {"error": ...}), "hf" (the Hugging Face
    Hub's), "oci" (the distribution spec's) or "web" (a plain page)."""
    try:
        module = resolve(request.path_info).func.__module__ or ""
    except Resolver404:
        module = ""
    path = request.path_info
    if module == "registry.api.oci" or path.startswith("/v2/"):
        return "oci"
    if module == "registry.api.hf":
        return "hf"
    if module.startswith("registry.api.") or path.startswith("/api/"):
        return "api"
    return "web"


def bad_request(request, message: str, *, oci_code: str = "UNSUPPORTED") -> HttpResponse:
    """A 400 in the error form of the route the request was for."""
    family = _family(request)
    if family == "oci":
        from .api.oci import _oci_error

        return _oci_error(400, oci_code, message)
    if family == "hf":
        from .api.hf import _hub_error

        return _hub_error(400, None, message)
    if family == "api":
        from .api.common import error_response

        return error_response(400, message)
    return HttpResponse(f"Bad Request: {message}\n", status=400, content_type="text/plain; charset=utf-8")


class RefuseNulMiddleware:
    """400 for a NUL in the path, the query string or a web form's fields, before any view (or
    database query) sees it, in the error form of the route it was for."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        where = nul_in_request(request)
        if where is not None:
            return bad_request(request, f"the request's {where} holds a NUL character (U+0000), which this registry does not accept",
                               oci_code="NAME_INVALID" if where == "path" else "UNSUPPORTED")
        return self.get_response(request)
