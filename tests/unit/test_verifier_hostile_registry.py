"""The verifier against a registry that lies: its web tier, its HTTP answers and the task queue are
the attacker's, the verifier's key is not. Whatever the registry says, the verifier signs only what
it checked itself (verifier/pipeline.py, job.py, level.py, registry_api.py).

The registry here is a fake in this process (httpx's MockTransport, or a loopback HTTP server where
the socket path matters): every answer is the test's to choose. No database, no model runs: the
probes step is replaced where a test reaches it."""
from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from assay.core import dsse, keys, levels, statements
from assay.core.digest import digest_bytes, digest_file
from assay.core.errors import AssayError
from verifier import pipeline, steps
from verifier.registry_api import VerifierClient

URL = "http://registry.test"
BASE_RECIPE = {"tool": "llama.cpp", "llama_cpp_python_version": "0.3.36", "ggml_build": "test", "ftype": "Q8_0",
               "imatrix": None, "options": {}}


@pytest.fixture(autouse=True)
def verifier_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_VERIFIER_DIR", str(tmp_path / "verifier"))
    monkeypatch.setattr(pipeline, "capabilities", lambda: {"test": True})  # no hardware probe, no llama_cpp import
    return tmp_path / "verifier"


def _release_envelope(publisher, *, digest: str, file_name: str = "model.gguf", namespace: str = "demo", model: str = "m",
                      tag: str = "f16", version: int = 1, quantization: str = "F16", base: dict | None = None,
                      recipe: dict | None = None) -> dict:
    payload = statements.build_release_statement(
        subject_name=file_name, subject_digest=digest, namespace=namespace, model=model, tag=tag, version=version,
        quantization=quantization, base=base, recipe=recipe, model_card_digest=None, created="2026-11-24T00:00:00Z")
    return dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, publisher)


def _job(envelope: dict, *, release_id: int = 7, size: int = 0, base: dict | None = None, base_size: int = 0) -> dict:
    """The job as registry/verification.job_info describes it, for the release `envelope` signs."""
    stmt = statements.parse_release_statement(dsse.parse_envelope(envelope).payload)
    return {"release_id": release_id, "reference": stmt.reference, "version": stmt.version, "status": "verifying",
            "file_name": stmt.subject_name, "digest": stmt.subject_digest, "size": size, "quantization": stmt.quantization,
            "base_digest": stmt.base.digest if stmt.base else "", "base_size": base_size,
            "base_name": stmt.base.name if stmt.base else "", "recipe": stmt.recipe,
            "statement_digest": statements.statement_digest(dsse.parse_envelope(envelope).payload),
            "release_envelope": envelope, "steps": [], "base": base, "inputs": []}


class HostileRegistry:
    """The registry's verifier API, answered by the test. `begin` may add what the registry says
    about earlier steps; every request is recorded."""

    def __init__(self, job: dict, blobs: dict[str, bytes] | None = None):
        self.job, self.blobs = job, dict(blobs or {})
        self.requests: list[tuple[str, str, dict]] = []
        self.begin: dict[str, dict] = {}  # step name -> extra fields of its begin answer
        self.verdict: dict | None = None
        self.errors: list[dict] = []
        self.verifiers: list[dict] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        body = json.loads(request.content or b"{}") if request.method == "POST" else {}
        self.requests.append((request.method, path, body))
        jobs = f"/api/v1/verifier/jobs/{self.job['release_id']}"
        if path == f"{jobs}/claim" or (request.method == "GET" and path == jobs):
            return httpx.Response(200, json=self.job)
        if m := re.fullmatch(rf"{jobs}/steps/(\w+)/begin", path):
            return httpx.Response(200, json={"run": True, "earlier_failed": [], **self.begin.get(m[1], {})})
        if m := re.fullmatch(rf"{jobs}/steps/(\w+)", path):
            result = statements.parse_step_result(dsse.parse_envelope(body["envelope"]).payload)
            self.job["steps"] = [s for s in self.job["steps"] if s["name"] != m[1]] + [
                {"name": m[1], "status": result.result, "summary": result.summary, "envelope": body["envelope"]}]
            return httpx.Response(200, json={"status": result.result})
        if path == f"{jobs}/verdict":
            self.verdict = body["verdict"]
            return httpx.Response(200, json={"status": "verified"})
        if path == f"{jobs}/error":
            self.errors.append(body)
            return httpx.Response(200, json={"status": "error"})
        if path == "/api/v1/verifiers":
            return httpx.Response(200, json={"verifiers": self.verifiers})
        if path.startswith("/api/v1/blobs/") and path.split("/")[-1] in self.blobs:
            return httpx.Response(200, content=self.blobs[path.split("/")[-1]])
        return httpx.Response(404, json={"error": f"not found: {path}"})

    def client(self) -> VerifierClient:
        client = VerifierClient(URL, "verifier-token")
        client.http = httpx.Client(base_url=URL, headers=dict(client.http.headers), transport=httpx.MockTransport(self.handle))
        return client


