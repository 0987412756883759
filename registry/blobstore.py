"""Content-addressed blob storage.

Blobs live at `<root>/sha256/<2 hex>/<64 hex>`. Uploads go to `<root>/uploads/<id>`, are appended
chunk by chunk in constant memory, hashed when finalized, and renamed into place only when the
digest matches. `BlobStore` is the interface; `LocalBlobStore` is the default (a local folder);
`registry.s3store.S3BlobStore` (ASSAY_STORAGE=s3) implements the same methods on S3-compatible
object storage, and serves downloads from pre-signed URLs (`direct_url`).
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import uuid
from pathlib import Path
from typing import BinaryIO, Iterator, Protocol

from assay.core.digest import format_digest, parse_digest
from assay.core.durable import fsync_directory
from assay.core.errors import DigestError

from .uploads import CHUNK, UPLOAD_ID_RE, ChunkTooLong, StorageFailure, UploadError, storage_failure

__all__ = ["CHUNK", "UPLOAD_ID_RE", "ChunkTooLong", "StorageFailure", "UploadError", "BlobStore", "LocalBlobStore", "get_blob_store"]


class BlobStore(Protocol):
    def exists(self, digest: str) -> bool: ...
    def size(self, digest: str) -> int: ...
    def open(self, digest: str) -> BinaryIO: ...
    def iter_range(self, digest: str, start: int, end: int) -> Iterator[bytes]: ...
    def delete(self, digest: str) -> None: ...
    def direct_url(self, digest: str, *, internal: bool = False) -> str | None: ...
    def new_upload(self) -> str: ...
    def upload_offset(self, upload_id: str) -> int: ...
    def append(self, upload_id: str, offset: int, stream: BinaryIO, length: int | None, limit: int | None = None) -> int: ...
    def finalize(self, upload_id: str, expected_digest: str) -> int: ...
    def abort(self, upload_id: str) -> None: ...


class LocalBlobStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        (self.root / "sha256").mkdir(parents=True, exist_ok=True)
        (self.root / "uploads").mkdir(parents=True, exist_ok=True)

    # -- blobs ---------------------------------------------------------------------------------
    def local_path(self, digest: str) -> Path:
        hexd = parse_digest(digest)  # validated before it touches a path
        return self.root / "sha256" / hexd[:2] / hexd

    def exists(self, digest: str) -> bool:
        return self.local_path(digest).is_file()

    def size(self, digest: str) -> int:
        return self.local_path(digest).stat().st_size

    def open(self, digest: str) -> BinaryIO:
        return open(self.local_path(digest), "rb")

    def delete(self, digest: str) -> None:
        self.local_path(digest).unlink(missing_ok=True)

    def direct_url(self, digest: str, *, internal: bool = False) -> None:
        """Local blobs have no URL of their own: Django streams them, or nginx (X-Accel-Redirect)."""
        return None

    direct_part_size = None  # uploads go through the registry (S3BlobStore takes parts directly)

    # -- uploads -------------------------------------------------------------------------------
    def _upload_path(self, upload_id: str) -> Path:
        if not UPLOAD_ID_RE.match(upload_id or ""):
            raise UploadError(f"invalid upload id {upload_id!r}")
        return self.root / "uploads" / upload_id

    def new_upload(self) -> str:
        upload_id = uuid.uuid4().hex
        try:
            self._upload_path(upload_id).touch(exist_ok=False)
        except OSError as exc:
            raise storage_failure(exc, "no upload was started") from None
        return upload_id

    def upload_offset(self, upload_id: str) -> int:
        path = self._upload_path(upload_id)
        if not path.exists():
            raise UploadError(f"upload {upload_id} does not exist")
        return path.stat().st_size

    def append(self, upload_id: str, offset: int, stream: BinaryIO, length: int | None, limit: int | None = None) -> int:
        """Append `length` bytes (or, with length None, until EOF) from stream at `offset`; return
        the new offset.

        The offset must equal the bytes already received, so a resumed client continues exactly
        where the server stopped, and a duplicated or out-of-order chunk is refused. A body read
        to EOF that turns out longer than `limit` bytes is refused with ChunkTooLong and none of
        it is kept.
        """
        with self._locked(upload_id, os.O_WRONLY | os.O_APPEND) as fd:
            current = os.fstat(fd).st_size
            if offset != current:
                raise UploadError(f"chunk starts at byte {offset} but the upload has {current} bytes; resume from {current}")
            remaining = length
            received = 0
            while remaining is None or remaining > 0:
                want = CHUNK if remaining is None else min(CHUNK, remaining)
                if remaining is None and limit is not None:
                    want = min(want, limit - received + 1)  # one byte past the limit tells "too long"
                block = stream.read(want)
                if not block:
                    break
                received += len(block)
                if remaining is None and limit is not None and received > limit:
                    os.ftruncate(fd, current)
                    raise ChunkTooLong(f"the body is longer than {limit} bytes; none of it was kept")
                with _cut_back_on_failure(fd, current):
                    _write_all(fd, block)
                if remaining is not None:
                    remaining -= len(block)
            with _cut_back_on_failure(fd, current):
                os.fsync(fd)  # the offset this answers survives a crash: a resume continues from it
            new_offset = os.fstat(fd).st_size
        if remaining:
            raise UploadError(f"chunk ended early: {remaining} bytes missing; resume from {new_offset}")
        return new_offset

    @contextlib.contextmanager
    def _locked(self, upload_id: str, flags: int) -> Iterator[int]:
        """The upload file, open and locked: one request at a time appends to or finalizes an
        upload. Without it two PATCHes of the same chunk both pass the offset check and both
        append it (the upload then holds it twice), and a PATCH still receiving while a finalize
        moves the file into place appends to the stored blob. A busy upload is an UploadError
        (416 with the offset: the client resumes from there)."""
        path = self._upload_path(upload_id)
        try:
            fd = os.open(path, flags)
        except FileNotFoundError:
            raise UploadError(f"upload {upload_id} does not exist") from None
        except OSError as exc:
            raise storage_failure(exc, "none of this chunk was kept") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UploadError(f"upload {upload_id} is busy: another request is appending to or finalizing it; "
                                  "ask for its offset and resume from there") from None
            try:
                still_there = os.path.samestat(os.fstat(fd), os.stat(path))
            except FileNotFoundError:
                still_there = False
            if not still_there:  # finalized (moved into place) or aborted since it was opened
                raise UploadError(f"upload {upload_id} does not exist")
            yield fd
        finally:
            os.close(fd)

    def finalize(self, upload_id: str, expected_digest: str) -> int:
        """Hash the uploaded bytes; move them into place only if they match. Return the size."""
        parse_digest(expected_digest)
        path = self._upload_path(upload_id)
        with self._locked(upload_id, os.O_RDONLY) as fd:
            h = hashlib.sha256()
            size = 0
            while block := os.read(fd, CHUNK):
                h.update(block)
                size += len(block)
            actual = format_digest(h.hexdigest())
            if actual != expected_digest:
                path.unlink(missing_ok=True)
                raise DigestError(f"digest mismatch: the upload's bytes hash to {actual}, not {expected_digest}; upload discarded")
            final = self.local_path(actual)
            try:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, final)  # under the lock: no append is under way on it, none can start
            except OSError as exc:
                raise storage_failure(exc, "the upload is kept, no blob was stored") from None
        fsync_directory(final.parent)  # the name on disk before the caller records the blob (its bytes were fsynced per chunk)
        return size

    def abort(self, upload_id: str) -> None:
        self._upload_path(upload_id).unlink(missing_ok=True)

    def iter_range(self, digest: str, start: int, end: int) -> Iterator[bytes]:
        """Yield bytes [start, end] (inclusive) of a blob."""
        with self.open(digest) as f:
            f.seek(start)
            remaining = end - start + 1
            while remaining > 0:
                block = f.read(min(CHUNK, remaining))
                if not block:
                    break
                remaining -= len(block)
                yield block


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:  # a write may take less than all of it
        view = view[os.write(fd, view):]


@contextlib.contextmanager
def _cut_back_on_failure(fd: int, keep: int) -> Iterator[None]:
    """A write or fsync of an upload that fails (disk full, I/O error) cuts the upload back to its
    first `keep` bytes, the offset before this chunk (no half-written, unsynced bytes are answered
    as received later), and raises StorageFailure. A body that stops coming is not this: what
    arrived is kept and the client resumes from it."""
    try:
        yield
    except OSError as exc:
        try:
            os.ftruncate(fd, keep)
        except OSError:
            pass
        raise storage_failure(exc, "none of this chunk was kept") from None


def get_blob_store():
    """The configured store: the local folder (default), or S3-compatible object storage
    (ASSAY_STORAGE=s3, registry/s3store.py)."""
    from django.conf import settings

    if settings.ASSAY_STORAGE == "s3":
        return _s3_store(settings.ASSAY_S3_ENDPOINT, settings.ASSAY_S3_BUCKET, settings.ASSAY_S3_ACCESS_KEY,
                         settings.ASSAY_S3_SECRET_KEY, settings.ASSAY_S3_REGION, settings.ASSAY_S3_PUBLIC_ENDPOINT)
    return LocalBlobStore(settings.ASSAY_BLOB_DIR)


@functools.lru_cache(maxsize=8)
def _s3_store(endpoint, bucket, access_key, secret_key, region, public_endpoint):
    """The store, once per process, with its bucket made if it is missing (a fresh SeaweedFS in
    docker-compose has none). A store not reachable yet raises, and is tried again next time."""
    from .s3store import S3BlobStore, ensure_bucket

    store = S3BlobStore(endpoint=endpoint, bucket=bucket, access_key=access_key, secret_key=secret_key, region=region,
                        public_endpoint=public_endpoint or None)
    ensure_bucket(store)
    return store
