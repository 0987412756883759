"""The C2SP tlog-witness: add-checkpoint statuses, consistency, persistence, HTTP server, CLI."""
import base64
import hashlib
import http.client
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from assay.core import checkpoint as cp
from assay.core import merkle
from assay.cli.main import cli
from assay.core.cosignature import add_cosignatures, verify_cosignatures
from assay.core.errors import AssayError, FormatError
from assay.core.keys import Ed25519PrivateKey
from assay.client.witness import MAX_REQUEST_BYTES, SIZE_CONTENT_TYPE, Refusal, Witness, build_add_checkpoint_body, make_server, parse_add_checkpoint_body, request_cosignature

REPO = Path(__file__).resolve().parents[2]
ORIGIN = "example.com/log"
LOG_SK = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
FORGER_SK = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
LOG_VKEY = cp.verifier_key_string(ORIGIN, LOG_SK.public_key())
LEAVES = [f"entry {i}".encode() for i in range(40)]
FORK = [f"forked {i}".encode() for i in range(40)]
W_NAME = "witness.example/w1"


def root(n, leaves=LEAVES):
    return merkle.root_from_leaves(leaves[:n])


def signed(n, leaves=LEAVES, key=LOG_SK, origin=ORIGIN):
    return cp.sign_checkpoint(origin, n, root(n, leaves), origin, key)


def request(old, n, leaves=LEAVES, proof=None, note=None):
    """An add-checkpoint body moving from `old` to `n` leaves, with the real consistency proof."""
    proof = merkle.reference_consistency_proof(old, leaves[:n]) if proof is None else proof
    return build_add_checkpoint_body(old, proof, signed(n, leaves) if note is None else note)


@pytest.fixture
def witness(tmp_path):
    w = Witness.init(tmp_path / "w", W_NAME)
    w.add_log(LOG_VKEY)
    return w


def cosigned(witness, response, n, leaves=LEAVES):
    """The response's cosignature verified over checkpoint n: its timestamp."""
    status, content_type, body = response
    assert (status, content_type) == (200, "text/plain; charset=utf-8"), body
    assert body.decode().startswith("\u2014 " + W_NAME + " ") and body.endswith(b"\n") and body.count(b"\n") == 1
    note = add_cosignatures(signed(n, leaves), [body.decode()])
    return verify_cosignatures(note, [witness.vkey])[W_NAME]


def refused(response, status):
    assert response[0] == status, response
    assert b"\n" not in response[2].rstrip(b"\n")  # one line
    return response[2].decode()


# ---------------------------------------------------------------- add-checkpoint

def test_first_checkpoint_and_extensions(witness):
    before = int(time.time())
    assert before <= cosigned(witness, witness.add_checkpoint(request(0, 5)), 5) <= int(time.time())
    assert witness.latest() == {ORIGIN: (5, root(5))}
    sizes = [5, 8, 13, 16, 17, 17, 31, 32, 40]
    for old, new in zip(sizes, sizes[1:]):
        cosigned(witness, witness.add_checkpoint(request(old, new)), new)
        assert witness.latest() == {ORIGIN: (new, root(new))}


def test_empty_tree(witness):
    cosigned(witness, witness.add_checkpoint(request(0, 0)), 0)
    assert witness.latest() == {ORIGIN: (0, merkle.EMPTY_ROOT)}
    bad_empty = cp.sign_checkpoint(ORIGIN, 0, root(1), ORIGIN, LOG_SK)
    assert "empty tree" in refused(witness.add_checkpoint(build_add_checkpoint_body(0, [], bad_empty)), 422)
    cosigned(witness, witness.add_checkpoint(request(0, 3)), 3)


def test_stale_old_size_is_409_with_the_latest_size(witness):
    witness.add_checkpoint(request(0, 5))
    for old, new in ((0, 8), (3, 8), (8, 8)):
        status, content_type, body = witness.add_checkpoint(request(old, new))
        assert (status, content_type, body) == (409, SIZE_CONTENT_TYPE, b"5\n")
    assert witness.latest() == {ORIGIN: (5, root(5))}