def _signed(envelope: dict) -> statements.VerdictStatement:
    from verifier.identity import signing_key

    public = signing_key().public_key()
    return statements.parse_verdict_statement(dsse.verify_envelope(envelope, {keys.key_id(public): public}).payload)


@pytest.fixture
def original(tmp_path):
    """A tiny full-precision GGUF, its publisher's signed release (an original: no base) and its job."""
    from tests.support.tiny_gguf import write_tiny_llama

    path = write_tiny_llama(tmp_path / "model.gguf")
    publisher = keys.generate_private_key()
    envelope = _release_envelope(publisher, digest=digest_file(path))
    return path, _job(envelope, size=path.stat().st_size)


# ---------------------------------------------------------------- a skip the registry orders

def test_the_registry_cannot_have_the_probes_skipped_by_saying_an_earlier_step_failed(original, tmp_path, monkeypatch):
    """The registry answers the probes step's begin with "static did not pass" although the
    verifier's own signed static result passed. Signing "probes: skipped" on that word would give a
    PASSED verdict (every check passed or skipped) over a model that no probe ever ran."""
    path, job = original
    ran = []
    monkeypatch.setitem(steps.STEPS, "probes", lambda job, files: ran.append(files.model()) or
                        steps.StepOutcome(steps.PASSED, "probes ran (stub)", {}))
    registry = HostileRegistry(job, {job["digest"]: path.read_bytes()})
    registry.begin["probes"] = {"earlier_failed": ["static"]}
    pipeline.verify_release(registry.client(), job["release_id"], work_dir=tmp_path)
    probes = next(s for s in registry.job["steps"] if s["name"] == "probes")
    assert (registry.job["steps"][0]["name"], registry.job["steps"][0]["status"]) == ("static", "passed")
    assert probes["status"] != "skipped", probes["summary"]
    assert ran, "the probes never ran"
    verdict = _signed(registry.verdict)
    assert verdict.check("probes")["result"] == "passed"


def test_a_step_skipped_after_an_earlier_failure_of_its_own_is_still_skipped(original, tmp_path, monkeypatch):
    """The honest case stays as it was: the static step failed (signed so by this verifier), the
    registry says so, the probes are skipped and the verdict is FAILED."""
    path, job = original
    monkeypatch.setitem(steps.STEPS, "static", lambda job, files: steps.StepOutcome(steps.FAILED, "bad file (stub)", {}))
    monkeypatch.setitem(steps.STEPS, "probes", lambda job, files: pytest.fail("the probes ran after the static step failed"))
    registry = HostileRegistry(job, {job["digest"]: path.read_bytes()})
    registry.begin["reproduce"] = registry.begin["probes"] = {"earlier_failed": ["static"]}
    pipeline.verify_release(registry.client(), job["release_id"], work_dir=tmp_path)
    assert [s["status"] for s in registry.job["steps"]] == ["failed", "skipped", "skipped"]
    assert _signed(registry.verdict).passed is False


# ---------------------------------------------------------------- the task's argument

