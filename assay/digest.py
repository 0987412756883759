"""Content digests: the one place that parses, formats and computes `sha256:<hex>` strings.

A digest is validated before it touches a path (see DESIGN.md, CVE-2024-37032).
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import BinaryIO

from .errors import DigestError

ALGORITHM = "sha256"
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
CHUNK = 1024 * 1024


def parse_digest(value: str) -> str:
    """Return the 64-char hex of a `sha256:<hex>` string; raise DigestError if malformed."""
    if not isinstance(value, str) or not DIGEST_RE.match(value):
        raise DigestError(f"invalid digest {value!r}: expected 'sha256:' followed by 64 lowercase hex digits")
    return value[len("sha256:"):]


def is_digest(value: object) -> bool:
    return isinstance(value, str) and bool(DIGEST_RE.match(value))


def format_digest(hexdigest: str) -> str:
    return f"sha256:{hexdigest}"


def digest_bytes(data: bytes) -> str:
    return format_digest(hashlib.sha256(data).hexdigest())


def digest_stream(stream: BinaryIO, chunk_size: int = CHUNK) -> str:
    h = hashlib.sha256()
    while True:
        block = stream.read(chunk_size)
        if not block:
            break
        h.update(block)
    return format_digest(h.hexdigest())


def digest_file(path: str | Path) -> str:
    with open(path, "rb") as f:
        return digest_stream(f)