def test_forks_and_bad_proofs_are_422(witness):
    witness.add_checkpoint(request(0, 8))
    same_size_other_root = cp.sign_checkpoint(ORIGIN, 8, root(8, FORK), ORIGIN, LOG_SK)
    assert "different roots" in refused(witness.add_checkpoint(build_add_checkpoint_body(8, [], same_size_other_root)), 422)
    refused(witness.add_checkpoint(request(8, 13, leaves=FORK)), 422)  # a fork with its own (valid) proof
    proof = merkle.reference_consistency_proof(8, LEAVES[:13])
    tampered = [proof[0][:-1] + bytes([proof[0][-1] ^ 1]), *proof[1:]]
    refused(witness.add_checkpoint(request(8, 13, proof=tampered)), 422)
    refused(witness.add_checkpoint(request(8, 13, proof=proof[:-1])), 422)
    refused(witness.add_checkpoint(request(8, 13, proof=[*proof, proof[0]])), 422)
    refused(witness.add_checkpoint(request(8, 8, proof=[root(8)])), 422)  # equal sizes: no proof
    assert witness.latest() == {ORIGIN: (8, root(8))}  # nothing moved, nothing forked was signed
    cosigned(witness, witness.add_checkpoint(request(8, 13)), 13)


def test_proof_from_size_0_must_be_empty(witness):
    assert "must be empty" in refused(witness.add_checkpoint(request(0, 5, proof=[root(1)])), 422)
    assert witness.latest() == {}


def test_old_size_above_checkpoint_size_is_400(witness):
    witness.add_checkpoint(request(0, 8))
    assert "larger than the checkpoint size" in refused(witness.add_checkpoint(build_add_checkpoint_body(8, [], signed(5))), 400)
    assert witness.latest() == {ORIGIN: (8, root(8))}


def test_signature_checks_are_403(witness):
    forged = cp.sign_checkpoint(ORIGIN, 5, root(5), ORIGIN, FORGER_SK)  # same name, other key
    assert "not signed by the log key" in refused(witness.add_checkpoint(request(0, 5, note=forged)), 403)
    body, sigs = cp.parse_note(signed(5))
    bad = bytearray(sigs[0].key_hash + sigs[0].signature)
    bad[-1] ^= 1
    bad_line = f"\u2014 {ORIGIN} {base64.b64encode(bytes(bad)).decode()}\n"
    assert "does not verify" in refused(witness.add_checkpoint(request(0, 5, note=body + "\n" + bad_line)), 403)
    # a valid log signature does not excuse a second, bad one by the same key
    assert "does not verify" in refused(witness.add_checkpoint(request(0, 5, note=signed(5) + bad_line)), 403)
    assert witness.latest() == {}
    # signatures of unknown keys are ignored
    cosigned(witness, witness.add_checkpoint(request(0, 5, note=signed(5) + forged.split("\n\n")[1])), 5)


def test_unknown_origin_is_404(witness):
    other = cp.sign_checkpoint("other.example/log", 5, root(5), "other.example/log", LOG_SK)
    assert "unknown log origin" in refused(witness.add_checkpoint(build_add_checkpoint_body(0, [], other)), 404)


@pytest.mark.parametrize("body", [
    b"",
    b"old 0\n",
    b"old 0\n" + signed(5).encode(),  # no blank line after the proof
    b"old 00\n\n" + signed(5).encode(),
    b"old -1\n\n" + signed(5).encode(),
    b"old 1e3\n\n" + signed(5).encode(),
    b"old  0\n\n" + signed(5).encode(),
    b"new 0\n\n" + signed(5).encode(),
    b"old 99999999999999999999\n\n" + signed(5).encode(),
    b"old 0\n!!!!\n\n" + signed(5).encode(),
    b"old 0\n" + base64.b64encode(bytes(31)) + b"\n\n" + signed(5).encode(),
    b"old 0\n" + base64.b64encode(bytes(32)).rstrip(b"=") + b"\n\n" + signed(5).encode(),
    b"old 0\n" + (base64.b64encode(bytes(32)) + b"\n") * 64 + b"\n" + signed(5).encode(),
    b"old 0\n\n" + signed(5).encode()[:-1],  # no final newline
    b"old 0\n\n" + signed(5).encode().replace(b"\n5\n", b"\nfive\n"),
    b"old 0\n\n\xff" + signed(5).encode(),
    b"old 0\n\n" + signed(5).encode().replace(b"\xe2\x80\x94", b"-"),
])
def test_malformed_requests_are_400(witness, body):
    refused(witness.add_checkpoint(body), 400)
    assert witness.latest() == {}


