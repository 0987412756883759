"""A transparency-log witness (C2SP tlog-witness): cosigns log checkpoints it verified to be
consistent with the last one it cosigned for the same log, so a log cannot show two histories.

State folder:
- witness.key   the witness's Ed25519 private key (PKCS#8 PEM, mode 0600), made by `init`;
- witness.json  {"format": 1, "name": <witness name>, "logs": {<origin>: <log vkey>}}: the logs
                it cosigns and the key each one's checkpoints must be signed with;
- state.json    {"format": 1, "logs": {<origin>: {"size", "root" (hex), "time", "checkpoint"}}}:
                per log, the latest cosigned tree and that checkpoint with the verified log
                signature and the witness's cosignature (served to monitors).
Both JSON files are written atomically (temp file, fsync, rename, mode 0600) under an flock of the
folder, and the old-size check and the state update happen under that one lock, so two requests
(threads or processes) can never both advance, or roll back, the same log. The state (and the
folder entry of its rename) is on disk before the cosignature is returned.

Checks, in the spec's order: malformed body 400 (413 over 1 MiB, at most 63 proof lines), unknown
origin 404, no valid log signature (or a bad one by the log key) 403, old size above the checkpoint
size 400, old size not the latest cosigned size 409 (text/x.tlog.size "<size>\n"), size-0 root not
the empty root / proof from 0 not empty / consistency proof failing / same size, other root 422.

HTTP: POST <prefix>/add-checkpoint (the C2SP protocol), GET <prefix>/<sha256(origin) hex>/checkpoint
(the latest cosigned checkpoint, for monitors), GET / or /info (JSON name, vkey, logs).
"""
from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import re
import signal
import ssl
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Sequence
from urllib.parse import urlsplit

import httpx

from assay.core import checkpoint as cp
from assay.core import keys, merkle
from assay.core.cosignature import sign_cosignature, witness_vkey
from assay.core.durable import fsync_directory
from assay.core.errors import AssayError, FormatError, VerificationError
from assay.core.numbers import whole_number
from assay.client.trustpolicy import _locked, _read_json, _write_json

KEY_FILE = "witness.key"
CONFIG_FILE = "witness.json"
STATE_FILE = "state.json"
FORMAT = 1
DEFAULT_PORT = 8765
MAX_REQUEST_BYTES = 1 << 20
MAX_PROOF_LINES = 63  # tlog-witness: "The client MUST NOT send more than 63 consistency proof lines."
MAX_RESPONSE_BYTES = 64 * 1024
SIZE_CONTENT_TYPE = "text/x.tlog.size"
TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"
_OLD_RE = re.compile(r"\Aold (0|[1-9][0-9]{0,18})\Z")
_CHECKPOINT_PATH = re.compile(r"(?:\A|/)([0-9a-f]{64})/checkpoint\Z")

Response = tuple[int, str, bytes]  # (HTTP status, Content-Type, body)


class Refusal(Exception):
    """An add-checkpoint request answered with an HTTP error status and a one-line body."""

    def __init__(self, status: int, message: str, content_type: str = TEXT_CONTENT_TYPE):
        super().__init__(message)
        self.status, self.message, self.content_type = status, message, content_type

    def response(self) -> Response:
        body = self.message if self.message.endswith("\n") else self.message + "\n"
        return self.status, self.content_type, body.encode("utf-8")


@dataclass(frozen=True)
class AddCheckpointRequest:
    """A parsed add-checkpoint body: old size, consistency proof, the signed checkpoint note."""

    old_size: int
    proof: tuple[bytes, ...]
    note: str
    body: str
    signatures: tuple[cp.NoteSignature, ...]
    checkpoint: cp.Checkpoint


# ---------------------------------------------------------------- request body

