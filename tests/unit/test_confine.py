"""Children that read strangers' files run under Landlock (assay/toolchain/confine.py): code a model,
checkpoint or template gets to run there cannot read the verifier's key or registration token, nor
the client's config folder, open TCP connections, or reach the process that started it."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from assay.toolchain import confine
from assay.toolchain.quantize import run_logged

needs_landlock = pytest.mark.skipif(confine.abi_version() == 0, reason="the kernel offers no Landlock")

PROBE = r"""
import json, os, signal, socket, sys
args = json.loads(sys.argv[1])
def attempt(f):
    try:
        f()
        return "allowed"
    except OSError as exc:
        return type(exc).__name__
out = {
    "key": attempt(lambda: open(args["key"]).read()),
    "list": attempt(lambda: os.listdir(args["protected"])),
    "overwrite": attempt(lambda: open(args["key"], "w").write("x")),
    "job_read": attempt(lambda: open(args["job_file"]).read()),
    "job_write": attempt(lambda: open(os.path.join(args["job"], "out"), "w").write("x")),
    "elsewhere": attempt(lambda: open(args["elsewhere"]).read()),
    "tcp": attempt(lambda: socket.create_connection(("127.0.0.1", args["port"]), timeout=5).close()),
    "parent_memory": attempt(lambda: open(f"/proc/{args['parent']}/mem", "rb").read(1)),
    "parent_environ": attempt(lambda: open(f"/proc/{args['parent']}/environ", "rb").read()),
    "signal_parent": attempt(lambda: os.kill(args["parent"], 0)),
}
print(json.dumps(out))
"""


@pytest.fixture
def verifier_like(tmp_path):
    """A folder like a verifier's: its key at the top, a jobs folder with a job's input inside."""
    protected = tmp_path / "verifier"
    job = protected / "jobs" / "job-1"
    job.mkdir(parents=True)
    (protected / "verifier.key").write_text("PRIVATE KEY")
    (job / "model.gguf").write_bytes(b"GGUF")
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("fine")
    confine.protect(protected, except_for=[protected / "jobs"])
    yield {"protected": str(protected), "key": str(protected / "verifier.key"), "job": str(job),
           "job_file": str(job / "model.gguf"), "elsewhere": str(elsewhere)}
    confine.unprotect_all()


def _probe(paths: dict) -> dict:
    import json

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    try:
        args = json.dumps({**paths, "port": server.getsockname()[1], "parent": os.getpid()})
        with confine.confined() as confinement:
            done = subprocess.run([sys.executable, "-c", PROBE, args], capture_output=True, text=True, timeout=60, **confinement)
    finally:
        server.close()
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@needs_landlock
def test_a_confined_child_reaches_the_jobs_folder_and_nothing_else_of_the_protected_one(verifier_like):
    seen = _probe(verifier_like)
    assert seen["key"] == seen["overwrite"] == "PermissionError", seen
    assert seen["list"] == "allowed", seen  # names only: Python lists every folder on sys.path
    assert seen["job_read"] == seen["job_write"] == seen["elsewhere"] == "allowed", seen
    assert seen["tcp"] == "PermissionError", seen
    assert seen["parent_memory"] == seen["signal_parent"] == seen["parent_environ"] == "PermissionError", seen
    assert Path(verifier_like["key"]).read_text() == "PRIVATE KEY"


@needs_landlock
def test_without_confinement_the_same_child_reads_the_key(verifier_like, monkeypatch):
    """The test's control: what the rules take away, an unconfined child has."""
    monkeypatch.setenv("ASSAY_NO_CONFINE", "1")
    seen = _probe(verifier_like)
    assert seen["key"] == seen["tcp"] == seen["signal_parent"] == "allowed", seen
    if os.geteuid() == 0:  # root reads a non-dumpable process's /proc files, unless it gave up its capabilities
        assert seen["parent_environ"] == "allowed", seen
    assert confine.status().startswith("none (ASSAY_NO_CONFINE")


