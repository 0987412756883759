"""Browser-facing security: a Content-Security-Policy with a per-request script nonce, and the
refusal to serve a public host with a development SECRET_KEY.

The policy allows scripts, styles and connections from the registry itself only (model cards are
sanitized Markdown; their https images may load), no framing, no plugins, forms to the registry
only. The one inline script (live status on the release page) carries the request's nonce. A page
that hashes in WebAssembly (the publish page) sets `response.csp_allows_wasm`: its policy adds
'wasm-unsafe-eval', which lets the page compile WebAssembly and still runs no string as script.
"""
from __future__ import annotations

import secrets

from django.core.exceptions import ImproperlyConfigured

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
