"""HTTP client for the registry's JSON API, with resumable chunked upload and Range download."""
from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

from assay.client import fastget
from assay.client.diskwrite import DownloadWriter
from assay.core import storage_address
from assay.core.digest import new_hash, parse_digest
from assay.core.errors import AssayError, VerificationError
from assay.core.names import parse_reference
from assay.core.numbers import whole_number

# hashlib (OpenSSL), json and typing are imported where used: a BLAKE3-checked pull needs none of
# them, and fifty pulls at once each pay every import (bench/load.py).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

    import httpx

    Progress = Callable[[int], None]  # called with the number of bytes just transferred

CHUNK_SIZE = 64 * 1024 * 1024  # one PATCH: the largest body the registry's nginx takes (registry/nginx.py)
READ_BLOCK = 1024 * 1024
# Idempotent requests are tried again when the connection fails (a keep-alive connection the
# server closed just as it was reused, a restart) or the server answers 502/503/504.
IDEMPOTENT = ("GET", "HEAD", "DELETE")
RETRY_STATUSES = (502, 503, 504)
RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0, 4.0)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _error_body(response: httpx.Response) -> tuple[dict | None, str]:
    """(JSON body or None, a one-line message) of an error reply."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"].strip():
        return body, " ".join(body["error"].split())
    text = " ".join(response.text.split())[:300]
    return (body if isinstance(body, dict) else None), text or response.reason_phrase or "no details"


class RegistryHTTPError(AssayError):
    def __init__(self, status: int, message: str, body: dict | None = None):
        super().__init__(message)
        self.status = status
        self.body = body or {}


class RegistryClient:
    """The registry's JSON API (on httpx) and its blob transfers. httpx is imported and its client
    built on the first API request: a download alone (fastget, on a plain socket) never needs it, and
    its import is most of a short process's start (about 80-250 ms of CPU, it pulls in its CLI's
    click and rich), which fifty pulls at once on a small machine pay fifty times."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 300.0):
        self.url = url.rstrip("/")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https"):
            raise AssayError(f"registry URL {url!r} must start with http:// or https://")
        try:
            parts.port  # noqa: B018 -- raises ValueError for a port that is not a number in range
        except ValueError as exc:
            raise AssayError(f"registry URL {url!r} is not a valid URL: {exc}") from None
        if not parts.hostname:
            raise AssayError(f"registry URL {url!r} is not a valid URL: it names no host")
        self.headers = {"User-Agent": "assay-cli/0.1"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        if storage_address.from_environment() == storage_address.INTERNAL:
            self.headers[storage_address.HEADER] = storage_address.INTERNAL  # pre-signed URLs on the store's internal address
        self.timeout = timeout
        self._http = None

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            import httpx

            try:
                self._http = httpx.Client(base_url=self.url, headers=self.headers, timeout=httpx.Timeout(self.timeout, connect=10.0))
            except (httpx.InvalidURL, ValueError) as exc:
                raise AssayError(f"registry URL {self.url!r} is not a valid URL: {exc}") from None
        return self._http

    @http.setter
    def http(self, client: httpx.Client) -> None:
        """Another transport (the tests' in-process registry)."""
        self._http = client

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- plumbing ------------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kw) -> httpx.Response:
        import httpx

        delays = RETRY_DELAYS if method in IDEMPOTENT else ()
        for attempt in range(len(delays) + 1):
            try:
                response = self.http.request(method, path, **kw)
            except httpx.TransportError as exc:
                if attempt < len(delays):
                    time.sleep(delays[attempt])
                    continue
                raise AssayError(f"cannot reach the registry at {self.url}: {_one_line(exc)}") from None
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                raise AssayError(f"cannot reach the registry at {self.url}: {_one_line(exc)}") from None
            if response.status_code in RETRY_STATUSES and attempt < len(delays):
                time.sleep(delays[attempt])
                continue
            break
        if response.status_code >= 400:
            body, message = _error_body(response)
            raise RegistryHTTPError(response.status_code, f"registry answered {response.status_code}: {message}", body)
        return response

    def _json(self, response: httpx.Response) -> dict:
        """The JSON object of a 2xx reply; an AssayError (not a traceback) for anything else."""
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            what = f"{response.request.method} {response.request.url.path}: HTTP {response.status_code}, {response.headers.get('content-type') or 'no content type'}"
            raise AssayError(f"{self.url} did not answer with JSON ({what}): is it an Assay registry?")
        return data

    def get_json(self, path: str, **params) -> dict:
        return self._json(self._request("GET", path, params=params or None))

    def post_json(self, path: str, data: dict) -> dict:
        return self._json(self._request("POST", path, json=data))

    # -- API -----------------------------------------------------------------------------------
    def whoami(self) -> dict:
        who = self.get_json("/api/v1/whoami")
        if not isinstance(who.get("username"), str):
            raise AssayError(f"{self.url} answered /api/v1/whoami without a user name: is it an Assay registry?")
        return who

    def trust(self) -> dict:
        info = self.get_json("/api/v1/trust")
        if not isinstance(info.get("verifier_keys"), list) or not isinstance(info.get("log"), dict):
            raise AssayError(f"{self.url} answered /api/v1/trust without verifier and log keys: is it an Assay registry?")
        return info

    def resolve(self, reference: str, *, any_status: bool = False) -> dict:
        parse_reference(reference)  # "ns/m:t?x" would ask for ns/m:t, "a b" get the server's HTML 404
        return self.get_json(f"/api/v1/releases/{reference}", **({"any": "1"} if any_status else {}))

    def status(self, reference: str) -> dict:
        parse_reference(reference)
        return self.get_json(f"/api/v1/releases/{reference}/status")

    def create_release(self, envelope: dict, model_card: str = "", model_signing: dict | None = None) -> dict:
        body = {"envelope": envelope, "model_card": model_card}
        if model_signing is not None:
            body["model_signing"] = model_signing
        return self.post_json("/api/v1/releases", body)

    def checkpoint(self) -> str:
        return self._request("GET", "/api/v1/log/checkpoint").text

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        return [bytes.fromhex(h) for h in self.get_json("/api/v1/log/proof/consistency", old=old, new=new)["proof"]]

    def key_events(self, start: int, end: int) -> dict:
        """The signed key-event index of [start, end) and its entries with inclusion proofs (assay/client/catchup.py)."""
        return self.get_json("/api/v1/log/key-events", start=start, end=end)

    def log_entries(self, start: int, end: int) -> list[dict]:
        return self.get_json("/api/v1/log/entries", start=start, end=end)["entries"]

    def blob_exists(self, digest: str) -> bool:
        try:
            self._request("HEAD", f"/api/v1/blobs/{digest}")
            return True
        except RegistryHTTPError as exc:
            if exc.status in (403, 404):
                return False
            raise

    # -- upload --------------------------------------------------------------------------------
    def upload_blob(self, path: Path, digest: str, progress: Progress | None = None, chunk_size: int = CHUNK_SIZE) -> dict:
        """Upload a file in chunks. The upload id is remembered per (registry, digest), so a re-run
        after a cut asks the server how much it has and continues from there."""
        import hashlib
        import json

        from assay.client.config import cache_dir, write_json_atomic

        parse_digest(digest)
        size = path.stat().st_size
        state_path = cache_dir() / "uploads" / f"{hashlib.sha256(self.url.encode()).hexdigest()[:16]}-{digest[7:]}.json"
        upload_id, offset, direct = None, 0, None
        if state_path.exists():
            try:
                state = json.loads(state_path.read_text())
                upload_id, direct = state["upload_id"], state.get("direct")
                offset = self.get_json(f"/api/v1/uploads/{upload_id}")["offset"]
            except (AssayError, ValueError, KeyError, TypeError):
                upload_id, offset, direct = None, 0, None
        if upload_id is None:
            started = self.post_json("/api/v1/uploads", {})
            upload_id, direct = started["upload_id"], started.get("direct")
            write_json_atomic(state_path, {"upload_id": upload_id, "registry": self.url, "digest": digest, "direct": direct})
        if progress and offset:
            progress(offset)
        with open(path, "rb") as f:
            f.seek(offset)
            while offset < size:
                try:
                    if isinstance(direct, dict) and isinstance(direct.get("part_size"), int) and direct["part_size"] > 0:
                        offset = self._send_part_direct(upload_id, f, offset, size, direct["part_size"], progress)
                    else:
                        offset = self._send_chunk(upload_id, f, offset, size, chunk_size, progress)
                except RegistryHTTPError as exc:
                    if exc.status == 416 and isinstance(exc.body.get("offset"), int):
                        offset = exc.body["offset"]  # the server has a different amount: follow it
                        f.seek(offset)
                        continue
                    raise
                if not isinstance(offset, int) or not 0 <= offset <= size:
                    raise AssayError(f"the registry answered the upload with a bad offset {offset!r}")
                f.seek(offset)
        result = self._json(self._request("PUT", f"/api/v1/uploads/{upload_id}", params={"digest": digest}))
        state_path.unlink(missing_ok=True)
        return result

    def downloads_at_once(self) -> int | None:
        """How many blobs together.run_together may download at once through this client: its
        default over a real connection; one at a time through another transport (an in-process
        registry, a WSGI app called on the caller's thread, whose database connection is that
        thread's)."""
        return None if self._on_a_socket() else 1

    def _download_headers(self) -> dict:
        return dict(self._http.headers) if self._http is not None else self.headers

    def _on_a_socket(self) -> bool:
        """Whether this client talks to the registry over a real connection (httpx's own transport)."""
        if self._http is None:
            return True  # the default client, built on first use, talks over a socket
        import httpx

        return isinstance(getattr(self._http, "_transport", None), httpx.HTTPTransport)

    def _open_download(self, digest: str, headers: dict):
        """The blob's GET response: on a plain socket (assay/client/fastget.py; socket reads straight into the buffer,
        redirects to pre-signed URLs without our credentials) on a real connection; through this
        client's httpx transport when it has another one (an in-process registry)."""
        if self._on_a_socket():
            return fastget.get(f"{self.url}/api/v1/blobs/{digest}", headers, timeout=self.timeout)
        return fastget.HttpxResponse(self.http, f"/api/v1/blobs/{digest}", headers)

    def _send_chunk(self, upload_id: str, f, offset: int, size: int, chunk_size: int, progress) -> int:
        """One chunk through the registry (PATCH with Content-Range); returns the new offset."""
        n = min(chunk_size, size - offset)
        response = self._request(
            "PATCH", f"/api/v1/uploads/{upload_id}", content=_ChunkReader(f, n, progress),
            headers={"Content-Range": f"bytes {offset}-{offset + n - 1}/{size}", "Content-Length": str(n),
                     "Content-Type": "application/octet-stream"},
        )
        return self._json(response).get("offset")

    def _send_part_direct(self, upload_id: str, f, offset: int, size: int, part_size: int, progress) -> int:
        """One part straight to the registry's object storage, at the pre-signed URL the registry
        gives for it (no credentials of ours go there); retried when the connection drops."""
        import httpx

        n = min(part_size, size - offset)
        url = self.post_json(f"/api/v1/uploads/{upload_id}/parts", {"offset": offset, "size": n, "final": offset + n == size})["url"]
        for attempt in range(len(RETRY_DELAYS) + 1):
            f.seek(offset)
            try:
                response = httpx.put(url, content=_ChunkReader(f, n, progress), headers={"Content-Length": str(n)},
                                     timeout=httpx.Timeout(300.0, connect=10.0))
            except httpx.TransportError as exc:
                if attempt == len(RETRY_DELAYS):
                    raise AssayError(f"cannot reach the registry's object storage at {httpx.URL(url).netloc.decode()}: {_one_line(exc)}; "
                                     f"{storage_address.UNREACHABLE_HINT}; run the same command again to resume") from None
                time.sleep(RETRY_DELAYS[attempt])
                continue
            if response.status_code >= 400:
                raise AssayError(f"the registry's object storage refused part at byte {offset}: HTTP {response.status_code} "
                                 f"{response.text[:200]}")
            return offset + n
        raise AssertionError("unreachable")

    # -- download ------------------------------------------------------------------------------
    def download_blob(self, digest: str, partial: Path, progress: Progress | None = None, *, expected_size: int | None = None,
                      algorithm: str = "sha256") -> str:
        """Download the blob `digest` into `partial`, resuming from its current length with an HTTP
        Range request; hash while streaming; return the `algorithm` digest of the whole file (the
        caller compares: sha256, or blake3 where the signed statements vouch for one). With
        `expected_size` (the size the verified bundle gives; the digest then decides), no byte past
        it is written: a server sending more is refused and the partial file discarded. A dropped connection is resumed from where it
        stopped, a few times with backoff, before the command gives up (and a rerun resumes)."""
        shown = {"reported": 0, "position": 0}

        def once_per_byte(n: int) -> None:  # a resumed attempt reports the bytes it already has again
            shown["position"] += n
            if progress and shown["position"] > shown["reported"]:
                progress(shown["position"] - shown["reported"])
                shown["reported"] = shown["position"]

        for attempt in range(len(RETRY_DELAYS) + 1):
            shown["position"] = 0
            try:
                return self._download_once(digest, partial, once_per_byte, expected_size, algorithm)
            except _Dropped as dropped:
                if attempt == len(RETRY_DELAYS):
                    raise AssayError(f"download interrupted ({dropped}); run the same command again to resume") from None
                time.sleep(RETRY_DELAYS[attempt])
        raise AssertionError("unreachable")

    def _download_once(self, digest: str, partial: Path, progress: Progress | None, expected_size: int | None, algorithm: str) -> str:
        parse_digest(digest)
        partial.parent.mkdir(parents=True, exist_ok=True)
        h = new_hash(algorithm)
        have = 0
        if expected_size is not None and partial.exists() and partial.stat().st_size > expected_size:
            partial.unlink()  # longer than the signed file: not a prefix of it
        if partial.exists():
            with open(partial, "rb") as f:
                while block := f.read(READ_BLOCK):
                    h.update(block)
                    have += len(block)
            if progress and have:
                progress(have)
        headers = {**{k: v for k, v in self._download_headers().items() if k.lower() in ("authorization", "user-agent", storage_address.HEADER.lower())},
                   **({"Range": f"bytes={have}-"} if have else {})}
        try:
            with self._open_download(digest, headers) as response:
                if response.status == 416 and have:
                    return f"{algorithm}:{h.hexdigest()}"  # nothing left to fetch
                if response.status >= 400:
                    body, message = _error_from_bytes(response.status, response.headers, response.read_error_body())
                    raise RegistryHTTPError(response.status, f"registry answered {response.status}: {message}", body)
                if have and response.status != 206:
                    h, have = new_hash(algorithm), 0  # server ignored the range: start over
                elif have and _range_start(response.headers) != have:
                    partial.unlink(missing_ok=True)  # another range than the one asked: start over, from byte 0
                    raise _Dropped(f"the server answered a range starting at byte {_range_start(response.headers)}, not {have}")
                started_at = have
                # Receive a block and hash it while it is in the CPU's cache; the writer takes it
                # to the disk (diskwrite.DownloadWriter: whole blocks straight to the disk from a
                # writing thread where the file system allows, else buffered with write-behind).
                with open(partial, "ab" if have else "wb", buffering=0) as out, DownloadWriter(out, have) as disk:
                    while n := response.readinto(disk.space()):
                        if expected_size is not None and have + n > expected_size:
                            raise _Oversize()
                        have += n
                        h.update(disk.received(n))
                        if progress:
                            progress(n)
                    disk.finish()
                announced = whole_number(response.headers.get("content-length", ""))
                if announced is not None and have - started_at != announced:
                    raise _Dropped(f"the connection closed after {have - started_at} of {announced} bytes")
                if announced is None and expected_size is not None and have < expected_size:
                    # a body without a length (read to the close) that stopped short: a cut connection
                    # looks the same as the end, so resume rather than call the bytes tampered
                    raise _Dropped(f"the connection closed after {have} of {expected_size} bytes")
        except _Oversize:
            partial.unlink(missing_ok=True)
            raise VerificationError(f"the registry sent more than the {expected_size} bytes its release bundle gives for {digest}; "
                                    "the download was stopped and discarded") from None
        except fastget.TransportFailure as exc:
            raise _Dropped(str(exc)) from None
        return f"{algorithm}:{h.hexdigest()}"