@needs_landlock
def test_the_tools_children_are_confined(verifier_like, tmp_path):
    """run_logged starts llama.cpp's tools, the converter and the importance-matrix child."""
    log = tmp_path / "log.txt"
    rc = run_logged([sys.executable, "-c", f"open({verifier_like['key']!r}).read()"], cwd=tmp_path, env=dict(os.environ),
                    log_path=log, timeout_s=60)
    assert rc != 0 and "PermissionError" in log.read_text()


@needs_landlock
def test_a_verifier_protects_its_folder_when_it_takes_a_job(tmp_path, monkeypatch):
    from verifier import pipeline

    monkeypatch.setenv("ASSAY_VERIFIER_DIR", str(tmp_path / "v"))
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "registration.json").write_text('{"token": "secret"}')
    try:
        jobs = pipeline._jobs_dir()
        (jobs / "input").write_text("model")
        code = f"print(open({str(jobs / 'input')!r}).read()); open({str(tmp_path / 'v' / 'registration.json')!r}).read()"
        with confine.confined() as confinement:
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, **confinement)
        assert done.stdout.strip() == "model" and "PermissionError" in done.stderr
    finally:
        confine.unprotect_all()


def test_a_folder_holding_the_python_the_children_run_is_never_protected(tmp_path):
    """Protecting it would leave no child able to start: such a folder is left open (and a folder
    that does not exist protects nothing)."""
    allowed = confine._allowed_paths({Path(sys.prefix).parent: (), tmp_path / "missing": ()})
    assert allowed == [Path("/")]


def test_the_rules_allow_everything_around_a_protected_folder(tmp_path):
    (tmp_path / "a" / "secret" / "jobs").mkdir(parents=True)
    (tmp_path / "a" / "sibling").mkdir()
    (tmp_path / "b").mkdir()
    secret = (tmp_path / "a" / "secret").resolve()
    allowed = confine._allowed_paths({secret: (secret / "jobs",)})
    assert secret not in allowed and not any(secret in p.parents for p in allowed if p != secret / "jobs")
    assert secret / "jobs" in allowed
    assert {(tmp_path / "a" / "sibling").resolve(), (tmp_path / "b").resolve()} <= set(allowed)
    assert Path("/") not in allowed and Path("/usr") in allowed or Path("/usr").is_symlink()


def test_the_assay_command_protects_its_config_folder(tmp_path, monkeypatch):
    from assay.cli.main import cli

    monkeypatch.setenv("ASSAY_CONFIG_DIR", str(tmp_path / "config"))
    try:
        assert CliRunner().invoke(cli, ["policy", "show"]).exit_code in (0, 1)
        assert (tmp_path / "config") in confine._protected
    finally:
        confine.unprotect_all()


def test_a_verifiers_steps_say_how_their_children_were_confined():
    from verifier.steps import worker_profile

    profile = worker_profile()
    assert profile["confinement"] == confine.status()
    assert profile["confinement"].startswith(("landlock ABI ", "none ("))



@needs_landlock
def test_a_protected_folder_inside_the_checkout_leaves_its_code_importable(tmp_path):
    """make up keeps the verifier's folder in the checkout (var/verifier), beside the packages the
    children import: the checkout's folders must stay listable, or the import system finds nothing
    (the template renderer failed with "No module named 'verifier'")."""
    repo = Path(__file__).resolve().parents[2]
    protected = repo / "var" / f"confine-test-{os.getpid()}"
    (protected / "jobs").mkdir(parents=True)
    (protected / "verifier.key").write_text("PRIVATE KEY")
    confine.protect(protected, except_for=[protected / "jobs"])
    try:
        code = f"import verifier.template_child, runner.child; open({str(protected / 'verifier.key')!r}).read()"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(repo)}
        with confine.confined() as confinement:
            done = subprocess.run([sys.executable, "-s", "-c", code], cwd=repo, env=env, capture_output=True, text=True,
                                  timeout=120, **confinement)
        assert "PermissionError" in done.stderr and "ModuleNotFoundError" not in done.stderr, done.stderr
    finally:
        confine.unprotect_all()
        import shutil

        shutil.rmtree(protected)