@pytest.mark.parametrize("release_id", ["7/error#", "7/steps/static/reopen?", "7/../../../x", 7.5, True, None, {"id": 7}])
def test_a_queued_task_whose_release_id_is_no_number_makes_no_request(release_id, tmp_path):
    """Whoever writes to the broker chooses the task's argument. The verifier put it into its API
    paths as it came: "7/error#" made it report release 7 as an error (its own token, its own job),
    "7/steps/static/reopen?" reopen a step; and into its work folder's name."""
    registry = HostileRegistry({"release_id": 7})
    client = registry.client()
    for call in (lambda: pipeline.verify_release(client, release_id, work_dir=tmp_path),
                 lambda: pipeline.second_opinion(client, release_id, work_dir=tmp_path)):
        with pytest.raises((TypeError, ValueError)):
            call()
    assert registry.requests == []
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- the base a quant's chain names

BASE_DIGEST, QUANT_DIGEST = "sha256:" + "b" * 64, "sha256:" + "1" * 64


def _base_verdict(verifier, release_envelope: dict, level: levels.Level) -> dict:
    stmt = statements.parse_release_statement(dsse.parse_envelope(release_envelope).payload)
    payload = statements.build_verdict_statement(
        subject_name=stmt.subject_name, subject_digest=stmt.subject_digest, verifier_id=keys.key_id(verifier.public_key()),
        time_created="2026-11-24T00:00:01Z", resource_uri=f"assay:{stmt.reference}@{stmt.version}", policy_uri="urn:test",
        release_statement_digest=statements.statement_digest(dsse.parse_envelope(release_envelope).payload), passed=True,
        checks=[{"name": n, "result": "skipped" if n == "reproduce" else "passed", "summary": "ok", "evidence": {}}
                for n in ("static", "reproduce", "probes")], level=level)
    return dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, verifier)


def _quant_job(publisher, verifier, *, base_reference: str = "demo/base:f16", base_version: int = 1,
               base_statement: dict | None = None) -> dict:
    """A quant of demo/base:f16 (version 1, verified original); the registry's description of
    that base says `base_reference`@`base_version`, and hands over `base_statement` as its release."""
    base_envelope = base_statement or _release_envelope(publisher, digest=BASE_DIGEST, file_name="base.gguf", model="base")
    quant = _release_envelope(publisher, digest=QUANT_DIGEST, file_name="quant.gguf", tag="q8_0", quantization="Q8_0",
                              base={"name": "demo/base:f16", "digest": BASE_DIGEST}, recipe=BASE_RECIPE)
    base = {"reference": base_reference, "version": base_version, "digest": BASE_DIGEST, "file_name": "base.gguf", "parts": [],
            "release_envelope": base_envelope, "verdict_envelope": _base_verdict(verifier, base_envelope, levels.Level(levels.ORIGINAL))}
    return _job(quant, base=base)


def _rebuilt(job) -> dict:
    """This verifier's own step results for the quant: Q8_0 tensors, rebuilt bit-exactly."""
    def result(name: str, evidence: dict) -> statements.StepResult:
        return statements.parse_step_result(statements.build_step_result(
            subject_name=job.file_name, subject_digest=job.digest, release_statement_digest=job.statement_digest, verifier_id=QUANT_DIGEST,
            step=name, result="passed", summary="ok", evidence=evidence))
    return {"static": result("static", {"summary": {"tensor_types": {"Q8_0": 7, "F32": 2}}}), "reproduce": result("reproduce", {})}


@pytest.mark.parametrize("lie", [
    dict(base_version=99),  # a version of demo/base:f16 that the base's statement is not
    dict(base_reference="bob/other:f16"),  # another release's name for the same bytes
    dict(base_statement="bob/copy"),  # the verified release of the same bytes under another name, as the base
])
def test_the_chain_names_the_base_its_own_signed_statement_names(lie):
    """The quant's chain link (reference, version, level) is signed by this verifier. The level is
    read from the base's verdict, the digest from the publisher's statement; the reference and
    version came from the registry's description of the base, checked against nothing: a verdict
    saying "built from demo/base:f16@99" where the base the verdict signs is version 1."""
    from verifier.job import Job, JobMismatch
    from verifier.level import release_level

    publisher, verifier = keys.generate_private_key(), keys.generate_private_key()
    if lie.get("base_statement"):
        lie = dict(base_statement=_release_envelope(publisher, digest=BASE_DIGEST, file_name="base.gguf", namespace="bob",
                                                    model="copy"))
    data = _quant_job(publisher, verifier, **lie)
    with pytest.raises(JobMismatch, match="the base release"):
        job = Job.from_api(data)
        level = release_level(job, lambda: pytest.fail("no file needed"), _rebuilt(job),
                              {keys.key_id(verifier.public_key()): verifier.public_key()})
        pytest.fail(f"signed chain: {level.chain_text()}")


