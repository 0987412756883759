"""A bulk HTTP GET for blob downloads, on a plain socket: a small HTTP/1.1 reader (status line,
headers, a body by Content-Length, chunked or to the close) that receives straight into the
caller's buffer. httpx hands out 64 KiB pieces through a pure-Python parser and caps a download
near 350 MB/s here; http.client costs each short `assay pull` process 15-30 ms of imports (email,
its parser) and a buffered reader per call, which fifty pulls at once on two cores pay for in
aggregate throughput (bench/load.py). Redirects are followed (a registry on object storage answers
with a pre-signed URL); the Authorization header is dropped when a redirect leaves the registry's
origin. Everything else (JSON requests) stays on httpx."""
from __future__ import annotations

import socket
from urllib.parse import urljoin, urlsplit

from assay.core import storage_address
from assay.core.numbers import whole_number

MAX_REDIRECTS = 5
MAX_INTERIM = 8  # 1xx answers before the final one
ERROR_BODY_LIMIT = 64 * 1024
MAX_HEAD = 64 * 1024  # status line and headers together
MAX_LINE = 8 * 1024  # one chunk-size line
RECV = 256 * 1024


class TransportFailure(Exception):
    """The connection failed or broke, or the answer is not HTTP/1.x (the caller resumes or reports it).
    `elsewhere`: the host and port a redirect sent the download to, when it failed there."""

    elsewhere: str | None = None


class Response:
    """A GET's status, headers (lower-case names; repeated ones joined by ", ") and body, read
    straight from the socket into the caller's buffer. (A plain class: dataclasses costs a short
    process about 9 ms of imports, ssl another 4: ssl is imported for https only.)"""

    def __init__(self, status: int, headers: dict, sock: socket.socket, pending: bytes, elsewhere: str | None = None):
        self.status, self.headers = status, headers
        self.elsewhere = elsewhere  # the host and port a redirect left the registry for (its object storage), or None
        self._sock, self._pending = sock, pending
        encoding = headers.get("transfer-encoding", "").lower()
        length = headers.get("content-length", "")
        self._chunked = "chunked" in encoding
        self._remaining: int | None = None  # body bytes left (Content-Length), None: to the close
        if not self._chunked:
            self._remaining = whole_number(length)
        self._chunk_left = 0  # chunked: bytes left of the current chunk
        self._done = False

    def _recv_into(self, buffer) -> int:
        """Bytes already received first, then the socket; 0 when the peer closed."""
        if self._pending:
            n, self._pending = _fill(buffer, self._pending)
            return n
        try:
            return self._sock.recv_into(buffer)
        except OSError as exc:
            raise TransportFailure(f"{type(exc).__name__}: {exc}") from None

    def _line(self) -> bytes:
        """One CRLF-terminated line of a chunked body (the size line, the CRLF after a chunk, trailers)."""
        while b"\n" not in self._pending:
            if len(self._pending) > MAX_LINE:
                raise TransportFailure("a chunk header longer than 8 KiB")
            more = _recv(self._sock)
            if not more:
                raise TransportFailure("the connection closed inside a chunked body")
            self._pending += more
        line, _, self._pending = self._pending.partition(b"\n")
        return line.rstrip(b"\r")

    def readinto(self, buffer) -> int:
        """Up to len(buffer) body bytes into `buffer`; 0 at the end of the body. A connection that
        closes early also answers 0 (the caller compares what it got with Content-Length)."""
        if self._done or not len(buffer):
            return 0
        if self._chunked:
            return self._readinto_chunked(buffer)
        if self._remaining is not None:
            if not self._remaining:
                self._done = True
                return 0
            buffer = buffer[:self._remaining]
        n = self._recv_into(buffer)
        if not n:
            self._done = True
        elif self._remaining is not None:
            self._remaining -= n
        return n

    def _readinto_chunked(self, buffer) -> int:
        if not self._chunk_left:
            size = self._line().split(b";", 1)[0].strip()
            try:
                self._chunk_left = int(size, 16)
            except ValueError:
                raise TransportFailure(f"a malformed chunk size {size[:40]!r}") from None
            if not self._chunk_left:  # the last chunk: trailers, then an empty line
                while self._line():
                    pass
                self._done = True
                return 0
        n = self._recv_into(buffer[:self._chunk_left])
        if not n:  # a cut connection, not the end: the body ends only with its last (empty) chunk
            raise TransportFailure("the connection closed inside a chunked body")
        self._chunk_left -= n
        if not self._chunk_left and self._line():
            raise TransportFailure("a chunk not followed by CRLF")
        return n

    def read_error_body(self) -> bytes:
        out = bytearray()
        buffer = memoryview(bytearray(16 * 1024))
        try:
            while len(out) < ERROR_BODY_LIMIT and (n := self.readinto(buffer)):
                out += buffer[:n]
        except TransportFailure:
            pass
        return bytes(out[:ERROR_BODY_LIMIT])

    def close(self) -> None:
        try:
            self._sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _fill(buffer, pending: bytes) -> tuple[int, bytes]:
    """Copy what fits of `pending` into `buffer`: (bytes copied, what is left)."""
    n = min(len(buffer), len(pending))
    buffer[:n] = pending[:n]
    return n, pending[n:]


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(RECV)
    except OSError as exc:
        raise TransportFailure(f"{type(exc).__name__}: {exc}") from None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def _connect(parts, timeout: float) -> socket.socket:
    port = parts.port or (443 if parts.scheme == "https" else 80)
    sock = socket.create_connection((parts.hostname, port), timeout=timeout)
    if parts.scheme == "https":
        import ssl

        try:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=parts.hostname)
        except BaseException:
            sock.close()
            raise
    return sock