def build_add_checkpoint_body(old_size: int, proof: Sequence[bytes], checkpoint_text: str) -> bytes:
    """"old <size>\\n", one base64 proof hash per line, a blank line, then the signed checkpoint."""
    if isinstance(old_size, bool) or not isinstance(old_size, int) or not 0 <= old_size < 1 << 63:
        raise FormatError(f"invalid old size {old_size!r}")
    if len(proof) > MAX_PROOF_LINES:
        raise FormatError(f"a consistency proof of {len(proof)} hashes is longer than the {MAX_PROOF_LINES} allowed")
    if any(not isinstance(h, (bytes, bytearray)) or len(h) != merkle.HASH_SIZE for h in proof):
        raise FormatError("invalid consistency proof: every hash must be 32 bytes")
    cp.parse_note(checkpoint_text)
    lines = [f"old {old_size}", *(base64.b64encode(bytes(h)).decode("ascii") for h in proof)]
    return ("".join(line + "\n" for line in lines) + "\n" + checkpoint_text).encode("utf-8")


def _proof_hash(line: str) -> bytes:
    try:
        raw = base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError):
        raise Refusal(400, "malformed request: a consistency proof line is not base64") from None
    if len(raw) != merkle.HASH_SIZE or base64.b64encode(raw).decode("ascii") != line:
        raise Refusal(400, "malformed request: a consistency proof line is not base64 of 32 bytes")
    return raw