def test_an_honest_base_description_gives_its_chain():
    from verifier.job import Job
    from verifier.level import release_level

    publisher, verifier = keys.generate_private_key(), keys.generate_private_key()
    job = Job.from_api(_quant_job(publisher, verifier))
    level = release_level(job, lambda: pytest.fail("no file needed"), _rebuilt(job),
                          {keys.key_id(verifier.public_key()): verifier.public_key()})
    assert level == levels.Level(levels.REPRODUCED, (levels.ChainLink("demo/base:f16", 1, BASE_DIGEST, levels.ORIGINAL),))


# ---------------------------------------------------------------- whose verdict on the base counts

def _listed(*pairs) -> list[dict]:
    """/api/v1/verifiers as the registry answers it: (keyid, key) pairs, keyid None for the key's own."""
    return [{"name": f"v{i}", "keyid": keyid or keys.key_id(key.public_key()), "public_key": keys.public_key_to_text(key.public_key())}
            for i, (keyid, key) in enumerate(pairs)]


def _level_with(verifiers: list[dict], base_signer, signed_as: str | None = None) -> levels.Level:
    """The level this verifier gives the quant when the base's verdict is by `base_signer`
    (its envelope naming key id `signed_as`, if given) and the registry lists `verifiers`."""
    from verifier.identity import signing_key
    from verifier.job import Job
    from verifier.level import registered_keys, release_level

    data = _quant_job(keys.generate_private_key(), base_signer)
    if signed_as:
        data["base"]["verdict_envelope"]["signatures"][0]["keyid"] = signed_as
    job = Job.from_api(data)
    return release_level(job, lambda: pytest.fail("no file needed"), _rebuilt(job), registered_keys(verifiers, signing_key()))


def test_a_key_the_registry_lists_does_not_vouch_for_a_base():
    """The registry answers /api/v1/verifiers, so it chooses the keys whose verdict on a base this
    verifier reads the base's level from: a key of its own making "verified" a base (an unchecked,
    a quantized or a rejected one as `original`), and this verifier signed `reproduced` from a
    verified base for the quant. A client pinning only this verifier takes that chain."""
    rogue = keys.generate_private_key()
    level = _level_with(_listed((None, rogue)), rogue)
    assert level.name == levels.UNREPRODUCED and level.chain == (), level


def test_a_key_listed_under_this_verifiers_key_id_is_not_this_verifiers_key():
    from verifier.identity import verifier_id

    rogue = keys.generate_private_key()
    level = _level_with(_listed((verifier_id(), rogue)), rogue, signed_as=verifier_id())
    assert level.name == levels.UNREPRODUCED and level.chain == (), level


def test_a_base_this_verifier_or_a_pinned_peer_verified_counts(monkeypatch):
    from verifier.identity import signing_key

    peer = keys.generate_private_key()
    assert _level_with([], signing_key()).name == levels.REPRODUCED  # its own verdict on the base
    assert _level_with(_listed((None, peer)), peer).name == levels.UNREPRODUCED
    monkeypatch.setenv("ASSAY_VERIFIER_PEERS", keys.key_id(peer.public_key()))
    assert _level_with(_listed((None, peer)), peer).chain[0].level == levels.ORIGINAL  # a peer its operator pinned
    assert _level_with([], peer).name == levels.UNREPRODUCED  # ...as long as the registry lists it (not revoked)


# ---------------------------------------------------------------- blobs over a real socket

