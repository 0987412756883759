"""What every blob store shares about uploads: the read size, upload ids, and the errors an
inconsistent chunk or finalize raises (registry/blobstore.py, registry/s3store.py)."""
from __future__ import annotations

import errno
import re

CHUNK = 1024 * 1024
UPLOAD_ID_RE = re.compile(r"^[0-9a-f]{32}$")


class UploadError(Exception):
    """An upload chunk or finalize request is inconsistent with the upload's state."""


class ChunkTooLong(UploadError):
    """A body sent without a length (chunked) ran past the bytes it was allowed; nothing was kept."""


class StorageFailure(Exception):
    """The store cannot write: its disk is full (`full`), read-only, or not the registry's to
    write. What the request would have written was not kept."""

    def __init__(self, message: str, *, full: bool):
        super().__init__(message)
        self.full = full


def storage_failure(exc: OSError, what: str) -> StorageFailure:
    """A StorageFailure for `exc`, saying what became of the request (`what`)."""
    full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
    state = "is full" if full else "cannot be written"
    return StorageFailure(f"the registry's blob storage {state} ({exc.strerror or exc}): {what}; "
                          f"try again {'when it has room' if full else 'later'}", full=full)
