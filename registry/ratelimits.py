"""Rate limits on what attackers repeat: login attempts (per client IP and per user name), sign
ups (per IP) and token creation (per account). Counters live in the Redis cache (django-ratelimit);
the limits are settings (ASSAY_RATE_LOGIN, ASSAY_RATE_SIGNUP, ASSAY_RATE_TOKENS). If the cache
cannot be reached the request is let through and a warning logged: a Redis outage must not lock
every user out. Behind a proxy, REMOTE_ADDR must be the client's address (nginx sets it)."""
from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpResponse
from django_ratelimit import ALL
from django_ratelimit.core import is_ratelimited

log = logging.getLogger(__name__)


def limited(request, group: str, key, rate_setting: str) -> bool:
    """Count this request against the limit and say whether it is over (fails open)."""
    try:
        return is_ratelimited(request, group=group, key=key, rate=getattr(settings, rate_setting), method=ALL,
                              increment=True)
    except Exception:  # the cache is down: never lock users out for it
        log.warning("rate limit %s not checked: the cache is unreachable", group, exc_info=True)
        return False


def too_many(what: str, rate_setting: str) -> HttpResponse:
    response = HttpResponse(f"Too many {what}: at most {getattr(settings, rate_setting)}. Try again later.\n",
                            status=429, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = "60"
    return response


def login_limited(request) -> bool:
    if request.method != "POST":
        return False
    by_ip = limited(request, "login-ip", "ip", "ASSAY_RATE_LOGIN")
    by_user = limited(request, "login-user", lambda g, r: (r.POST.get("username") or "").lower()[:150], "ASSAY_RATE_LOGIN")
    return by_ip or by_user