def _request(parts, headers: dict[str, str]) -> bytes:
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.hostname if ":" not in (parts.hostname or "") else f"[{parts.hostname}]"
    if parts.port:
        host += f":{parts.port}"
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Accept-Encoding: identity", "Connection: close"]
    for name, value in headers.items():
        if any(c in f"{name}{value}" for c in "\r\n\0"):
            raise TransportFailure(f"header {name!r} holds a line break")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _read_head(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body bytes received with the head) of the final HTTP/1.x response,
    past any interim 1xx answers (103 Early Hints from a CDN in front of object storage)."""
    data = b""
    for _ in range(MAX_INTERIM + 1):
        status, headers, data = _read_one_head(sock, data)
        if not 100 <= status < 200:
            return status, headers, data
        if status == 101:
            raise TransportFailure("the server switched protocols in answer to a download")
    raise TransportFailure(f"more than {MAX_INTERIM} interim (1xx) answers")


def _read_one_head(sock: socket.socket, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, bytes after the head) of the next response head, `data` being what
    was already received of it."""
    while b"\r\n\r\n" not in data:
        if len(data) > MAX_HEAD:
            raise TransportFailure("the answer's headers are longer than 64 KiB")
        more = _recv(sock)
        if not more:
            raise TransportFailure("the connection closed before the answer's headers" if data else
                                   "the server closed the connection without answering")
        data += more
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    version, _, code = status_line.partition(" ")
    code = code[:3]
    if not version.startswith("HTTP/1.") or whole_number(code) is None:
        raise TransportFailure(f"not an HTTP/1.x answer: {status_line[:80]!r}")
    headers: dict[str, str] = {}
    for line in header_lines:
        name, sep, value = line.partition(":")
        if not sep:
            raise TransportFailure(f"a malformed header line {line[:80]!r}")
        name, value = name.strip().lower(), value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return int(code), headers, rest


def get(url: str, headers: dict[str, str], timeout: float) -> Response:
    """GET `url`, following redirects; the caller reads the body and closes the response."""
    first = _origin(url)
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TransportFailure(f"cannot download from {url!r}: only http and https")
        try:
            parts.port  # noqa: B018 -- a redirect's port that is no number in range: ValueError
        except ValueError:
            raise TransportFailure(f"cannot download from {url[:200]!r}: its port is not a number from 0 to 65535") from None
        send = {k: v for k, v in headers.items() if _origin(url) == first or k.lower() != "authorization"}
        sock = None
        try:
            sock = _connect(parts, timeout)
            sock.sendall(_request(parts, send))
            status, answer_headers, rest = _read_head(sock)
        except (OSError, TransportFailure) as exc:
            if sock is not None:
                sock.close()
            message = str(exc) if isinstance(exc, TransportFailure) else f"{type(exc).__name__}: {exc}"
            if _origin(url) != first:  # the registry's object storage, at the address its redirect named
                failure = TransportFailure(
                    f"cannot reach the registry's object storage at {parts.netloc}, where it sent the download: "
                    f"{message}; {storage_address.UNREACHABLE_HINT}")
                failure.elsewhere = parts.netloc
                raise failure from None
            raise TransportFailure(message) from None
        location = answer_headers.get("location")
        if status in (301, 302, 303, 307, 308) and location:
            sock.close()
            url = urljoin(url, location)
            continue
        return Response(status, answer_headers, sock, rest, parts.netloc if _origin(url) != first else None)
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
        n, self._pending = _fill(buffer, self._pending)
        return n

    def read_error_body(self) -> bytes:
        return self._response.read()[:ERROR_BODY_LIMIT]

    def close(self) -> None:
        self._stream.__exit__(None, None, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
