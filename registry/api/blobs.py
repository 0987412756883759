"""Upload and download endpoints for content-addressed blobs."""
from __future__ import annotations

import itertools
import logging
import re

from django.conf import settings
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse

from assay.core import storage_address
from assay.core.digest import parse_digest
from assay.core.errors import DigestError

from ..blobstore import ChunkTooLong, StorageFailure, UploadError, get_blob_store
from ..downloads import RangeNotSatisfiable, blob_readable, blob_readable_by_verifier, parse_range
from ..quotas import user_room
from ..models import ApiToken, Blob, Upload
from ..nginx import accel_path
from ..permissions import token_allows
from .common import ApiError, api, content_length, is_chunked, json_body

log = logging.getLogger(__name__)

CONTENT_RANGE_RE = re.compile(r"\Abytes ([0-9]{1,19})-([0-9]{1,19})/([0-9]{1,19}|\*)\Z")  # int() of more digits: ValueError


def _own_upload(request, upload_id: str) -> Upload:
    upload = Upload.objects.filter(pk=upload_id, user=request.user).first()
    if upload is None:
        raise ApiError(404, f"upload {upload_id} not found")
    return upload


def _internal_storage_address(request) -> bool:
    """Whether pre-signed URLs for this request name the store's internal address
    (assay/core/storage_address.py): asked for with the header, by an authenticated caller."""
    try:
        internal = storage_address.wants_internal(request.headers.get(storage_address.HEADER))
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    return internal and (request.verifier is not None or request.user.is_authenticated)


def _require_publish_token(request) -> None:
    if not token_allows(request.token, ApiToken.PUBLISH, None):
        raise ApiError(403, "this token lacks the 'publish' scope")


@api(("POST",), login_required=True)
def upload_start(request):
    _require_publish_token(request)
    store = get_blob_store()
    try:
        upload_id = store.new_upload()
    except StorageFailure as exc:
        raise _storage_error(exc) from None
    Upload.objects.create(id=upload_id, user=request.user)
    answer = {"upload_id": upload_id, "offset": 0, "location": f"/api/v1/uploads/{upload_id}"}
    if store.direct_part_size:  # object storage: parts may go straight to it (POST .../parts for a URL)
        answer["direct"] = {"part_size": store.direct_part_size, "parts": f"/api/v1/uploads/{upload_id}/parts"}
    return JsonResponse(answer, status=201)


@api(("POST",), login_required=True)
def upload_part(request, upload_id: str):
    """A pre-signed URL for the next part of an upload to object storage: the client PUTs the
    bytes there. The registry's size limit and the user's quota are checked here, and again on
    the bytes the store holds when the upload is finalized."""
    _require_publish_token(request)
    upload = _own_upload(request, upload_id)
    store = get_blob_store()
    if not store.direct_part_size:
        raise ApiError(409, "this registry stores blobs itself: send the bytes with PATCH /api/v1/uploads/<id>")
    body = json_body(request)
    offset, size, final = body.get("offset"), body.get("size"), body.get("final", False)
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in (offset, size)) or not isinstance(final, bool):
        raise ApiError(400, "fields 'offset' and 'size' must be whole numbers of bytes and 'final' true or false")
    if offset + size > settings.ASSAY_MAX_UPLOAD_BYTES:
        raise ApiError(413, f"upload exceeds the registry's limit of {settings.ASSAY_MAX_UPLOAD_BYTES} bytes")
    room = user_room(upload.user, upload.id)
    if room is not None and offset + size > room:
        raise _over_quota(upload.user)
    try:
        url = store.direct_part_url(upload.id, offset, size, final=final, internal=_internal_storage_address(request))
    except UploadError as exc:
        raise ApiError(416, str(exc), offset=_safe_offset(store, upload.id)) from None
    return JsonResponse({"url": url, "offset": offset, "size": size})


