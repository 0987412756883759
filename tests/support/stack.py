"""A real Assay deployment for end-to-end tests: its own PostgreSQL database, blob and key
folders, a gunicorn web server, and a verifier as a separate service: its own key folder,
registered with the registry over HTTP, its Celery worker on the local Redis with no database
settings at all (it reaches the registry only through the verifier API)."""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PG = {"host": "127.0.0.1", "port": "5432", "user": "postgres"}


def nginx_binary() -> str:
    """Debian's nginx (installed when missing), or ASSAY_NGINX_BIN (another one: a benchmark machine's)."""
    nginx = os.environ.get("ASSAY_NGINX_BIN", "/usr/sbin/nginx")
    if nginx == "/usr/sbin/nginx":
        subprocess.run(["sh", str(REPO / "scripts" / "ensure_deb.sh"), nginx, "nginx-light"], check=True, timeout=900)
    return nginx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def compile_client() -> None:
    """Write the client's bytecode, as an install has it (a bench's client processes): where
    PYTHONDONTWRITEBYTECODE is set and the sources changed since scripts/bootstrap.sh, each process
    would compile them again."""
    import compileall

    compileall.compile_dir(str(REPO / "assay"), quiet=1)


def random_file(path: Path, size_mib: int) -> Path:
    """A file of `size_mib` MiB of random bytes (the benchmarks' blob)."""
    with open(path, "wb") as f:
        for _ in range(size_mib):
            f.write(os.urandom(1 << 20))
    return path


