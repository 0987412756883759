"""Content digests: the one place that parses, formats and computes `sha256:<hex>` strings, and
the `blake3:<hex>` check digests.

A digest is validated before it touches a path (see DESIGN.md, CVE-2024-37032). SHA-256 names
every blob (content addressing, the registry's uploads, every signature). BLAKE3 is a second
digest of the same bytes that a release statement may declare for each file, next to its
SHA-256: the verifier checks it against the bytes and repeats it in its signed verdict, and a
client that has both signatures may check a download by BLAKE3 alone. It runs about 2.8x
faster than SHA-256 on one core here (1.0 GB/s against 2.8 GB/s), so a pull is no longer capped
by SHA-256 on CPUs whose SHA-256 is slower than the network and disk.
"""
from __future__ import annotations

import re
from pathlib import Path

from assay.core.errors import DigestError

TYPE_CHECKING = False  # typing and hashlib (OpenSSL) are imported where used: a BLAKE3-checked pull needs neither
if TYPE_CHECKING:
    from typing import BinaryIO

ALGORITHM = "sha256"
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
CHECK_DIGEST_RE = re.compile(r"^(sha256|blake3):[0-9a-f]{64}$")
BLAKE3_RE = re.compile(r"^blake3:[0-9a-f]{64}$")
CHUNK = 1024 * 1024


def parse_digest(value: str) -> str:
    """Return the 64-char hex of a `sha256:<hex>` string; raise DigestError if malformed."""
    if not isinstance(value, str) or not DIGEST_RE.match(value):
        raise DigestError(f"invalid digest {value!r}: expected 'sha256:' followed by 64 lowercase hex digits")
    return value[len("sha256:"):]


def format_digest(hexdigest: str) -> str:
    return f"sha256:{hexdigest}"


def algorithm_of(check_digest: str) -> str:
    """"sha256" or "blake3": the algorithm of a check digest (DigestError if malformed)."""
    if not isinstance(check_digest, str) or not CHECK_DIGEST_RE.match(check_digest):
        raise DigestError(f"invalid digest {str(check_digest)[:80]!r}: expected 'sha256:' or 'blake3:' followed by 64 lowercase hex digits")
    return check_digest.split(":", 1)[0]


def new_hash(algorithm: str = ALGORITHM):
    """A running hash of `algorithm` (update(bytes), hexdigest()); both release the GIL on large blocks."""
    if algorithm == "sha256":
        import hashlib

        return hashlib.sha256()
    if algorithm == "blake3":
        from blake3 import blake3

        return blake3(max_threads=1)  # one core: fifty pulls at once share the machine
    raise DigestError(f"unknown digest algorithm {algorithm!r}")


def digest_bytes(data: bytes) -> str:
    import hashlib

    return format_digest(hashlib.sha256(data).hexdigest())


def digest_stream(stream: BinaryIO, chunk_size: int = CHUNK, progress=None) -> str:
    """sha256 of the stream; `progress(n)` is told each block's size (for a progress bar)."""
    return _digests(stream, chunk_size, progress, (ALGORITHM,))[0]


def digest_file(path: str | Path, progress=None, algorithm: str = ALGORITHM) -> str:
    """`<algorithm>:<hex>` of the file (sha256 unless told blake3)."""
    with open(path, "rb") as f:
        return _digests(f, 4 * CHUNK, progress, (algorithm,))[0]


def file_digests(path: str | Path, progress=None) -> tuple[str, str]:
    """(`sha256:<hex>`, `blake3:<hex>`) of the file, in one read: what a publisher declares."""
    with open(path, "rb") as f:
        return _digests(f, 4 * CHUNK, progress, ("sha256", "blake3"))  # type: ignore[return-value]


def _digests(stream: BinaryIO, chunk_size: int, progress, algorithms: tuple[str, ...]) -> tuple[str, ...]:
    hashes = [new_hash(a) for a in algorithms]
    while block := stream.read(chunk_size):
        for h in hashes:
            h.update(block)
        if progress:
            progress(len(block))
    return tuple(f"{a}:{h.hexdigest()}" for a, h in zip(algorithms, hashes))


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
