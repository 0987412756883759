"""A bulk HTTP GET for blob downloads, on the standard library's http.client: it reads into a
large buffer straight from the socket (several MB per call), where httpx hands out 64 KiB pieces
through a pure-Python parser and caps a download near 350 MB/s here. Redirects are followed (a
registry on object storage answers with a pre-signed URL); the Authorization header is dropped
when a redirect leaves the registry's origin. Everything else (JSON requests) stays on httpx."""
from __future__ import annotations

import http.client
from urllib.parse import urljoin, urlsplit

from assay.core import storage_address

MAX_REDIRECTS = 5
ERROR_BODY_LIMIT = 64 * 1024


class TransportFailure(Exception):
    """The connection failed or broke (the caller resumes or reports it)."""


class Response:
    """A GET's status, headers (lower-case names) and body, read straight from the socket. (A
    plain class: dataclasses costs a short process about 9 ms of imports, ssl another 4.)"""

    def __init__(self, status: int, headers: dict, response: http.client.HTTPResponse, connection: http.client.HTTPConnection):
        self.status, self.headers = status, headers
        self._response, self._connection = response, connection

    def readinto(self, buffer) -> int:
        try:
            return self._response.readinto(buffer)
        except (OSError, http.client.HTTPException) as exc:
            raise TransportFailure(f"{type(exc).__name__}: {exc}") from None

    def read_error_body(self) -> bytes:
        try:
            return self._response.read(ERROR_BODY_LIMIT)
        except (OSError, http.client.HTTPException):
            return b""

    def close(self) -> None:
        self._connection.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def get(url: str, headers: dict[str, str], timeout: float) -> Response:
    """GET `url`, following redirects; the caller reads the body and closes the response."""
    first = _origin(url)
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        if parts.scheme == "https":
            import ssl

            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                parts.hostname, parts.port, timeout=timeout, context=ssl.create_default_context())
        elif parts.scheme == "http":
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        else:
            raise TransportFailure(f"cannot download from {url!r}: only http and https")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        send = {k: v for k, v in headers.items() if _origin(url) == first or k.lower() != "authorization"}
        try:
            conn.request("GET", path, headers=send)
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            if _origin(url) != first:  # the registry's object storage, at the address its redirect named
                raise TransportFailure(
                    f"cannot reach the registry's object storage at {parts.netloc}, where it sent the download: "
                    f"{type(exc).__name__}: {exc}; {storage_address.UNREACHABLE_HINT}") from None
            raise TransportFailure(f"{type(exc).__name__}: {exc}") from None
        location = response.getheader("Location")
        if response.status in (301, 302, 303, 307, 308) and location:
            conn.close()
            url = urljoin(url, location)
            continue
        return Response(response.status, {k.lower(): v for k, v in response.getheaders()}, response, conn)
    raise TransportFailure(f"more than {MAX_REDIRECTS} redirects")


class HttpxResponse:
    """The same reading interface over an httpx client's streamed response, for a client whose
    transport is not a socket (the tests' in-process registry)."""

    def __init__(self, client, path: str, headers: dict):
        import httpx

        self._httpx = httpx
        try:
            self._stream = client.stream("GET", path, headers=headers, follow_redirects=True)
            self._response = self._stream.__enter__()
        except httpx.TransportError as exc:
            raise TransportFailure(f"{type(exc).__name__}: {exc}") from None
        self.status = self._response.status_code
        self.headers = {k.lower(): v for k, v in self._response.headers.items()}
        self._chunks = self._response.iter_bytes(1024 * 1024)
        self._pending = b""

    def readinto(self, buffer) -> int:
        try:
            while not self._pending:
                self._pending = next(self._chunks)
        except StopIteration:
            return 0
        except self._httpx.TransportError as exc:
            raise TransportFailure(f"{type(exc).__name__}: {exc}") from None
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def read_error_body(self) -> bytes:
        return self._response.read()[:ERROR_BODY_LIMIT]

    def close(self) -> None:
        self._stream.__exit__(None, None, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