def test_proof_line_limit_and_request_size(witness):
    hashes = (base64.b64encode(bytes(32)) + b"\n") * 63
    assert len(parse_add_checkpoint_body(b"old 0\n" + hashes + b"\n" + signed(5).encode()).proof) == 63
    with pytest.raises(FormatError, match="longer than the 63"):
        build_add_checkpoint_body(0, [bytes(32)] * 64, signed(5))
    with pytest.raises(Refusal) as info:
        parse_add_checkpoint_body(b"x" * (MAX_REQUEST_BYTES + 1))
    assert info.value.status == 413
    assert witness.add_checkpoint(b"x" * (MAX_REQUEST_BYTES + 1))[0] == 413


def test_state_survives_a_restart(witness, tmp_path):
    witness.add_checkpoint(request(0, 13))
    again = Witness(tmp_path / "w")
    assert again.latest() == {ORIGIN: (13, root(13))} and again.vkey == witness.vkey and again.logs == {ORIGIN: LOG_VKEY}
    assert again.add_checkpoint(request(0, 16))[:3] == (409, SIZE_CONTENT_TYPE, b"13\n")
    cosigned(again, again.add_checkpoint(request(13, 16)), 16)
    for name in ("witness.key", "witness.json", "state.json"):
        assert stat.S_IMODE(os.stat(tmp_path / "w" / name).st_mode) == 0o600
    assert not [f for f in os.listdir(tmp_path / "w") if f.endswith(".tmp")]
    note = again.latest_checkpoint(ORIGIN)
    assert cp.verify_checkpoint(note, LOG_VKEY).size == 16 and W_NAME in verify_cosignatures(note, [again.vkey])


def test_timestamps_never_go_back(witness):
    """A clock stepped back must not make the witness date a larger tree before a smaller one."""
    witness.add_checkpoint(request(0, 5))
    state = json.loads(witness.state_path.read_text())
    future = int(time.time()) + 1000
    state["logs"][ORIGIN]["time"] = future
    witness.state_path.write_text(json.dumps(state))
    assert cosigned(witness, witness.add_checkpoint(request(5, 8)), 8) == future


def test_concurrent_requests_advance_once(witness):
    """Many requests from the same old size at once: exactly one is cosigned, the others get 409."""
    witness.add_checkpoint(request(0, 5))
    bodies = [request(5, n) for n in range(6, 30)]
    results = [None] * len(bodies)
    start = threading.Barrier(len(bodies))

    def post(i):
        start.wait()
        results[i] = witness.add_checkpoint(bodies[i])

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, r in enumerate(results) if r[0] == 200]
    assert len(winners) == 1
    size = 6 + winners[0]
    assert all(r == (409, SIZE_CONTENT_TYPE, f"{size}\n".encode()) for i, r in enumerate(results) if i != winners[0])
    assert witness.latest() == {ORIGIN: (size, root(size))}


def test_init_refuses_an_existing_key_and_bad_names(tmp_path, witness):
    key = (tmp_path / "w" / "witness.key").read_bytes()
    with pytest.raises(AssayError, match="refusing to replace a witness key"):
        Witness.init(tmp_path / "w", "witness.example/w2")
    assert (tmp_path / "w" / "witness.key").read_bytes() == key
    with pytest.raises(AssayError, match="invalid key name"):
        Witness.init(tmp_path / "w2", "bad name")
    assert not (tmp_path / "w2" / "witness.key").exists()
    with pytest.raises(AssayError, match="not a witness folder"):
        Witness(tmp_path / "nothing")


