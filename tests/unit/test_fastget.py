"""The download's HTTP/1.1 reader (assay/client/fastget.py) against a scripted server on loopback:
each test sends the raw bytes of an answer, as a real server might frame it, and checks what the
reader makes of it."""
from __future__ import annotations

import socket
import threading

import pytest

from assay.client import fastget


class Scripted:
    """Answers each connection with the next of `answers` (raw bytes, or a callable taking the
    request's bytes), then closes; records each request."""

    def __init__(self, answers):
        self.answers, self.requests = list(answers), []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        for answer in self.answers:
            conn, _ = self.sock.accept()
            with conn:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(65536)
                self.requests.append(request.decode("latin-1"))
                conn.sendall(answer(request) if callable(answer) else answer)

    def close(self):
        self.sock.close()


@pytest.fixture
def scripted():
    servers = []

    def make(*answers):
        servers.append(Scripted(answers))
        return servers[-1]
    yield make
    for s in servers:
        s.close()


def body_of(response, buffer_size: int = 7) -> bytes:
    out, buffer = bytearray(), memoryview(bytearray(buffer_size))
    while n := response.readinto(buffer):
        out += buffer[:n]
    return bytes(out)


def test_a_body_by_content_length_stops_there(scripted):
    server = scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-A: 1\r\nX-A: 2\r\n\r\nhello worldTRAILING JUNK")
    with fastget.get(server.url + "/blob?x=1", {"Authorization": "Bearer t"}, 5) as r:
        assert r.status == 200 and r.headers["x-a"] == "1, 2" and r.headers["content-length"] == "11"
        assert body_of(r) == b"hello world"
    request = server.requests[0]
    assert request.startswith("GET /blob?x=1 HTTP/1.1\r\n") and "Authorization: Bearer t\r\n" in request
    assert f"Host: 127.0.0.1:{server.url.rsplit(':', 1)[1]}\r\n" in request and "Connection: close" in request


def test_a_chunked_body_is_decoded_with_extensions_and_trailers(scripted):
    server = scripted(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"5;name=x\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: y\r\n\r\n")
    with fastget.get(server.url, {}, 5) as r:
        assert body_of(r, 3) == b"hello 0123456789"


def test_a_body_without_length_runs_to_the_close(scripted):
    server = scripted(b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * 100_000)
    with fastget.get(server.url, {}, 5) as r:
        assert body_of(r, 4096) == b"x" * 100_000


def test_a_connection_closed_early_ends_the_body_and_the_length_tells(scripted):
    server = scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
    with fastget.get(server.url, {}, 5) as r:
        assert body_of(r) == b"only this" and r.headers["content-length"] == "100"


def test_a_redirect_elsewhere_drops_the_credentials(scripted):
    storage = scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    other_origin = storage.url.replace("127.0.0.1", "localhost")
    registry = scripted(f"HTTP/1.1 302 Found\r\nLocation: {other_origin}/bucket/blob?sig=1\r\nContent-Length: 0\r\n\r\n".encode())
    with fastget.get(registry.url + "/api/v1/blobs/x", {"Authorization": "Bearer t", "User-Agent": "assay"}, 5) as r:
        assert body_of(r) == b"ok"
    assert "Authorization" in registry.requests[0]
    assert "Authorization" not in storage.requests[0] and "User-Agent: assay" in storage.requests[0]
    assert storage.requests[0].startswith("GET /bucket/blob?sig=1 HTTP/1.1")


def test_an_error_body_is_read_up_to_its_limit(scripted):
    server = scripted(b'HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 18\r\n\r\n{"error": "nope."}')
    with fastget.get(server.url, {}, 5) as r:
        assert r.status == 404 and r.read_error_body() == b'{"error": "nope."}'


@pytest.mark.parametrize("answer, message", [
    (b"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP/1.x answer"),
    (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed header line"),
    (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70_000, "longer than 64 KiB"),
    (b"", "closed the connection without answering"),
    (b"HTTP/1.1 200 OK\r\nContent-", "closed before the answer's headers"),
])
def test_what_is_not_an_http_answer_is_a_transport_failure(scripted, answer, message):
    server = scripted(answer)
    with pytest.raises(fastget.TransportFailure, match=message):
        fastget.get(server.url, {}, 5)


@pytest.mark.parametrize("body, message", [
    (b"zz\r\nhello\r\n0\r\n\r\n", "malformed chunk size"),
    (b"5\r\nhelloXX0\r\n\r\n", "not followed by CRLF"),
    (b"5\r\nhel", "closed inside a chunked body"),  # cut inside a chunk: a drop to resume, not the end
    (b"5\r\nhello\r\n", "closed inside a chunked body"),
])
def test_a_broken_chunked_body_is_a_transport_failure(scripted, body, message):
    server = scripted(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    with fastget.get(server.url, {}, 5) as r, pytest.raises(fastget.TransportFailure, match=message):
        body_of(r)


def test_interim_answers_before_the_final_one_are_skipped(scripted):
    server = scripted(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n"
                      b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    with fastget.get(server.url, {}, 5) as r:
        assert r.status == 200 and "link" not in r.headers and body_of(r) == b"hello"


@pytest.mark.parametrize("answer, message", [
    (b"HTTP/1.1 103 Early Hints\r\n\r\n" * 9 + b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "more than 8 interim"),
    (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", "switched protocols"),
])
def test_endless_or_upgrading_interim_answers_are_refused(scripted, answer, message):
    server = scripted(answer)
    with pytest.raises(fastget.TransportFailure, match=message):
        fastget.get(server.url, {}, 5)


def test_too_many_redirects_and_other_schemes_are_refused(scripted):
    loop = scripted(*[lambda req: b"HTTP/1.1 302 Found\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n"] * 6)
    with pytest.raises(fastget.TransportFailure, match="more than 5 redirects"):
        fastget.get(loop.url, {}, 5)
    with pytest.raises(fastget.TransportFailure, match="only http and https"):
        fastget.get("ftp://127.0.0.1/x", {}, 5)


def test_a_header_value_with_a_line_break_is_never_sent(scripted):
    server = scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    with pytest.raises(fastget.TransportFailure, match="line break"):
        fastget.get(server.url, {"Authorization": "Bearer t\r\nX-Evil: 1"}, 5)


def test_a_server_that_never_answers_times_out(scripted):
    quiet = socket.create_server(("127.0.0.1", 0))
    try:
        with pytest.raises(fastget.TransportFailure, match="timed out|TimeoutError"):
            fastget.get(f"http://127.0.0.1:{quiet.getsockname()[1]}/x", {}, 0.5)
    finally:
        quiet.close()
