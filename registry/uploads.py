"""What every blob store shares about uploads: the read size, upload ids, and the errors an
inconsistent chunk or finalize raises (registry/blobstore.py, registry/s3store.py)."""
from __future__ import annotations

import re

CHUNK = 1024 * 1024
UPLOAD_ID_RE = re.compile(r"^[0-9a-f]{32}$")


class UploadError(Exception):
    """An upload chunk or finalize request is inconsistent with the upload's state."""


class ChunkTooLong(UploadError):
    """A body sent without a length (chunked) ran past the bytes it was allowed; nothing was kept."""