def test_log_added_while_serving_is_picked_up(witness, tmp_path):
    other_sk = Ed25519PrivateKey.from_private_bytes(bytes([9]) * 32)
    Witness(tmp_path / "w").add_log(cp.verifier_key_string("other.example/log", other_sk.public_key()))
    note = cp.sign_checkpoint("other.example/log", 5, root(5), "other.example/log", other_sk)
    assert witness.add_checkpoint(build_add_checkpoint_body(0, [], note))[0] == 200


# ---------------------------------------------------------------- HTTP

@pytest.fixture
def server(witness):
    srv = make_server(witness, "127.0.0.1", 0, quiet=True)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def test_http_add_checkpoint(server, witness):
    status, text = request_cosignature(server.url, 0, [], signed(5))
    assert status == 200 and W_NAME in verify_cosignatures(add_cosignatures(signed(5), [text]), [witness.vkey])
    with httpx.Client() as client:  # one keep-alive connection, a path prefix
        proof = merkle.reference_consistency_proof(5, LEAVES[:13])
        assert request_cosignature(server.url + "/prefix/", 5, proof, signed(13), client=client)[0] == 200
        assert request_cosignature(server.url + "/prefix/add-checkpoint", 5, proof, signed(13), client=client) == (409, "13\n")
        response = client.post(server.url + "/add-checkpoint", content=request(0, 5))
        assert response.status_code == 409 and response.headers["content-type"] == SIZE_CONTENT_TYPE
        assert client.post(server.url + "/add-checkpoint", content=b"old 0\n").status_code == 400
        assert client.post(server.url + "/elsewhere", content=request(13, 16)).status_code == 404
        assert client.get(server.url + "/add-checkpoint").status_code == 405
    assert witness.latest() == {ORIGIN: (13, root(13))}


def test_http_info_and_monitoring(server, witness):
    info = httpx.get(server.url + "/").json()
    assert info == {"name": W_NAME, "vkey": witness.vkey, "logs": {ORIGIN: LOG_VKEY}} == httpx.get(server.url + "/info").json()
    url = f"{server.url}/{hashlib.sha256(ORIGIN.encode()).hexdigest()}/checkpoint"
    assert httpx.get(url).status_code == 404  # nothing cosigned yet
    request_cosignature(server.url, 0, [], signed(8))
    note = httpx.get(url).text
    assert cp.verify_checkpoint(note, LOG_VKEY).size == 8 and W_NAME in verify_cosignatures(note, [witness.vkey])
    assert httpx.get(f"{server.url}/{'0' * 64}/checkpoint").status_code == 404


def test_http_broken_state_is_500_and_the_server_stays_up(server, witness):
    witness.state_path.write_text("{not json")
    with httpx.Client() as client:
        response = client.post(server.url + "/add-checkpoint", content=request(0, 5))
        assert response.status_code == 500 and response.text == "internal error\n"
        assert client.get(server.url + "/info").status_code == 200


def test_http_oversized_and_unsized_bodies(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
    conn.putrequest("POST", "/add-checkpoint")
    conn.putheader("Content-Length", str(MAX_REQUEST_BYTES + 1))
    conn.endheaders()
    assert conn.getresponse().status == 413
    conn.close()
    with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=5) as sock:
        sock.sendall(b"POST /add-checkpoint HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 411 ")  # answered before any body is read


def test_unreachable_witness_is_an_assay_error():
    with socket.socket() as sock:  # a free port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(AssayError, match="did not answer"):
        request_cosignature(f"http://127.0.0.1:{port}", 0, [], signed(5), timeout=2)


# ---------------------------------------------------------------- CLI

def run_assay(*args):
    return subprocess.run([sys.executable, "-m", "assay.cli", *args], cwd=REPO, capture_output=True, text=True, timeout=60)


