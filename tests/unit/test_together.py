"""The parts of a split release download at the same time (client/together.py), each hashed on its
own thread; the first failure stops the others; their progress bars share one display."""
from __future__ import annotations

import hashlib
import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from rich.console import Console

from assay.cli import ui
from assay.client import pull
from assay.client.http import RegistryClient, RegistryHTTPError
from assay.client.together import Stopped, default_limit, run_together
from assay.core.digest import format_digest


class PartServer:
    """A real HTTP server for blobs. Before sending a body, each of the first `rendezvous`
    requests waits (up to 20 s) until all of them have arrived; `slow` bodies go out a
    MiB at a time, 10 ms apart; a digest not in `blobs` is a 404, sent once `gate` is set."""

    def __init__(self, blobs: dict[str, bytes], rendezvous: int = 0, slow: tuple[str, ...] = ()):
        self.blobs, self.slow = blobs, slow
        self.barrier = threading.Barrier(rendezvous, timeout=20) if rendezvous else None
        self.rendezvous, self.arrived, self.lock = rendezvous, 0, threading.Lock()
        self.met: list[bool] = []
        self.gate = threading.Event()
        self.sent: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                digest = self.path.rsplit("/", 1)[-1]
                body = server.blobs.get(digest)
                if body is None:
                    server.gate.wait(20)
                    answer = b'{"error": "no such blob"}'
                    self.send_response(404)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                    return
                with server.lock:
                    server.arrived += 1
                    meets = server.arrived <= server.rendezvous
                if server.barrier and meets:
                    try:
                        server.barrier.wait()
                        server.met.append(True)
                    except threading.BrokenBarrierError:
                        server.met.append(False)
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                step = 1 << 20
                try:
                    for i in range(0, len(body), step):
                        self.wfile.write(body[i:i + step])
                        server.sent[digest] = i + step
                        if digest in server.slow:
                            server.gate.set()  # the other part fails once this one is under way
                            time.sleep(0.01)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def blob(seed: int, size: int) -> tuple[str, bytes]:
    data = hashlib.sha256(b"%d" % seed).digest() * (size // 32)
    return format_digest(hashlib.sha256(data).hexdigest()), data


def part(digest: str, data: bytes, name: str):
    """The fields of a verified part that a download reads (checked by its sha256)."""
    return SimpleNamespace(digest=digest, size=len(data), file_name=name, check_digest=lambda d=None: d or digest)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def test_the_parts_download_at_the_same_time(cache):
    """Each request waits for the other before its body goes out: one after another, the first
    would wait 20 s alone."""
    (d1, b1), (d2, b2) = blob(1, 3 << 20), blob(2, 2 << 20)
    server = PartServer({d1: b1, d2: b2}, rendezvous=2)
    try:
        with RegistryClient(server.url) as client:
            partials = [cache / "p1.part", cache / "p2.part"]
            run_together([pull.partial_filler(client, part(d1, b1, "m-00001-of-00002.gguf"), partials[0], None),
                          pull.partial_filler(client, part(d2, b2, "m-00002-of-00002.gguf"), partials[1], None)], limit=2)
        assert server.met == [True, True]
        assert partials[0].read_bytes() == b1 and partials[1].read_bytes() == b2
    finally:
        server.httpd.shutdown()


def test_a_failing_part_stops_the_others_and_its_error_is_raised(cache):
    """Part 2 is a 404 that comes once part 1 is under way: part 1 stops at its next block
    instead of downloading the rest, and keeps what it has for the next pull to resume."""
    d1, b1 = blob(3, 48 << 20)
    d2 = format_digest("ab" * 32)
    server = PartServer({d1: b1}, slow=(d1,))
    try:
        with RegistryClient(server.url) as client:
            partial = cache / "p1.part"
            with pytest.raises(RegistryHTTPError, match="no such blob"):
                run_together([pull.partial_filler(client, part(d1, b1, "m-00001-of-00002.gguf"), partial, None),
                              pull.partial_filler(client, part(d2, b"x", "m-00002-of-00002.gguf"), cache / "p2.part", None)], limit=2)
        assert partial.stat().st_size < len(b1)
        assert b1.startswith(partial.read_bytes())
        with RegistryClient(server.url) as client:  # the next pull resumes part 1 and finishes it
            server.slow = ()
            run_together([pull.partial_filler(client, part(d1, b1, "m-00001-of-00002.gguf"), partial, None)])
        assert partial.read_bytes() == b1
    finally:
        server.httpd.shutdown()


def test_one_at_a_time_keeps_the_order_and_stops_at_the_first_failure():
    ran = []

    def job(i):
        def run(check):
            check()
            ran.append(i)
            if i == 1:
                raise ValueError("part 1 failed")
        return run

    with pytest.raises(ValueError, match="part 1 failed"):
        run_together([job(0), job(1), job(2)], limit=1)
    assert ran == [0, 1]
    assert default_limit() >= 1


def test_a_job_that_checks_is_stopped_when_another_fails():
    started, seen = threading.Event(), []

    def long_job(check):
        started.set()
        for _ in range(2000):  # 20 s if nothing stopped it
            try:
                check()
            except Stopped:
                seen.append("stopped")
                raise
            time.sleep(0.01)

    def failing_job(check):
        started.wait(10)
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        run_together([long_job, failing_job], limit=2)
    assert seen == ["stopped"]


def test_progress_bars_open_at_the_same_time_share_one_display(monkeypatch):
    """rich allows one live display at a time; two parts' bars open together must not raise."""
    monkeypatch.setattr(ui, "console", Console(file=io.StringIO(), force_terminal=True, width=100))
    monkeypatch.setattr(ui.sys, "stderr", SimpleNamespace(isatty=lambda: True))
    first, second = ui.progress_factory(10, "pull a"), ui.progress_factory(20, "pull b")
    assert first.progress is second.progress and first.progress.live.is_started
    first.advance(10)
    first.close()
    first.close()  # closing twice changes nothing
    assert second.progress.live.is_started
    second.advance(20)
    second.close()
    assert not second.progress.live.is_started
    third = ui.progress_factory(5, "pull c")  # a later bar starts a display of its own
    assert third.progress is not first.progress and third.progress.live.is_started
    third.close()
    assert "pull a" in ui.console.file.getvalue()


def test_verify_hashes_the_parts_at_once_and_names_the_one_that_differs(tmp_path):
    names = [f"m-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
    datas = [blob(10 + i, 1 << 20)[1] for i in range(3)]
    for name, data in zip(names, datas):
        (tmp_path / name).write_bytes(data)
    first = blob(10, 1 << 20)[0]
    signed = SimpleNamespace(digest=first, check_digest=lambda d=None: d or first,
                             release=SimpleNamespace(parts=[(n, format_digest(hashlib.sha256(d).hexdigest())) for n, d in zip(names, datas)]))
    pull._check_file_and_parts(tmp_path / names[0], "demo/m:1", signed)
    (tmp_path / names[2]).write_bytes(b"GGUF not this")
    with pytest.raises(pull.VerificationError, match=f"{names[2]} hashes to .* for that part"):
        pull._check_file_and_parts(tmp_path / names[0], "demo/m:1", signed)
    (tmp_path / names[1]).unlink()
    with pytest.raises(pull.VerificationError, match=f"part {names[1]} of demo/m:1 is not beside {names[0]}"):
        pull._check_file_and_parts(tmp_path / names[0], "demo/m:1", signed)


def test_the_verifier_fetches_a_jobs_blobs_at_once_and_stages_the_parts_under_their_names(tmp_path, monkeypatch):
    from verifier.job import Job
    from verifier.pipeline import _Fetcher
    from verifier.registry_api import VerifierClient

    (d1, b1), (d2, b2), (d3, b3) = blob(21, 2 << 20), blob(22, 1 << 20), blob(23, 1 << 20)
    monkeypatch.setattr("assay.client.together.os.cpu_count", lambda: 2)  # two at once, on a machine of any size
    server = PartServer({d1: b1, d2: b2, d3: b3}, rendezvous=2)  # the first two requests meet: two at once
    job = Job(release_id=1, reference="demo/m:1", version=1, file_name="m-00001-of-00002.gguf", digest=d1, size=len(b1),
              quantization="F16", base_digest="", base_size=0, base_name="", recipe=None, statement_digest=d1, steps=(), base=None,
              inputs=({"role": "part", "name": "m-00002-of-00002.gguf", "digest": d2, "size": len(b2)},
                      {"role": "calibration", "name": "calib.txt", "digest": d3, "size": len(b3)}))
    try:
        with VerifierClient(server.url, "token") as client:
            assert client.downloads_at_once() is None  # a real connection: the default, up to the cores
            files = _Fetcher(client, job, tmp_path).files()
        assert server.met == [True, True]
        assert [p.name for p in files.parts] == ["m-00001-of-00002.gguf", "m-00002-of-00002.gguf"]
        assert [p.read_bytes() for p in files.parts] == [b1, b2]
        assert [p.read_bytes() for p in files.inputs.values()] == [b3]
    finally:
        server.httpd.shutdown()


def test_digest_files_hashes_in_order_with_a_bar_each(tmp_path):
    from assay.client.together import digest_files

    files = []
    for i in range(3):
        files.append(tmp_path / f"m-0000{i + 1}-of-00003.gguf")
        files[-1].write_bytes(blob(30 + i, 3 << 20)[1])
    bars = []

    class Bar:
        def __init__(self, total, label):
            self.total, self.label, self.done = total, label, 0
            bars.append(self)

        def advance(self, n):
            self.done += n

        def close(self):
            self.closed = True

    got = digest_files(files, Bar, limit=2)
    assert got == [format_digest(hashlib.sha256(f.read_bytes()).hexdigest()) for f in files]
    assert sorted(b.label for b in bars) == [f"hash {f.name}" for f in files]
    assert all(b.done == b.total == 3 << 20 and b.closed for b in bars)
    files[1].unlink()
    with pytest.raises(FileNotFoundError):
        digest_files(files, None, limit=2)
