"""The CLI's error contract without a registry: server and file text is printed verbatim (never
as rich markup), bad replies, unreachable hosts, unwritable targets and bad model cards are one
clear line with exit code 1, and concurrent pulls of one digest take turns on its partial file."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from assay.cli import main as cli, ui
from assay.core.errors import AssayError
from assay.client.publish import plan_publish
from assay.client.pull import check_target_writable, exclusive_lock
from tests.support.stack import free_port
from tests.support.tiny_gguf import write_tiny_llama

MARKUP = "[/INST] unbalanced [bold]tags[/] and [link=x]"


class FakeServer:
    """A real HTTP server that is not an Assay registry: it answers each path with a canned reply."""

    def __init__(self):
        self.routes: dict[str, tuple[int, str, bytes]] = {}
        routes = self.routes

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                status, ctype, body = routes.get(self.path.split("?")[0], (404, "text/html", b"<h1>Not Found</h1>"))
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def json(self, path: str, data, status: int = 200) -> None:
        self.routes[path] = (status, "application/json", json.dumps(data).encode())


@pytest.fixture
def server():
    s = FakeServer()
    yield s
    s.httpd.shutdown()


@pytest.fixture
def home(tmp_path, monkeypatch):
    for var in ("ASSAY_REGISTRY", "ASSAY_TOKEN", "ASSAY_KEY_PASSPHRASE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ASSAY_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("ASSAY_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


@pytest.fixture
def run_main(monkeypatch):
    """Run `assay ARGS` through cli.main() in this process; returns (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        stdout, stderr = io.StringIO(), io.StringIO()
        monkeypatch.setattr(ui.out, "_file", stdout)
        monkeypatch.setattr(ui.console, "_file", stderr)
        monkeypatch.setattr(sys, "argv", ["assay", *args])
        try:
            cli.main()
            code = 0
        except SystemExit as exc:
            code = exc.code
        return code, stdout.getvalue(), stderr.getvalue()

    return run


def _status(reason: str = MARKUP) -> dict:
    return {
        "reference": "demo/m:t", "version": 1, "status": "rejected", "status_reason": reason, "digest": "sha256:" + "0" * 64,
        "steps": [{"name": "static", "status": "failed", "summary": f"chat template ends with {MARKUP}"}],
    }


# -- 1. server text is never read as markup ------------------------------------------------------
def test_print_status_prints_markup_like_reason_verbatim(monkeypatch):
    buf = io.StringIO()
    monkeypatch.setattr(ui.out, "_file", buf)
    cli._print_status(_status())
    text = buf.getvalue()
    assert f"demo/m:t version 1: rejected ({MARKUP})" in text
    assert f"chat template ends with {MARKUP}" in text


def test_status_command_with_markup_in_reason(server, home, run_main):
    server.json("/api/v1/releases/demo/m:t/status", _status())
    code, out, err = run_main("status", "demo/m:t", "-r", server.url)
    assert code == 0, err
    assert MARKUP in out and "Traceback" not in err


def test_error_message_with_markup_is_one_verbatim_line(server, home, run_main):
    long_reason = MARKUP + " " + "x" * 200  # longer than 80 columns: must not be wrapped either
    server.json("/api/v1/releases/demo/m:t/status", {"error": long_reason}, status=409)
    code, out, err = run_main("status", "demo/m:t", "-r", server.url)
    assert code == 1
    assert err == f"error: registry answered 409: {long_reason}\n"


def test_print_error_keeps_markup_verbatim(monkeypatch):
    buf = io.StringIO()
    monkeypatch.setattr(ui.console, "_file", buf)
    ui.print_error("verification failed", MARKUP)
    assert buf.getvalue() == f"verification failed: {MARKUP}\n"


# -- 2. replies that are not JSON, hosts that cannot be reached ----------------------------------
def test_login_to_a_server_that_is_not_a_registry(server, home):
    server.routes["/api/v1/whoami"] = (200, "text/html", b"<html>welcome to my blog</html>")
    result = subprocess.run([str(Path(sys.executable).parent / "assay"), "login", server.url, "--token", "t"],
                            capture_output=True, text=True, env=os.environ.copy(), stdin=subprocess.DEVNULL)
    assert result.returncode == 1
    assert result.stderr == f"error: {server.url} did not answer with JSON (GET /api/v1/whoami: HTTP 200, text/html): is it an Assay registry?\n"
    assert not (home / "config" / "credentials.json").exists()


def test_json_that_is_not_a_registry_reply(server, home, run_main):
    server.json("/api/v1/whoami", ["not", "an", "object"])
    code, _, err = run_main("login", server.url, "--token", "t")
    assert code == 1 and "did not answer with JSON" in err
    server.json("/api/v1/whoami", {"hello": "world"})
    code, _, err = run_main("login", server.url, "--token", "t")
    assert code == 1 and "is it an Assay registry?" in err and "Traceback" not in err


def test_trust_add_to_a_server_that_is_not_a_registry(server, home, run_main):
    server.json("/api/v1/trust", {"hello": "world"})
    code, _, err = run_main("trust", "add", server.url, "--yes")
    assert code == 1 and "is it an Assay registry?" in err


@pytest.mark.parametrize("url, expected", [
    (f"http://127.0.0.1:{free_port()}", "Connection refused"),
    ("http://no-such-host.invalid", "cannot reach the registry at http://no-such-host.invalid:"),
    ("localhost:8000", "must start with http:// or https://"),
])
def test_unreachable_registry_is_one_line(home, run_main, url, expected):
    code, out, err = run_main("login", url, "--token", "t")
    assert code == 1
    assert err.startswith("error: ") and expected in err and err.count("\n") == 1, err


# -- 3. pull targets that cannot be written ------------------------------------------------------
def test_target_under_a_regular_file_is_refused(tmp_path):
    regular = tmp_path / "file.txt"
    regular.write_text("x")
    with pytest.raises(AssayError, match="is not a folder"):
        check_target_writable(regular / "sub" / "model.gguf")
    assert not (tmp_path / "file.txt" / "sub").exists()


def test_target_that_is_a_folder_is_refused(tmp_path):
    (tmp_path / "model.gguf").mkdir()
    with pytest.raises(AssayError, match="it is a folder"):
        check_target_writable(tmp_path / "model.gguf")


def _as_nobody(fn) -> int:
    """Run fn() in a forked child that dropped root for the unprivileged `nobody`; its exit code."""
    import pwd

    nobody = pwd.getpwnam("nobody")
    pid = os.fork()
    if pid == 0:  # the child: no exec, the modules are already loaded
        code = 1
        try:
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            code = fn()
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_target_in_a_read_only_folder_is_refused():
    """Root may write anywhere, so as root the check runs in a child that became `nobody`."""
    import shutil
    import tempfile

    top = Path(tempfile.mkdtemp(prefix="assay-ro-"))
    try:
        top.chmod(0o755)
        folder = top / "ro"
        folder.mkdir()
        folder.chmod(0o555)
        target = folder / "new" / "model.gguf"

        def check() -> int:
            try:
                check_target_writable(target)
            except AssayError as exc:
                return 7 if "no permission to write in" in str(exc) else 8
            return 9

        assert (check() if os.geteuid() != 0 else _as_nobody(check)) == 7
        assert not (folder / "new").exists()
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_writable_targets_pass(tmp_path):
    check_target_writable(tmp_path / "model.gguf")
    check_target_writable(tmp_path / "not" / "yet" / "there" / "model.gguf")


# -- 4. a model card that is not UTF-8 -----------------------------------------------------------
def test_non_utf8_model_card_is_refused(tmp_path):
    model = write_tiny_llama(tmp_path / "tiny.gguf")
    card = tmp_path / "card.md"
    card.write_bytes(b"# My model\n\xff\xfe latin-1 \xe9\n")
    with pytest.raises(AssayError, match=r"model card .*card\.md is not UTF-8 text \(byte 0xff at offset 11\)"):
        plan_publish(Path(model), "demo/m:t", base_ref=None, recipe_path=None, model_card_path=card)


def test_publish_with_non_utf8_model_card_exits_1(tmp_path, home, run_main):
    model = write_tiny_llama(tmp_path / "tiny.gguf")
    card = tmp_path / "card.md"
    card.write_bytes(b"\xe9t\xe9")
    code, _, err = run_main("publish", str(model), "demo/m:t", "--model-card", str(card), "-r", "http://127.0.0.1:1")
    assert code == 1 and "is not UTF-8 text" in err and "Traceback" not in err


def test_recipe_that_is_not_a_json_object_is_refused(tmp_path):
    model = write_tiny_llama(tmp_path / "tiny.gguf")
    Path(str(model) + ".recipe.json").write_text("[1, 2]")
    with pytest.raises(AssayError, match="is not a JSON object"):
        plan_publish(Path(model), "demo/m:t", base_ref="demo/base:f16", recipe_path=None, model_card_path=None)


# -- 5. concurrent pulls of one digest take turns --------------------------------------------------
def test_exclusive_lock_makes_a_second_holder_wait(tmp_path):
    lock = tmp_path / "partial" / "x.lock"
    events: list[str] = []

    def second():
        with exclusive_lock(lock, lambda: events.append("waiting")):
            events.append("second has it")

    with exclusive_lock(lock):
        thread = threading.Thread(target=second)
        thread.start()
        deadline = time.monotonic() + 5
        while "waiting" not in events and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        assert events == ["waiting"]  # flock is per open file: a second open waits, even in one process
        events.append("first done")
    thread.join(5)
    assert events == ["waiting", "first done", "second has it"]
    assert not lock.exists()  # the last holder removes it: nothing is left in the partial folder


def test_exclusive_lock_between_processes(tmp_path):
    lock = tmp_path / "x.lock"
    code = (f"import sys, time; sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})\n"
            "from pathlib import Path; from assay.client.pull import exclusive_lock\n"
            f"with exclusive_lock(Path({str(lock)!r}), lambda: print('waited', flush=True)):\n"
            "    print('got it', flush=True)\n")
    with exclusive_lock(lock):
        child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline() == "waited\n"
        time.sleep(0.2)
        assert child.poll() is None  # still waiting for us
    out, _ = child.communicate(timeout=10)
    assert out == "got it\n" and child.returncode == 0


def _wait_until_reading_stdin(pid: int, timeout: float = 60) -> None:
    """Until process `pid` blocks in read(0, ...) (Linux: /proc/PID/syscall; read is 0 on x86-64, 63 on arm64)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            fields = Path(f"/proc/{pid}/syscall").read_text().split()
        except OSError:
            fields = []
        if fields[:2] in (["0", "0x0"], ["63", "0x0"]):
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} never started reading its input")


def test_ctrl_c_at_a_prompt_exits_130(tmp_path):
    """click turns Ctrl-C into Abort; the documented exit code is still 130 (a declined or
    closed prompt stays "aborted", exit 1)."""
    import signal

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}, "ASSAY_CONFIG_DIR": str(tmp_path)}
    assay = str(Path(sys.executable).parent / "assay")
    # A test run started in the background (`make test &`) ignores SIGINT, and a child inherits that:
    # the user's Ctrl-C reaches a CLI whose SIGINT is at its default, as here.
    child = subprocess.Popen([assay, "login", "http://127.0.0.1:9"], env=env, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    _wait_until_reading_stdin(child.pid)  # at the token prompt (however long the start takes)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=30)
    assert child.returncode == 130 and "interrupted" in err.decode() and "Traceback" not in err.decode(), err.decode()[-2000:]
    closed = subprocess.run([assay, "login", "http://127.0.0.1:9"], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    assert closed.returncode == 1 and "aborted" in closed.stderr


def test_shell_completion_scripts_and_answers(tmp_path):
    """README: eval "$(_ASSAY_COMPLETE=bash_source assay)" (zsh_source, fish_source likewise)."""
    assay = str(Path(sys.executable).parent / "assay")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}, "ASSAY_CONFIG_DIR": str(tmp_path)}
    for shell in ("bash", "zsh", "fish"):
        script = subprocess.run([assay], env={**env, "_ASSAY_COMPLETE": f"{shell}_source"}, capture_output=True, text=True)
        assert script.returncode == 0 and "_ASSAY_COMPLETE" in script.stdout, shell
    answer = subprocess.run([assay], env={**env, "_ASSAY_COMPLETE": "bash_complete", "COMP_WORDS": "assay policy s", "COMP_CWORD": "2"},
                            capture_output=True, text=True)
    assert answer.stdout.split() == ["plain,set", "plain,show"]


def test_config_and_cache_follow_the_platform(tmp_path, monkeypatch):
    from assay.client import config

    monkeypatch.delenv("ASSAY_CONFIG_DIR", raising=False)
    monkeypatch.delenv("ASSAY_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    if sys.platform.startswith("linux"):
        assert config.config_dir() == tmp_path / "xdg-config" / "assay" and config.cache_dir() == tmp_path / "xdg-cache" / "assay"
    monkeypatch.setenv("ASSAY_CONFIG_DIR", str(tmp_path / "explicit"))
    assert config.config_dir() == tmp_path / "explicit"


# -- key and config files ----------------------------------------------------------------------------

def test_keygen_never_replaces_a_key_and_never_puts_the_public_key_over_the_private_one(home, run_main):
    """A second keygen at the same path is refused and the key stays; a private key path ending
    in .pub (where its public key goes) is refused before anything is written: it used to write
    the private key, then the public key over it, and report success with the private key lost."""
    keys_dir = home / "k"
    code, _, err = run_main("keygen", "--out", str(keys_dir / "a.key"))
    assert code == 0, err
    before = (keys_dir / "a.key").read_bytes()
    code, _, err = run_main("keygen", "--out", str(keys_dir / "a.key"))
    assert code == 1 and "a.key already exists; refusing to overwrite it" in err and "Traceback" not in err
    assert (keys_dir / "a.key").read_bytes() == before
    code, _, err = run_main("keygen", "--out", str(keys_dir / "my.pub"))
    assert code == 1 and "Traceback" not in err
    assert "my.pub is where its public key would go" in " ".join(err.split()), err
    assert not (keys_dir / "my.pub").exists()


def test_keygen_that_cannot_write_the_public_key_keeps_no_half_pair(home, run_main):
    """The public key's path is a folder: one clear line, exit 1, and no private key is left
    behind without its public key (a rerun would be refused as 'already exists')."""
    keys_dir = home / "k"
    (keys_dir / "b.pub").mkdir(parents=True)
    code, _, err = run_main("keygen", "--out", str(keys_dir / "b.key"))
    assert code == 1 and "Traceback" not in err
    assert f"cannot write the public key {keys_dir / 'b.pub'}: it is a folder" in " ".join(err.split()), err
    assert sorted(p.name for p in keys_dir.iterdir()) == ["b.pub"]


@pytest.mark.parametrize("content", ['[]', '"text"', '{"registries": []}', '{"default": 5}',
                                     '{"default": "http://127.0.0.1:9", "registries": {"http://127.0.0.1:9": "token"}}',
                                     '{"registries": {"http://127.0.0.1:9": {"token": 7}}}'])
@pytest.mark.parametrize("command", [("whoami",), ("whoami", "-r", "http://127.0.0.1:9"), ("logout",)])
def test_a_damaged_credentials_file_is_one_clear_line(home, run_main, content, command):
    """Valid JSON of another shape in credentials.json was an AttributeError traceback."""
    path = home / "config" / "credentials.json"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    code, _, err = run_main(*command)
    assert code == 1 and "Traceback" not in err, err
    assert f"{path} is not a credentials file" in " ".join(err.split()), err
    assert path.read_text() == content  # left for the user to fix, not overwritten


@pytest.mark.parametrize("policy, state", [(b"\xff{", None), (b"{", None), (b"{}", b"\xff\xfe")])
@pytest.mark.parametrize("command", [("pull", "demo/m:t"), ("trust", "show"), ("trust", "show", "--json"), ("policy", "show")])
def test_a_damaged_trust_policy_or_state_is_one_clear_line(home, run_main, policy, state, command):
    """A policy.json or state.json that is not UTF-8 (a disk error, another tool's file) was a
    UnicodeDecodeError traceback, as was `trust show --json` of a policy that is not JSON; now
    each is one line naming the file, exit 1, and the file is left as it is."""
    from assay.client.config import registry_dir

    url = "http://127.0.0.1:9"
    folder = registry_dir(url)
    folder.mkdir(parents=True)
    (folder / "policy.json").write_bytes(policy)
    if state is not None:
        (folder / "state.json").write_bytes(state)
    code, _, err = run_main(*command, "-r", url)
    if command[0] == "trust" and state is not None:
        assert code == 0, err  # shows the policy file, which is fine
        return
    assert code == 1 and "Traceback" not in err, err
    damaged = folder / ("state.json" if state is not None else "policy.json")
    assert f"{damaged} is not valid JSON" in " ".join(err.split()), err
    assert (folder / "policy.json").read_bytes() == policy
