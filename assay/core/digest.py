"""Content digests: the one place that parses, formats and computes `sha256:<hex>` strings.

A digest is validated before it touches a path (see DESIGN.md, CVE-2024-37032).
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import BinaryIO

from assay.core.errors import DigestError

ALGORITHM = "sha256"
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
CHUNK = 1024 * 1024


def parse_digest(value: str) -> str:
    """Return the 64-char hex of a `sha256:<hex>` string; raise DigestError if malformed."""
    if not isinstance(value, str) or not DIGEST_RE.match(value):
        raise DigestError(f"invalid digest {value!r}: expected 'sha256:' followed by 64 lowercase hex digits")
    return value[len("sha256:"):]


def format_digest(hexdigest: str) -> str:
    return f"sha256:{hexdigest}"


def digest_bytes(data: bytes) -> str:
    return format_digest(hashlib.sha256(data).hexdigest())


def digest_stream(stream: BinaryIO, chunk_size: int = CHUNK, progress=None) -> str:
    """sha256 of the stream; `progress(n)` is told each block's size (for a progress bar)."""
    h = hashlib.sha256()
    while True:
        block = stream.read(chunk_size)
        if not block:
            break
        h.update(block)
        if progress:
            progress(len(block))
    return format_digest(h.hexdigest())


def digest_file(path: str | Path, progress=None) -> str:
    with open(path, "rb") as f:
        return digest_stream(f, progress=progress)


def files_identical(a: str | Path, b: str | Path, chunk_size: int = 4 * CHUNK) -> bool:
    """Whether two files hold the same bytes (sizes first, then block by block; about twice as
    fast as hashing one of them, for a caller that already knows the other's digest)."""
    a, b = Path(a), Path(b)
    if a.stat().st_size != b.stat().st_size:
        return False
    buf_a, buf_b = bytearray(chunk_size), bytearray(chunk_size)
    with open(a, "rb", buffering=0) as fa, open(b, "rb", buffering=0) as fb:
        while True:
            n = _fill(fa, buf_a)
            if n != _fill(fb, buf_b):
                return False
            if not n:
                return True
            if n < chunk_size:  # the last block: the buffers' tails hold older data
                return buf_a[:n] == buf_b[:n]
            if buf_a != buf_b:  # a memcmp
                return False


def _fill(f, buf: bytearray) -> int:
    """Read into `buf` until it is full or the file ends; the number of bytes read."""
    view, got = memoryview(buf), 0
    while got < len(buf):
        n = f.readinto(view[got:])
        if not n:
            break
        got += n
    return got
