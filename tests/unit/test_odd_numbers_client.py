"""The client side of odd numbers and names: a header or setting that str.isdigit() takes but
int() refuses ("²", thousands of digits), a timeout of inf or nan, a redirect to a port that is no
number, a reference with a query in it. Each is a clean error, never a traceback or a request
for another release."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import click
import pytest

from assay.cli.ui import SECONDS
from assay.client import fastget
from assay.client.http import RegistryClient
from assay.core import checkpoint as cp
from assay.core import keys
from assay.core.errors import FormatError
from assay.core.numbers import whole_number
from assay.client.trustpolicy import TrustPolicy

URL, SLUG = "http://127.0.0.1:9", "127.0.0.1_9"
ASSAY = str(Path(sys.executable).parent / "assay")


@pytest.mark.parametrize("text, number", [("1234", 1234), (" 7 ", 7), ("\u00b2", None), ("1" * 4400, None), ("-1", None), ("", None)])
def test_whole_number_takes_only_ascii_digits_of_a_sane_length(text, number):
    assert whole_number(text) == number


def _answering(answer: bytes) -> socket.socket:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(5)

    def serve():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            conn.recv(65536)
            conn.sendall(answer)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return srv


@pytest.mark.parametrize("answer, needle", [
    (b"HTTP/1.1 \xb200 OK\r\nContent-Length: 0\r\n\r\n", "not an HTTP/1.x answer"),
    (b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:notaport/x\r\nContent-Length: 0\r\n\r\n", "its port is not a number"),
])
def test_a_malformed_answer_is_a_transport_failure_not_a_value_error(answer, needle):
    srv = _answering(answer)
    try:
        with pytest.raises(fastget.TransportFailure, match=needle):
            with fastget.get(f"http://127.0.0.1:{srv.getsockname()[1]}/api/v1/blobs/x", {}, timeout=5) as r:
                r.read_error_body()
    finally:
        srv.close()


def test_a_content_length_that_is_no_number_is_read_to_the_close():
    srv = _answering(b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\nbody")
    try:
        with fastget.get(f"http://127.0.0.1:{srv.getsockname()[1]}/x", {}, timeout=5) as r:
            assert r.read_error_body() == b"body"
    finally:
        srv.close()


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0", "1e12", "soon"])
def test_a_timeout_must_be_a_finite_number_of_seconds(value):
    with pytest.raises(click.BadParameter, match="number of seconds"):
        SECONDS.convert(value, None, None)
    assert SECONDS.convert("2.5", None, None) == 2.5


@pytest.mark.parametrize("reference", ["demo/m:t?x", "demo/m:t#frag", "a b/m:t"])
def test_status_and_resolve_check_the_reference_before_asking(reference):
    client = RegistryClient("http://127.0.0.1:9")
    for call in (client.status, client.resolve):
        with pytest.raises(FormatError):
            call(reference)


@pytest.mark.parametrize("value", ["\u00b2", "1" * 4400])
def test_policy_set_of_no_ascii_number_is_a_clean_error(tmp_path, value):
    vsk, lsk = keys.generate_private_key(), keys.generate_private_key()
    TrustPolicy.create(tmp_path / "config" / "registries" / SLUG, registry_url=URL,
                       verifier_keys={keys.key_id(vsk.public_key()): keys.public_key_to_text(vsk.public_key())},
                       log_vkey=cp.verifier_key_string("x.test/log", lsk.public_key())).save()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}, "ASSAY_CONFIG_DIR": str(tmp_path / "config"),
           "ASSAY_CACHE_DIR": str(tmp_path / "cache")}
    r = subprocess.run([ASSAY, "policy", "set", "witness-max-age", value, "-r", URL], env=env, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=60)
    assert r.returncode != 0 and "must be a whole number" in r.stderr and "Traceback" not in r.stderr


def test_the_witness_answers_a_content_length_of_thousands_of_digits_with_a_400(tmp_path):
    from assay.client.witness import Witness, make_server

    server = make_server(Witness.init(tmp_path / "w", "w.example"), "127.0.0.1", 0, quiet=True)
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=5) as s:
            s.sendall(b"POST /add-checkpoint HTTP/1.1\r\nHost: x\r\nContent-Length: " + b"1" * 4400 + b"\r\n\r\n")
            reply = s.recv(4096)
    finally:
        server.shutdown()
        server.server_close()
    assert reply.startswith(b"HTTP/1.") and b" 400 " in reply.split(b"\r\n")[0]
