"""Transparency log endpoints: checkpoint, entries, inclusion and consistency proofs."""
from __future__ import annotations

import base64
import re

from django.http import HttpResponse, JsonResponse

from .. import tlog, witnessing
from .common import ApiError, api

MAX_ENTRIES = 1000
_UINT = re.compile(r"\A[0-9]{1,19}\Z")


def _int(request, name: str, default: int | None = None) -> int:
    raw = request.GET.get(name)
    if raw is None:
        if default is None:
            raise ApiError(400, f"query parameter '{name}' is required")
        return default
    if not _UINT.match(raw) or int(raw) > tlog.MAX_INDEX:
        raise ApiError(400, f"query parameter '{name}' must be a non-negative integer below 2**63, got {raw[:40]!r}")
    return int(raw)


@api(("GET",))
def log_checkpoint(request):
    """The current signed checkpoint; with ?cosigned=1 the newest one witnesses cosigned (404 if none)."""
    if request.GET.get("cosigned") in ("1", "true"):
        row = witnessing.current_cosigned()
        if row is None:
            raise ApiError(404, "no witness has cosigned a checkpoint of this log" if witnessing.configured()
                           else "this registry has no witnesses configured (ASSAY_WITNESSES)")
        return HttpResponse(row.text, content_type="text/plain; charset=utf-8")
    return HttpResponse(tlog.signed_checkpoint(), content_type="text/plain; charset=utf-8")


@api(("GET",))
def log_entries(request):
    start = _int(request, "start", 0)
    end = _int(request, "end", min(start + 100, tlog.MAX_INDEX))
    if end < start:
        raise ApiError(400, f"invalid range start={start} end={end}: end must not be below start")
    end = min(end, start + MAX_ENTRIES, tlog.MAX_INDEX)
    return JsonResponse(
        {
            "entries": [
                {"index": e.index, "kind": e.kind, "data": base64.b64encode(bytes(e.data)).decode(), "created": e.created.isoformat()}
                for e in tlog.entries(start, end)
            ]
        }
    )


@api(("GET",))
def log_inclusion(request):
    index, size = _int(request, "index"), _int(request, "size")
    return JsonResponse({"index": index, "tree_size": size, "proof": [h.hex() for h in tlog.inclusion_proof(index, size)]})


@api(("GET",))
def log_consistency(request):
    old, new = _int(request, "old"), _int(request, "new")
    return JsonResponse({"old_size": old, "new_size": new, "proof": [h.hex() for h in tlog.consistency_proof(old, new)]})


@api(("GET",))
def log_key_events(request):
    start, end = _int(request, "start", 0), _int(request, "end", tlog.size())
    return JsonResponse(tlog.key_events(start, end))