class _Server:
    """A loopback HTTP server; `routes` maps a path to (status, headers, body), a callable of the
    request's headers giving one, or raw bytes to send as the whole answer (any protocol)."""

    def __init__(self):
        routes, seen = {}, []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                seen.append((self.path, dict(self.headers)))
                route = routes.get(self.path.split("?")[0], (404, {}, b"no such route"))
                if callable(route):
                    route = route(self.headers)
                if isinstance(route, bytes):
                    self.wfile.write(route)
                    self.close_connection = True
                    return
                status, headers, body = route
                self.send_response(status)
                for name, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.routes, self.seen = routes, seen
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers(monkeypatch):
    monkeypatch.setattr("assay.client.http.RETRY_DELAYS", (0.0,) * 5)  # a failed download is tried again at once
    made = []
    yield lambda: made.append(_Server()) or made[-1]
    for s in made:
        s.close()


BLOB = b"GGUF" + bytes(range(256)) * 40
DIGEST = digest_bytes(BLOB)


def _fetch(registry: _Server, tmp_path: Path, size: int = len(BLOB)) -> Path:
    with VerifierClient(registry.url, "verifier-token") as client:
        return client.fetch_blob(DIGEST, size, tmp_path / "blobs")


@pytest.mark.parametrize("answer, message", [
    ((200, {}, BLOB[:-1] + b"X"), "hashing to"),  # other bytes
    ((200, {}, BLOB + b"more"), "more than the"),  # more bytes than the job's size
    ((200, {"Content-Encoding": "gzip"}, __import__("gzip").compress(BLOB)), "hashing to"),  # not decoded: never the blob
    ((206, {"Content-Range": f"bytes 0-{len(BLOB) - 1}/{len(BLOB)}"}, BLOB[:-1] + b"X"), "hashing to"),
])
def test_bytes_that_are_not_the_blob_are_never_a_fetched_file(servers, tmp_path, answer, message):
    registry = servers()
    registry.routes[f"/api/v1/blobs/{DIGEST}"] = answer
    with pytest.raises(AssayError, match=message):
        _fetch(registry, tmp_path)
    assert not [p for p in (tmp_path / "blobs").iterdir() if p.stat().st_size]  # nothing kept


def test_a_content_length_that_lies_is_a_cut_download_not_the_blob(servers, tmp_path):
    registry = servers()
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(BLOB)}\r\nConnection: close\r\n\r\n".encode()
    registry.routes[f"/api/v1/blobs/{DIGEST}"] = head + BLOB[: len(BLOB) // 2]
    with pytest.raises(AssayError, match="interrupted"):
        _fetch(registry, tmp_path)


def test_redirects_go_only_to_http_hosts_a_bounded_number_of_times_without_the_token(servers, tmp_path):
    registry, storage = servers(), servers()
    path = f"/api/v1/blobs/{DIGEST}"
    registry.routes[path] = (302, {"Location": "file:///etc/passwd"}, b"")
    with pytest.raises(AssayError, match="only http and https"):
        _fetch(registry, tmp_path)
    registry.routes[path] = (302, {"Location": path}, b"")  # a loop
    with pytest.raises(AssayError, match="redirects"):
        _fetch(registry, tmp_path)
    registry.routes[path] = (302, {"Location": f"{storage.url}/bucket/blob?sig=1"}, b"")
    storage.routes["/bucket/blob"] = (200, {}, BLOB)
    assert _fetch(registry, tmp_path).read_bytes() == BLOB
    assert "Authorization" not in storage.seen[-1][1] and registry.seen[-1][1]["Authorization"] == "Bearer verifier-token"


@pytest.mark.parametrize("internal", [
    (403, {"Content-Type": "text/plain"}, b"INTERNAL-ONLY admin console: db password hunter2"),
    b"INTERNAL-ONLY service 1.0 ready\r\nuser: admin\r\n\r\n",  # not HTTP at all: a banner
])
def test_what_a_host_the_registry_redirects_to_says_does_not_go_back_to_the_registry(servers, tmp_path, internal):
    """The registry sends a blob download to an address of its choosing (pre-signed URLs on object
    storage are redirects): one on the verifier's own network. The verifier reports a failed fetch
    to the registry (report_error, with the reason): that reason quoted the other host's error page
    or its banner, a way for the registry to read what answers on the verifier's network."""
    registry, inside = servers(), servers()
    registry.routes[f"/api/v1/blobs/{DIGEST}"] = (302, {"Location": f"{inside.url}/admin"}, b"")
    inside.routes["/admin"] = internal
    with pytest.raises(AssayError) as raised:
        _fetch(registry, tmp_path)
    assert "INTERNAL-ONLY" not in str(raised.value), raised.value


# ---------------------------------------------------------------- sizes no statement signs

def test_a_job_larger_than_the_free_disk_is_refused_before_a_byte_is_fetched(original, tmp_path, monkeypatch):
    """No statement signs a file's size: the job's `size` is the registry's word, and the download
    stops only there (then the digest decides). A registry saying 1 PiB and streaming filled the
    disk of the verifier's folder (its key and registration live there) before any check."""
    import shutil

    path, job = original
    job["size"] = 1 << 50
    registry = HostileRegistry(job, {job["digest"]: path.read_bytes()})
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=10 << 20))  # 10 MiB free
    with pytest.raises(AssayError, match="free"):
        pipeline.verify_release(registry.client(), job["release_id"], work_dir=tmp_path)
    assert not [p for _, p, _ in registry.requests if p.startswith("/api/v1/blobs/")]
    assert "free" in registry.errors[0]["reason"] and registry.verdict is None


