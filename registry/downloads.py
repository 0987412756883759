"""Who may download a blob, and HTTP Range parsing for downloads."""
from __future__ import annotations

import re

from django.db.models import Q

from .models import Blob, Release
from .permissions import can_publish, can_read, token_allows, token_is_account_wide

RANGE_RE = re.compile(r"\Abytes=([0-9]{0,19})-([0-9]{0,19})\Z")  # int() of a longer one: ValueError, a 500


class RangeNotSatisfiable(Exception):
    pass


def blob_readable(user, token, digest: str) -> tuple[bool, str]:
    """A blob is served if it belongs to (is the file or an input of) a verified release the requester may read, if the
    requester may publish in the namespace of a release that uses it (so owners can inspect
    releases that are not verified), or if the requester uploaded these bytes themselves: whatever
    releases use them, so that the answer to an uploader never tells whether a private namespace
    holds the same file (uploaded_by_caller). Returns (allowed, reason)."""
    if uploaded_by_caller(user, token, Blob.objects.filter(digest=digest).first()):
        return True, ""
    releases = Release.objects.filter(Q(blob_id=digest) | Q(inputs__blob_id=digest)).distinct().select_related("model__namespace")
    statuses = set()
    for release in releases:
        ns = release.model.namespace
        if not can_read(user, ns) or not token_allows(token, "read", ns.name):
            continue
        if release.status == Release.VERIFIED:
            return True, ""
        if can_publish(user, ns):
            return True, ""
        statuses.add(f"{release.reference} is {release.status}")
    if not statuses:
        return False, "not found"
    return False, "blob is not downloadable: " + "; ".join(sorted(statuses)) + " (only verified releases are served)"


def uploaded_by_caller(user, token, blob: Blob | None) -> bool:
    """The caller uploaded these bytes, so may read them back or name them in a release. A token
    limited to some namespaces counts only uploads by a token limited to the same namespaces or
    fewer: the account's other uploads may be for any of its namespaces (a stolen token limited to
    one must not reach another's files, released or not, through the account's uploads)."""
    if blob is None or not blob.was_uploaded_by(user):
        return False
    if token_is_account_wide(token):
        return True
    allowed = set(token.namespaces)
    return any(set(t.namespaces) <= allowed for t in blob.upload_tokens.filter(user=user))


def blob_readable_by_verifier(verifier, digest: str) -> tuple[bool, str]:
    """A verifier reads the blobs of the jobs it holds: the file of a release it is verifying
    (or was asked to verify again), that release's base and its inputs (an importance matrix)."""
    held = Release.objects.filter(Q(verifier=verifier, status__in=[Release.QUEUED, Release.VERIFYING])
                                  | Q(verdicts__verifier=verifier, verdicts__envelope__isnull=True))
    if held.filter(Q(blob_id=digest) | Q(base_digest=digest) | Q(inputs__blob_id=digest)).exists():
        return True, ""
    return False, f"blob {digest} belongs to no job verifier {verifier.name!r} holds"


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Parse a single-range 'bytes=a-b' header into inclusive (start, end), or None for the whole."""
    if not header:
        return None
    m = RANGE_RE.match(header.strip())
    if not m or (m.group(1) == "" and m.group(2) == ""):
        raise RangeNotSatisfiable(f"unsupported Range header {header[:80]!r}: use a single 'bytes=start-end' range")
    first, last = m.group(1), m.group(2)
    if first == "":  # suffix range: the last N bytes
        n = int(last)
        if n == 0:
            raise RangeNotSatisfiable("empty suffix range")
        return max(0, size - n), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiable(f"range {start}-{last} is outside the blob's {size} bytes")
    return start, min(end, size - 1)