@api(("GET", "PATCH", "PUT", "DELETE"), login_required=True)
def upload_detail(request, upload_id: str):
    _require_publish_token(request)
    upload = _own_upload(request, upload_id)
    store = get_blob_store()
    try:
        if request.method == "GET":
            return JsonResponse({"upload_id": upload.id, "offset": store.upload_offset(upload.id)})
        if request.method == "DELETE":
            store.abort(upload.id)
            upload.delete()
            return HttpResponse(status=204)
        if request.method == "PATCH":
            return _append_chunk(request, store, upload)
        return _finalize(request, store, upload)
    except UploadError as exc:
        current = _safe_offset(store, upload.id)
        raise ApiError(416 if current is not None else 404, str(exc), offset=current) from None
    except StorageFailure as exc:
        raise _storage_error(exc, offset=_safe_offset(store, upload.id)) from None


def _storage_error(exc: StorageFailure, **extra) -> ApiError:
    """507 Insufficient Storage when the store is full, 503 when it cannot be written otherwise."""
    return ApiError(507 if exc.full else 503, str(exc), **extra)


def _safe_offset(store, upload_id):
    try:
        return store.upload_offset(upload_id)
    except UploadError:
        return None


def _request_body(request):
    """(stream, length) of the request body. Without a Content-Length (Transfer-Encoding:
    chunked) the length is None and the stream is the server's de-chunked input, read to EOF;
    that is only safe where the server marks its input as terminated (gunicorn does)."""
    length = content_length(request)
    if length is not None:
        return request, length
    if request.META.get("wsgi.input_terminated") and "wsgi.input" in request.META:
        return request.META["wsgi.input"], None
    if is_chunked(request):
        raise ApiError(411, "Length Required: this server cannot read a chunked body; send a Content-Length header")
    return request, 0


def _append_body(store, upload, start: int, stream, length: int | None, span: int | None = None) -> int:
    """Append the body at `start`; `span` is the chunk length a Content-Range promised. Neither
    the registry's size limit nor the user's storage quota (registry/quotas.py) may be passed."""
    room = settings.ASSAY_MAX_UPLOAD_BYTES - start
    expected = length if length is not None else span
    if expected is not None and expected > room:
        raise ApiError(413, f"upload exceeds the registry's limit of {settings.ASSAY_MAX_UPLOAD_BYTES} bytes")
    quota_room = user_room(upload.user, upload.id)
    by_quota = quota_room is not None and quota_room - start < room
    if by_quota:
        room = quota_room - start
        if expected is not None and expected > room:
            raise _over_quota(upload.user)
    try:
        return store.append(upload.id, start, stream, length, limit=min(room, span) if span is not None else room)
    except ChunkTooLong:
        if span is not None and span <= room:
            raise ApiError(400, f"the body is longer than the {span} bytes its Content-Range covers; none of it was kept") from None
        if by_quota:
            raise _over_quota(upload.user) from None
        raise ApiError(413, f"upload exceeds the registry's limit of {settings.ASSAY_MAX_UPLOAD_BYTES} bytes; none of this chunk was kept") from None


def _over_quota(user) -> ApiError:
    return ApiError(413, f"storage quota exceeded: {user.username} may store {settings.ASSAY_USER_QUOTA_BYTES} bytes "
                         "(uploads included) and this upload would pass it; nothing of this chunk was kept")


def _append_chunk(request, store, upload):
    stream, length = _request_body(request)
    header = request.headers.get("Content-Range")
    span = None
    if header:
        m = CONTENT_RANGE_RE.match(header)
        if not m or int(m.group(2)) < int(m.group(1)):
            raise ApiError(400, f"invalid Content-Range {header[:80]!r}: expected 'bytes start-end/total'")
        start, end = int(m.group(1)), int(m.group(2))
        span = end - start + 1
        if length is not None and span != length:
            raise ApiError(400, f"Content-Range covers {span} bytes but the body has {length}")
    else:
        start = store.upload_offset(upload.id)
    offset = _append_body(store, upload, start, stream, length, span)
    if span is not None and offset != start + span:
        # A chunked body that ended early: what arrived is kept, the client resumes from there.
        raise UploadError(f"chunk ended early: {start + span - offset} bytes missing; resume from {offset}")
    return JsonResponse({"upload_id": upload.id, "offset": offset}, status=202)