def test_whoever_writes_to_the_broker_cannot_shut_a_verifier_down():
    """Celery's remote control (shutdown, add/cancel consumer, rate limits by broadcast) is off on
    the verifier's worker: the queue carries jobs, not commands."""
    from verifier.celery_app import app

    assert app.conf.worker_enable_remote_control is False


# ---------------------------------------------------------------- stale step results

def _own_results(job: dict, when: str) -> list[dict]:
    """Step rows holding this verifier's own results for an original (reproduce skipped, the
    others passed), signed at `when`."""
    from verifier.identity import signing_key

    signer = signing_key()
    rows = []
    for name in statements.CHECK_STEPS:
        result = "skipped" if name == "reproduce" else "passed"
        payload = statements.build_step_result(
            subject_name=job["file_name"], subject_digest=job["digest"], release_statement_digest=job["statement_digest"],
            verifier_id=keys.key_id(signer.public_key()), step=name, result=result, summary="ok", evidence={}, time=when)
        rows.append({"name": name, "status": result, "summary": "ok", "envelope": dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, signer)})
    return rows


def test_no_verdict_is_signed_over_results_older_than_the_limit(original, monkeypatch):
    """The registry held the verifier's passing results from months ago (before its checks
    changed, say) and asks for the verdict only now: the verifier signs nothing and says why."""
    path, job = original
    job["steps"] = _own_results(job, "2026-01-02T00:00:00Z")
    registry = HostileRegistry(job, {job["digest"]: path.read_bytes()})
    assert pipeline.attest(registry.client(), job["release_id"]) == "error"
    assert registry.verdict is None
    [error] = registry.errors
    assert "static (signed 2026-01-02T00:00:00Z)" in error["reason"] and "older than 168 hours" in error["reason"]
    assert "ASSAY_STEP_RESULT_MAX_AGE_H" in error["reason"] and "reverify" in error["reason"]
    monkeypatch.setenv("ASSAY_STEP_RESULT_MAX_AGE_H", "soon")
    with pytest.raises(AssayError, match="must be a positive number of hours, not 'soon'"):
        pipeline.attest(registry.client(), job["release_id"])


def test_fresh_results_are_attested(original):
    from datetime import datetime, timedelta, timezone

    path, job = original
    job["steps"] = _own_results(job, statements.format_time(datetime.now(timezone.utc) - timedelta(hours=2)))
    registry = HostileRegistry(job, {job["digest"]: path.read_bytes()})
    assert pipeline.attest(registry.client(), job["release_id"]) == "verified"
    assert registry.errors == [] and _signed(registry.verdict).passed