def parse_add_checkpoint_body(data: bytes) -> AddCheckpointRequest:
    """Parse an add-checkpoint request body; Refusal(400) if malformed, 413 if too large."""
    if len(data) > MAX_REQUEST_BYTES:
        raise Refusal(413, f"request body larger than {MAX_REQUEST_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Refusal(400, "malformed request: the body is not UTF-8") from None
    split = text.find("\n\n")
    if split < 0:
        raise Refusal(400, "malformed request: no blank line between the proof and the checkpoint")
    header, note = text[:split].split("\n"), text[split + 2:]
    match = _OLD_RE.match(header[0])
    if not match:
        raise Refusal(400, "malformed request: the first line must be \"old <size>\" (decimal, no leading zeroes)")
    if len(header) - 1 > MAX_PROOF_LINES:
        raise Refusal(400, f"malformed request: more than {MAX_PROOF_LINES} consistency proof lines")
    proof = tuple(_proof_hash(line) for line in header[1:])
    try:
        body, signatures = cp.parse_note(note)
        checkpoint = cp.parse_checkpoint_body(body)
    except FormatError as exc:
        raise Refusal(400, f"malformed checkpoint: {exc}") from None
    return AddCheckpointRequest(int(match.group(1)), proof, note, body, tuple(signatures), checkpoint)


def _signature_line(sig: cp.NoteSignature) -> str:
    return f"{cp.SIG_PREFIX}{sig.name} {base64.b64encode(sig.key_hash + sig.signature).decode('ascii')}\n"


def _verified_log_signatures(request: AddCheckpointRequest, name: str, public_key: keys.Ed25519PublicKey) -> list[cp.NoteSignature]:
    """The request's signature lines by the log key; Refusal(403) if none, or if any fails to verify."""
    want = cp.key_hash(name, public_key)
    mine = [s for s in request.signatures if s.name == name and s.key_hash == want]
    if not mine:
        raise Refusal(403, f"the checkpoint is not signed by the log key {name}+{want.hex()}")
    message = request.body.encode("utf-8")
    if not all(len(s.signature) == 64 and keys.verify_signature(public_key, s.signature, message) for s in mine):
        raise Refusal(403, f"the checkpoint's signature by the log key {name}+{want.hex()} does not verify")
    return mine


def _check_consistency(size: int, root: bytes, request: AddCheckpointRequest) -> None:
    """Refusal(422) unless the checkpoint extends the tree (size, root) the witness cosigned last."""
    new = request.checkpoint
    if new.size == 0 and new.root != merkle.EMPTY_ROOT:
        raise Refusal(422, "a checkpoint of size 0 must have the root hash of the empty tree")
    if request.old_size == 0 and request.proof:
        raise Refusal(422, "the consistency proof from size 0 must be empty")
    try:
        merkle.verify_consistency(size, new.size, root, new.root, request.proof)
    except VerificationError as exc:
        raise Refusal(422, f"inconsistent checkpoint: {exc}") from None


# ---------------------------------------------------------------- the witness

def _check_config(data: dict, path: Path) -> dict[str, tuple[str, keys.Ed25519PublicKey]]:
    """origin -> (log key name, log public key) of a witness.json; FormatError if malformed."""
    if data.get("format") != FORMAT or not isinstance(data.get("logs"), dict):
        raise FormatError(f"{path} is not a witness config (format {FORMAT} with \"name\" and \"logs\")")
    cp._check_name(data.get("name"))
    logs = {}
    for origin, vkey in data["logs"].items():
        try:
            logs[origin] = cp.parse_verifier_key(vkey)
        except FormatError as exc:
            raise FormatError(f"{path}: log {origin!r}: {exc}") from None
    return logs


class Witness:
    """A witness over its state folder (see the module docstring for the files it holds)."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        config = _read_json(self.config_path)
        if config is None:
            raise AssayError(f"{self.directory} is not a witness folder: run `assay witness init {self.directory} --name NAME`")
        self._log_keys = _check_config(config, self.config_path)
        self._logs: dict[str, str] = dict(config["logs"])
        self.name: str = config["name"]
        self._private_key = keys.load_private_key(self.key_path, algorithms=(keys.ED25519,))
        self.public_key = self._private_key.public_key()
        self._mutex = threading.Lock()  # with the folder's flock: one state update at a time

    # ------------------------------------------------------------ files

    @property
    def key_path(self) -> Path:
        return self.directory / KEY_FILE

    @property
    def config_path(self) -> Path:
        return self.directory / CONFIG_FILE

    @property
    def state_path(self) -> Path:
        return self.directory / STATE_FILE

    @classmethod
    def init(cls, directory: str | Path, name: str) -> "Witness":
        """Make the witness key (refusing to replace one) and its config; keep logs already listed."""
        directory = Path(directory)
        cp._check_name(name)
        try:
            keys.save_private_key(directory / KEY_FILE, keys.generate_private_key(), overwrite=False)
        except keys.KeyExistsError:
            raise keys.KeyExistsError(f"{directory / KEY_FILE} already exists; refusing to replace a witness key") from None
        with _locked(directory):
            try:
                previous = _read_json(directory / CONFIG_FILE) or {}
            except FormatError:
                previous = {}
            logs = previous.get("logs") if isinstance(previous.get("logs"), dict) else {}
            _write_json(directory / CONFIG_FILE, {"format": FORMAT, "name": name, "logs": logs})
        return cls(directory)

    @property
    def vkey(self) -> str:
        """The witness's cosignature/v1 verifier key, for logs and clients to pin."""
        return witness_vkey(self.name, self.public_key)

    @property
    def logs(self) -> dict[str, str]:
        """origin -> log vkey, for every log this witness cosigns."""
        return dict(self._logs)

    def add_log(self, vkey: str, origin: str | None = None) -> str:
        """Cosign the log whose checkpoints `vkey` signs (origin: the key name unless given)."""
        name, public_key = cp.parse_verifier_key(vkey)
        origin = name if origin is None else origin
        if not isinstance(origin, str) or not origin or any(ord(c) < 0x20 for c in origin):
            raise FormatError(f"invalid log origin {origin!r}")
        with _locked(self.directory):
            config = _read_json(self.config_path) or {}
            _check_config(config, self.config_path)
            config["logs"][origin] = vkey
            _write_json(self.config_path, config)
        self._load_logs(config)
        return origin

    def _load_logs(self, config: dict) -> None:
        self._log_keys = _check_config(config, self.config_path)
        self._logs = dict(config["logs"])

    def _log_key(self, origin: str) -> tuple[str, keys.Ed25519PublicKey]:
        """The key the log `origin` signs with; the config is re-read once for an unknown origin
        (a log added while serving); Refusal(404) if it is still unknown."""
        if origin not in self._log_keys:
            config = _read_json(self.config_path)
            if config is not None:
                self._load_logs(config)
        if origin not in self._log_keys:
            raise Refusal(404, f"unknown log origin {origin[:200]!r}")
        return self._log_keys[origin]

    # ------------------------------------------------------------ state

    def _read_state(self) -> dict:
        state = _read_json(self.state_path) or {"format": FORMAT, "logs": {}}
        if state.get("format") != FORMAT or not isinstance(state.get("logs"), dict):
            raise FormatError(f"{self.state_path} is not a witness state file")
        return state

    def latest(self) -> dict[str, tuple[int, bytes]]:
        """origin -> (size, root) of the latest checkpoint cosigned for each log."""
        return {o: (r["size"], bytes.fromhex(r["root"])) for o, r in self._read_state()["logs"].items()}

    def latest_checkpoint(self, origin: str) -> str | None:
        """The latest cosigned checkpoint of `origin`, with the log's signature and our cosignature."""
        record = self._read_state()["logs"].get(origin)
        return record["checkpoint"] if record else None

    # ------------------------------------------------------------ add-checkpoint

    def add_checkpoint(self, body: bytes) -> Response:
        """Answer one add-checkpoint request body: (status, content type, response body)."""
        try:
            request = parse_add_checkpoint_body(body)
            name, public_key = self._log_key(request.checkpoint.origin)
            log_signatures = _verified_log_signatures(request, name, public_key)
            if request.old_size > request.checkpoint.size:
                raise Refusal(400, f"old size {request.old_size} is larger than the checkpoint size {request.checkpoint.size}")
            line = self._cosign(request, log_signatures)
        except Refusal as refusal:
            return refusal.response()
        return 200, TEXT_CONTENT_TYPE, line.encode("utf-8")

    def _cosign(self, request: AddCheckpointRequest, log_signatures: list[cp.NoteSignature]) -> str:
        """Under the folder lock: check the old size (409) and consistency (422), persist the new
        tree, and return our cosignature line."""
        origin = request.checkpoint.origin
        with self._mutex, _locked(self.directory):
            state = self._read_state()
            record = state["logs"].get(origin)
            size, root = (record["size"], bytes.fromhex(record["root"])) if record else (0, merkle.EMPTY_ROOT)
            if request.old_size != size:
                raise Refusal(409, f"{size}\n", SIZE_CONTENT_TYPE)
            _check_consistency(size, root, request)
            # never earlier than our last statement on this log, even if the clock stepped back
            timestamp = max(int(time.time()), record["time"] if record else 1)
            line = sign_cosignature(request.body, self.name, self._private_key, timestamp)
            note = request.body + "\n" + "".join(_signature_line(s) for s in log_signatures) + line
            state["logs"][origin] = {"size": request.checkpoint.size, "root": request.checkpoint.root.hex(), "time": timestamp, "checkpoint": note}
            _write_json(self.state_path, state)
            fsync_directory(self.directory)  # the rename too must survive a crash before we answer
        return line

    def info(self) -> dict:
        """What GET / serves: the witness name, vkey and the logs it cosigns."""
        return {"name": self.name, "vkey": self.vkey, "logs": self.logs}


# ---------------------------------------------------------------- HTTP server

class WitnessServer(ThreadingHTTPServer):
    """A threading HTTP server answering the witness protocol for one Witness."""

    daemon_threads = True

    def __init__(self, witness: Witness, address: tuple[str, int], *, quiet: bool = False):
        self.witness, self.quiet = witness, quiet
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"


class _Handler(BaseHTTPRequestHandler):
    """POST …/add-checkpoint, GET …/<origin hash>/checkpoint, GET / and /info."""

    protocol_version = "HTTP/1.1"  # keep-alive, as tlog-witness recommends
    server_version = "assay-witness"
    timeout = 30  # seconds a connection may stall before the thread gives it up
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
    server: WitnessServer

    def do_POST(self) -> None:
        body = self._read_body()
        if body is None:
            return
        if not urlsplit(self.path).path.endswith("/add-checkpoint"):
            self._reply(*Refusal(404, "not found").response())
            return
        try:
            self._reply(*self.server.witness.add_checkpoint(body))
        except Exception as exc:  # a broken state file or disk: answer, log, keep serving
            self.log_message("error: %s", " ".join(str(exc).split()) or type(exc).__name__)
            self._reply(*Refusal(500, "internal error").response())

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path in ("/", "/info") or path.endswith("/info"):
            info = json.dumps(self.server.witness.info(), indent=2, sort_keys=True)
            self._reply(200, "application/json", info.encode("utf-8") + b"\n")
        elif path.endswith("/add-checkpoint"):
            self._reply(*Refusal(405, "add-checkpoint takes a POST").response())
        else:
            text = self._monitored_checkpoint(path)
            if text is None:
                self._reply(*Refusal(404, "not found").response())
            else:
                self._reply(200, TEXT_CONTENT_TYPE, text.encode("utf-8"))

    def _monitored_checkpoint(self, path: str) -> str | None:
        """The latest cosigned checkpoint for …/<sha256(origin) hex>/checkpoint, if any."""
        match = _CHECKPOINT_PATH.search(path)
        if not match:
            return None
        witness = self.server.witness
        for origin in witness.logs:
            if hashlib.sha256(origin.encode("utf-8")).hexdigest() == match.group(1):
                return witness.latest_checkpoint(origin)
        return None

    def _read_body(self) -> bytes | None:
        """The request body, or None after answering 400 / 411 / 413 (and closing the connection)."""
        header = self.headers.get("Content-Length")
        length = whole_number(header) if header is not None else None
        refusal = None
        if header is None or self.headers.get("Transfer-Encoding"):
            refusal = Refusal(411, "a Content-Length is required")
        elif length is None:
            refusal = Refusal(400, "invalid Content-Length")
        elif length > MAX_REQUEST_BYTES:
            refusal = Refusal(413, f"request body larger than {MAX_REQUEST_BYTES} bytes")
        if refusal:
            self.close_connection = True
            self._reply(*refusal.response())
            return None
        body = self.rfile.read(length)
        if len(body) != length:
            self.close_connection = True
            return None
        return body

    def _reply(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if status == 405:
            self.send_header("Allow", "POST")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        """One line per request on stderr, unless the server is quiet."""
        if not self.server.quiet:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")


def make_server(witness: Witness, host: str = "127.0.0.1", port: int = DEFAULT_PORT, *, quiet: bool = False) -> WitnessServer:
    """A bound, not yet serving, witness HTTP server (port 0 picks a free port)."""
    return WitnessServer(witness, (host, port), quiet=quiet)


def serve(witness: Witness, host: str = "127.0.0.1", port: int = DEFAULT_PORT, *, quiet: bool = False,
          announce: Callable[[WitnessServer], None] | None = None) -> None:
    """Serve until SIGTERM or SIGINT (handlers are installed when called from the main thread)."""
    server = make_server(witness, host, port, quiet=quiet)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        def stop(signum, frame):
            threading.Thread(target=server.shutdown, daemon=True).start()

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        if announce:
            announce(server)
        server.serve_forever()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.server_close()


# ---------------------------------------------------------------- client

@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """The default verifying TLS context, made once: building one costs ~25 ms per httpx.Client."""
    return httpx.create_ssl_context()


def _add_checkpoint_url(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/add-checkpoint") else url + "/add-checkpoint"


def request_cosignature(url: str, old_size: int, proof: Sequence[bytes], checkpoint_text: str, timeout: float = 5.0,
                        *, client: httpx.Client | None = None) -> tuple[int, str]:
    """POST an add-checkpoint request to a witness (its submission prefix or the full URL):
    (HTTP status, response text). On 200 the text holds the cosignature line(s); on 409 the
    witness's latest size. AssayError if the witness cannot be reached or answers too much."""
    target = _add_checkpoint_url(url)
    body = build_add_checkpoint_body(old_size, proof, checkpoint_text)
    own = client is None
    http = httpx.Client(timeout=timeout, verify=_ssl_context()) if own else client
    try:
        with http.stream("POST", target, content=body, headers={"Content-Type": "text/plain"}, timeout=timeout) as response:
            data = bytearray()
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > MAX_RESPONSE_BYTES:
                    raise AssayError(f"witness {target} answered more than {MAX_RESPONSE_BYTES} bytes")
            return response.status_code, data.decode("utf-8", "replace")
    except httpx.HTTPError as exc:
        raise AssayError(f"witness {target} did not answer: {' '.join(str(exc).split()) or type(exc).__name__}") from None
    finally:
        if own:
            http.close()