def _finalize(request, store, upload):
    digest = request.GET.get("digest", "")
    try:
        parse_digest(digest)
    except DigestError as exc:
        raise ApiError(400, str(exc)) from None
    stream, length = _request_body(request)
    if length != 0:
        _append_body(store, upload, store.upload_offset(upload.id), stream, length)
    room = user_room(upload.user, upload.id)
    if room is not None and store.upload_offset(upload.id) > room:  # parts sent straight to the store
        store.abort(upload.id)
        upload.delete()
        raise _over_quota(upload.user)
    try:
        size = store.finalize(upload.id, digest)
    except DigestError as exc:
        upload.delete()
        raise ApiError(400, str(exc)) from None
    upload.delete()
    Blob.record_upload(digest, size, request.user, request.token)
    return JsonResponse({"digest": digest, "size": size}, status=201)


def _served_by_nginx(store, digest: str) -> HttpResponse:
    """The bytes leave through nginx (sendfile, its own Range handling); Django only decided who
    may read them. The headers nginx copies onto its answer come from here."""
    response = HttpResponse(status=200)
    response["X-Accel-Redirect"] = accel_path(store.local_path(digest).relative_to(store.root))
    response["Content-Type"] = "application/octet-stream"
    response["Docker-Content-Digest"] = digest
    response["ETag"] = f'"{digest}"'
    return response


def _opened_body(store, digest: str, start: int, end: int):
    """The blob's bytes [start, end], its file opened (and the first block read) before any header
    goes out: a recorded blob whose bytes are gone or unreadable is an error that says so, not a
    200 that breaks off, which a client would retry as a dropped connection."""
    body = store.iter_range(digest, start, end)
    try:
        first = next(body, b"")
    except OSError as exc:
        log.error("blob %s is recorded but cannot be read: %s", digest, exc)
        raise ApiError(500, f"blob {digest} is recorded but the registry cannot read its bytes from storage "
                            f"({exc.strerror or exc}); tell the registry's operator") from None
    return itertools.chain([first], body)


@api(("GET", "HEAD"))
def blob_download(request, digest: str):
    try:
        parse_digest(digest)
    except DigestError as exc:
        raise ApiError(400, str(exc)) from None
    blob = Blob.objects.filter(digest=digest).first()
    if blob is None:
        raise ApiError(404, f"blob {digest} not found")
    if request.verifier is not None:
        allowed, reason = blob_readable_by_verifier(request.verifier, digest)
    else:
        allowed, reason = blob_readable(request.user, request.token, digest)
    if not allowed:
        raise ApiError(404 if reason == "not found" else 403, f"blob {digest} {reason}" if reason == "not found" else reason)
    store = get_blob_store()
    try:
        byte_range = parse_range(request.headers.get("Range"), blob.size)
    except RangeNotSatisfiable as exc:
        response = JsonResponse({"error": str(exc)}, status=416)
        response["Content-Range"] = f"bytes */{blob.size}"
        return response
    start, end = byte_range or (0, blob.size - 1)
    url = store.direct_url(digest, internal=_internal_storage_address(request)) if request.method == "GET" and blob.size > 0 else None
    if url:  # object storage: the client fetches (and resumes) from a pre-signed URL
        response = HttpResponse(status=302)
        response["Location"] = url
        response["Docker-Content-Digest"] = digest
        return response
    if settings.ASSAY_NGINX and request.method == "GET" and blob.size > 0:
        return _served_by_nginx(store, digest)
    if request.method == "HEAD" or blob.size == 0:
        response = HttpResponse(status=200)
    else:
        response = StreamingHttpResponse(_opened_body(store, digest, start, end), status=206 if byte_range else 200)
    response["Content-Type"] = "application/octet-stream"
    response["Content-Length"] = str(end - start + 1 if request.method != "HEAD" else blob.size)
    response["Accept-Ranges"] = "bytes"
    response["Docker-Content-Digest"] = digest
    response["ETag"] = f'"{digest}"'
    if byte_range:
        response["Content-Range"] = f"bytes {start}-{end}/{blob.size}"
    return response
