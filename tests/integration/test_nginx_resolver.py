"""docker-compose's nginx looks `web` up again while it runs (registry/nginx.py, `resolver_conf`):
a container recreated with a new address is found without restarting nginx. Debian's nginx, in
front of a plain HTTP server, asks a DNS server of this test's own, which first names an address
where nothing listens and then the server's: nginx answers 502, then 200 once the answer's time
is up. (Found running docker-compose under podman: with the name resolved once at start, nginx
kept answering 502 after `web` was recreated on another address.)"""
from __future__ import annotations

import getpass
import http.server
import os
import socket
import struct
import subprocess
import threading
import time

import httpx
import pytest

from registry.nginx import TEMP_DIRS, render
from tests.support.stack import free_port, nginx_binary

pytestmark = pytest.mark.slow


class TinyDNS:
    """Answers every A question with `self.address` (time to live 1 s); nothing else."""

    def __init__(self, address: str):
        self.address = address
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                query, peer = self.sock.recvfrom(512)
            except OSError:
                return
            end = 12
            while query[end]:
                end += query[end] + 1
            question = query[12:end + 5]  # the name, its 0 byte, type and class
            qtype = struct.unpack("!H", query[end + 1:end + 3])[0]
            answers = [b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 1, 4) + socket.inet_aton(self.address)] if qtype == 1 else []
            header = query[:2] + struct.pack("!HHHHH", 0x8180, 1, len(answers), 0, 0)
            self.sock.sendto(header + question + b"".join(answers), peer)

    def close(self) -> None:
        self.sock.close()


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *args):
        pass


def test_nginx_finds_the_upstream_again_after_its_address_changes(tmp_path):
    nginx = nginx_binary()
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    dns = TinyDNS("127.0.0.3")  # nothing listens there: the upstream is on 127.0.0.1 only
    run = tmp_path / "run"
    for name in TEMP_DIRS:
        (run / name).mkdir(parents=True)
    (tmp_path / "resolver.conf").write_text(f"resolver 127.0.0.1:{dns.port} valid=1s ipv6=off;\n")
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(render(listen=f"127.0.0.1:{port}", upstream=f"web.assay.test:{upstream.server_port}", blob_dir=tmp_path,
                           run_dir=run, user=getpass.getuser(), resolver_conf=tmp_path / "resolver.conf"))
    proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(run), "-e", str(run / "error.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/api/v1/trust"
        deadline = time.monotonic() + 20
        while True:
            try:
                first = httpx.get(url, timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, (run / "error.log").read_text()
                time.sleep(0.2)
        assert first.status_code == 502  # the name points where nothing listens
        dns.address = "127.0.0.1"  # `web` is back, on another address
        deadline = time.monotonic() + 20
        while (answer := httpx.get(url, timeout=5)).status_code != 200:
            assert time.monotonic() < deadline, f"still {answer.status_code}: {(run / 'error.log').read_text()[-2000:]}"
            time.sleep(0.3)
        assert answer.text == "hello"
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
        upstream.shutdown()
        dns.close()