def test_cli_init_add_log_show(tmp_path):
    runner = CliRunner()
    folder = str(tmp_path / "w")
    result = runner.invoke(cli, ["witness", "init", folder, "--name", W_NAME])
    assert result.exit_code == 0, result.output
    vkey = Witness(folder).vkey
    assert f"vkey    {vkey}" in result.output
    result = runner.invoke(cli, ["witness", "add-log", folder, LOG_VKEY])
    assert result.exit_code == 0 and f"cosigning log {ORIGIN}" in result.output
    other_vkey = cp.verifier_key_string("log-key", FORGER_SK.public_key())
    result = runner.invoke(cli, ["witness", "add-log", folder, other_vkey, "--origin", "other.example/log"])
    assert result.exit_code == 0 and Witness(folder).logs == {ORIGIN: LOG_VKEY, "other.example/log": other_vkey}
    assert "nothing cosigned yet" in runner.invoke(cli, ["witness", "show", folder]).output
    Witness(folder).add_checkpoint(request(0, 13))
    shown = runner.invoke(cli, ["witness", "show", folder]).output
    assert W_NAME in shown and vkey in shown and LOG_VKEY in shown
    assert f"size 13 root {base64.b64encode(root(13)).decode()}" in shown
    as_json = json.loads(runner.invoke(cli, ["witness", "show", folder, "--json"]).output)
    assert as_json["witness"] == W_NAME and as_json["vkey"] == vkey
    assert {"origin": ORIGIN, "vkey": LOG_VKEY, "size": 13, "root": base64.b64encode(root(13)).decode()} in as_json["logs"]


def test_cli_init_and_add_log_answer_in_json(tmp_path):
    runner = CliRunner()
    folder = str(tmp_path / "w")
    made = json.loads(runner.invoke(cli, ["witness", "init", folder, "--name", W_NAME, "--json"]).output)
    assert made == {"witness": W_NAME, "key": str(Witness(folder).key_path), "vkey": Witness(folder).vkey}
    added = json.loads(runner.invoke(cli, ["witness", "add-log", folder, LOG_VKEY, "--json"]).output)
    assert added == {"cosigning": ORIGIN, "vkey": LOG_VKEY}


def test_cli_errors_are_one_line_and_write_nothing(tmp_path):
    folder = tmp_path / "w"
    assert run_assay("witness", "init", str(folder), "--name", W_NAME).returncode == 0
    config, key = (folder / "witness.json").read_bytes(), (folder / "witness.key").read_bytes()
    for bad in ("not-a-vkey", LOG_VKEY.replace("+A", "+B", 1), LOG_VKEY[:-2], "witness.example/w1+" + LOG_VKEY.split("+", 1)[1]):
        result = run_assay("witness", "add-log", str(folder), bad)
        assert result.returncode == 1 and result.stderr.startswith("error: invalid log verifier key"), result.stderr
        assert result.stderr.count("\n") == 1
    result = run_assay("witness", "init", str(folder), "--name", "witness.example/w2")
    assert result.returncode == 1 and "refusing to replace a witness key" in result.stderr and result.stderr.count("\n") == 1
    assert (folder / "witness.json").read_bytes() == config and (folder / "witness.key").read_bytes() == key
    result = run_assay("witness", "show", str(tmp_path / "missing"))
    assert result.returncode == 1 and "not a witness folder" in result.stderr


def test_cli_serve_stops_on_sigterm(tmp_path):
    folder = tmp_path / "w"
    Witness.init(folder, W_NAME).add_log(LOG_VKEY)
    proc = subprocess.Popen([sys.executable, "-m", "assay.cli", "witness", "serve", str(folder), "--port", "0"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert " listening on http://127.0.0.1:" in first, first + proc.stderr.read()
        url = first.split(" listening on ")[1].strip()
        assert url.endswith("/add-checkpoint")
        assert request_cosignature(url, 0, [], signed(5))[0] == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        log = proc.stderr.read()
        assert '"POST /add-checkpoint HTTP/1.1" 200' in log and "witness stopped" in log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert Witness(folder).latest() == {ORIGIN: (5, root(5))}
    assert json.loads((folder / "state.json").read_text())["logs"][ORIGIN]["size"] == 5


def test_cli_serve_announces_itself_in_json(tmp_path):
    folder = tmp_path / "w"
    Witness.init(folder, W_NAME).add_log(LOG_VKEY)
    proc = subprocess.Popen([sys.executable, "-m", "assay.cli", "witness", "serve", str(folder), "--port", "0", "--json", "--quiet"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(proc.stdout.readline())
        assert first["witness"] == W_NAME and first["vkey"] == Witness(folder).vkey
        assert request_cosignature(first["url"], 0, [], signed(5))[0] == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
