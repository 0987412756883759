"""A real HTTP/1.1 server on loopback whose connections fail, for the client's retry and download
tests (the `flaky` fixture in tests/conftest.py)."""
from __future__ import annotations

import socket
import threading


class FlakyServer:
    """A real HTTP/1.1 server on loopback that fails the first `drops` connections: it closes
    them after reading the request (or, for a blob, after sending half of it)."""

    def __init__(self, drops: int, body: bytes = b'{"username": "alice"}', blob: bytes = b"", framing: str = "length",
                 range_shift: int = 0):
        self.drops, self.body, self.blob, self.requests, self.requests_headers = drops, body, blob, [], []
        self.framing = framing  # a blob's body: "length" (Content-Length), "chunked", or "close" (read to the close)
        self.range_shift = range_shift  # a 206 answer starts this many bytes off the asked range
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                request = conn.recv(65536).decode("latin-1")
                self.requests.append(request.split("\r\n", 1)[0])
                self.requests_headers.append(request.split("\r\n\r\n", 1)[0])
                range_start = 0
                for line in request.split("\r\n"):
                    if line.lower().startswith("range: bytes="):
                        range_start = int(line.split("=", 1)[1].split("-")[0])
                if self.drops > 0:
                    self.drops -= 1
                    if "/blobs/" in request and self.blob:
                        conn.sendall(self._blob_answer("200 OK", self.blob, len(self.blob) // 2))
                    continue  # close: "Server disconnected without sending a response" / incomplete body
                if "/blobs/" in request:
                    if range_start:
                        range_start += self.range_shift
                        part = self.blob[range_start:]
                        status = f"206 Partial Content\r\nContent-Range: bytes {range_start}-{len(self.blob) - 1}/{len(self.blob)}"
                    else:
                        part, status = self.blob, "200 OK"
                    conn.sendall(self._blob_answer(status, part, len(part)))
                else:
                    conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(self.body)}\r\n"
                                 f"Connection: close\r\n\r\n".encode() + self.body)

    def _blob_answer(self, status: str, body: bytes, sent: int) -> bytes:
        """The answer carrying `body`, framed as `framing`, cut after `sent` of its bytes."""
        if self.framing == "chunked":
            cut = f"{len(body):x}\r\n".encode() + body[:sent]
            return f"HTTP/1.1 {status}\r\nTransfer-Encoding: chunked\r\n\r\n".encode() + cut + (b"\r\n0\r\n\r\n" if sent == len(body) else b"")
        length = f"Content-Length: {len(body)}\r\n" if self.framing == "length" else ""
        return f"HTTP/1.1 {status}\r\n{length}Connection: close\r\n\r\n".encode() + body[:sent]

    def close(self) -> None:
        self.sock.close()