def _error_from_bytes(status: int, headers: dict, data: bytes) -> tuple[dict | None, str]:
    """(JSON body, one-line message) of an error answer read with fastget."""
    import json

    try:
        body = json.loads(data) if "json" in headers.get("content-type", "") else None
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body, body["error"]
    text = data.decode("utf-8", "replace").strip().replace("\n", " ")[:200]
    return None, text or f"HTTP {status}"


def _range_start(headers: dict) -> int | None:
    """The first byte of a 206 answer's Content-Range ("bytes 100-199/1000"); None if unreadable."""
    unit, _, spec = headers.get("content-range", "").strip().partition(" ")
    start = spec.split("-", 1)[0].strip()
    return whole_number(start) if unit.lower() == "bytes" else None


class _Dropped(Exception):
    """The connection failed during a download (the partial file keeps what came)."""


class _Oversize(Exception):
    """The server sent more bytes than the signed size."""


class _ChunkReader:
    """Iterates over exactly n bytes of an open file, reporting progress."""

    def __init__(self, f, n: int, progress: Progress | None):
        self.f, self.remaining, self.progress = f, n, progress

    def __iter__(self):
        while self.remaining > 0:
            block = self.f.read(min(READ_BLOCK, self.remaining))
            if not block:
                raise AssayError("the file changed while it was being uploaded")
            self.remaining -= len(block)
            if self.progress:
                self.progress(len(block))
            yield block