def psql(sql: str) -> None:
    subprocess.run(["psql", "-h", PG["host"], "-U", PG["user"], "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True, capture_output=True)


class Stack:
    def __init__(self, workers: int = 1, extra_env: dict | None = None, nginx: bool = False, *,
                 sqlite: bool = False, verifier: bool = True):
        """`sqlite`: the registry on an SQLite file instead of a PostgreSQL database (the
        benchmarks on a machine without PostgreSQL); `verifier=False`: no verifier or worker
        (transfers need neither)."""
        self.id = uuid.uuid4().hex[:10]
        self.root = Path(tempfile.mkdtemp(prefix=f"assay-stack-{self.id}-"))
        self.db = f"assay_e2e_{self.id}"
        self.port = free_port()
        self.nginx = nginx
        self.web_port = free_port() if nginx else self.port  # gunicorn, behind nginx when there is one
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.sqlite, self.with_verifier = sqlite, verifier
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")},
            "DJANGO_SETTINGS_MODULE": "registry.settings",
            "DATABASE_URL": (f"sqlite:///{self.root / 'assay.sqlite3'}" if sqlite
                             else f"postgres://{PG['user']}@{PG['host']}:{PG['port']}/{self.db}"),
            "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14"),
            "ASSAY_QUEUE": f"assay-test-{self.id}",
            "ASSAY_VAR_DIR": str(self.root / "var"),
            "ASSAY_BLOB_DIR": str(self.root / "var" / "blobs"),
            "ASSAY_KEY_DIR": str(self.root / "var" / "keys"),
            "ASSAY_CACHE_DIR": os.environ.get("ASSAY_CACHE_DIR", str(Path.home() / ".cache" / "assay")),
            "PYTHONUNBUFFERED": "1",
            # the whole-vocabulary trigger search takes minutes per SmolLM2 run on 2 cores; the stacks
            # test the pipeline around it, tests/integration/test_vocab_scan.py tests the search itself
            "ASSAY_VOCAB_SCAN": "off",
            "ASSAY_QUANT_CHECK_TYPES": "off",  # the quantized copies of originals likewise (test_quant_check.py)
            **({"ASSAY_NGINX": "1"} if nginx else {}),
            **(extra_env or {}),
        }
        self.procs: list[subprocess.Popen] = []
        self.token = ""

    def manage(self, *args: str) -> str:
        result = subprocess.run([str(BIN / "python"), "manage.py", *args], cwd=REPO, env=self.env, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def start(self) -> "Stack":
        if not self.sqlite:
            psql(f'CREATE DATABASE "{self.db}"')
        self.manage("migrate", "--noinput")
        self.manage("collectstatic", "--noinput", "-v", "0")  # the web pages' JS and CSS (whitenoise serves STATIC_ROOT)
        out = self.manage("devsetup", "--url", self.url)
        self.token = re.search(r"API token: (\S+)", out).group(1)
        self.admin_user = "admin"
        self.admin_password = re.search(r"password (\S+)\)", out).group(1)  # for logging in through the web UI
        logs = self.root / "logs"
        logs.mkdir()
        self.procs.append(subprocess.Popen(
            [str(BIN / "gunicorn"), "registry.wsgi:application", "--bind", f"127.0.0.1:{self.web_port}", "--workers", "2", "--threads", "4", "--timeout", "600", "--access-logfile", "-"],
            cwd=REPO, env=self.env, stdout=open(logs / "web.log", "w"), stderr=subprocess.STDOUT, start_new_session=True,
        ))
        if self.nginx:
            self.start_nginx()
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(self.url + "/api/v1/trust", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("web server did not start:\n" + self.logs())
            time.sleep(0.3)
        if self.with_verifier:
            self.register_verifier()
            self.start_worker()
        return self

    def start_nginx(self) -> None:
        """Debian's nginx in front of gunicorn, as `ASSAY_NGINX=1 make up` runs it."""
        nginx = nginx_binary()
        conf = self.manage("nginx_conf", "--listen", f"127.0.0.1:{self.port}", "--upstream", f"127.0.0.1:{self.web_port}",
                           "--run-dir", str(self.root / "nginx")).strip()
        self.procs.append(subprocess.Popen([nginx, "-c", conf, "-p", str(self.root / "nginx"), "-e", str(self.root / "nginx" / "error.log")], cwd=self.root,
                                           stdout=open(self.root / "logs" / "nginx.log", "w"), stderr=subprocess.STDOUT,
                                           start_new_session=True))

    def verifier_env(self, name: str = "local") -> dict:
        """What a verifier host has: the broker, the queue, its own folder. No database, no
        registry key or blob folder, no Django settings."""
        registry_only = ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "ASSAY_KEY_DIR", "ASSAY_BLOB_DIR", "ASSAY_VAR_DIR")
        return {**{k: v for k, v in self.env.items() if k not in registry_only},
                "ASSAY_VERIFIER_DIR": str(self.root / "verifiers" / name)}

    def register_verifier(self, name: str = "local") -> str:
        result = subprocess.run([str(BIN / "python"), "-m", "verifier", "register", self.url, "--name", name, "--token", self.token],
                                cwd=REPO, env=self.verifier_env(name), capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"verifier registration failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def start_worker(self, name: str = "local") -> subprocess.Popen:
        proc = subprocess.Popen(
            [str(BIN / "celery"), "-A", "verifier.celery_app", "worker", "--loglevel", "INFO", "--concurrency", str(self.workers), "--pool", "prefork", "-n", f"w{len(self.procs)}-{self.id}@%h"],
            cwd=self.root, env={**self.verifier_env(name), "PYTHONPATH": str(REPO)}, stdout=open(self.root / "logs" / f"worker{len(self.procs)}.log", "w"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def put_blob(self, path: Path) -> str:
        """Upload `path` as a blob with the Assay client; returns its digest."""
        from assay.client.http import RegistryClient
        from assay.core.digest import digest_file

        digest = digest_file(path)
        with RegistryClient(self.url, self.token) as client:
            client.upload_blob(path, digest)
        return digest

    def curl_blob(self, digest: str, out: Path, *, durable: bool = False) -> list[str]:
        """The benchmarks' baseline: curl downloading the blob to `out`; `durable`: then
        `sync FILE` (an fsync of it), as the client makes its file durable before renaming it."""
        if not durable:
            return ["curl", "-sf", "-H", f"Authorization: Bearer {self.token}", f"{self.url}/api/v1/blobs/{digest}", "-o", str(out)]
        return ["sh", "-c", f'curl -sf -H "Authorization: Bearer {self.token}" "{self.url}/api/v1/blobs/{digest}" -o "{out}" && sync "{out}"']

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text()[-4000:]}" for p in sorted((self.root / "logs").glob("*.log")))

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                self.kill(proc, signal.SIGTERM)
        try:
            if not self.sqlite:
                psql(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    # -- the CLI, as a user runs it ----------------------------------------------------------
    def cli_env(self, home: Path) -> dict:
        return {**self.env, "ASSAY_CONFIG_DIR": str(home / "config"), "ASSAY_CACHE_DIR": str(home / "cache"), "HOME": str(home)}

    def assay(self, home: Path, *args: str, check: bool = True, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
        result = subprocess.run([str(BIN / "assay"), *args], env={**self.cli_env(home), **(env or {})}, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, cwd=home)
        if check and result.returncode != 0:
            raise AssertionError(f"assay {' '.join(args)} exited {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}\n{self.logs()}")
        return result

    def client_home(self, home: Path, *, accept_unreproduced: bool = True) -> Path:
        """A CLI home set up as a new user does: logged in, trusting this registry, with a key
        made by `assay keygen` and registered with `assay keys register`. The session's SmolLM2
        Q4_1 (demo/smollm2:q4_1) is published without a base, so its level is `unreproduced`;
        with accept_unreproduced the home accepts that level in `demo`, as a user who wants it
        would (`assay policy allow demo unreproduced`); the default policy refuses it."""
        home.mkdir(parents=True, exist_ok=True)
        steps = [("login", self.url, "--token", self.token), ("trust", "add", self.url, "--yes"), ("keygen",), ("keys", "register")]
        if accept_unreproduced:
            steps.append(("policy", "allow", "demo", "unreproduced"))
        for args in steps:
            self.assay(home, *args)
        return home

    def wait_status(self, reference: str, token: str | None = None, timeout: float = 600) -> dict:
        deadline = time.monotonic() + timeout
        headers = {"Authorization": f"Bearer {token or self.token}"}
        while True:
            status = httpx.get(f"{self.url}/api/v1/releases/{reference}/status", headers=headers, timeout=10).json()
            if status.get("status") in ("verified", "rejected", "error") or time.monotonic() > deadline:
                return status
            time.sleep(1)
