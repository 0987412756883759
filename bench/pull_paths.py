"""Where a pull's time goes: one blob downloaded through nginx (X-Accel-Redirect) and straight
from gunicorn, by curl, by a bare receive loop, by the receive loop hashing inline, and by the
client's own download (hash and write threads, write-behind, fsync), in the same run.

    .venv/bin/python bench/pull_paths.py [--size-mib 1024] [--sqlite] [--rounds 2]

The files land in the temporary folder (TMPDIR=/dev/shm takes the disk out). Prints MB/s for
each; asserts nothing.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.stack import BIN, Stack, random_file  # noqa: E402

RECEIVE = """
import hashlib, sys, time
from assay.client import fastget
url, token, mode = sys.argv[1:4]
t = time.perf_counter()
response = fastget.get(url, {"Authorization": "Bearer " + token}, 60)
buffer, total, h = memoryview(bytearray(4 << 20)), 0, hashlib.sha256()
while n := response.readinto(buffer):
    total += n
    if mode == "hash":
        h.update(buffer[:n])
print(time.perf_counter() - t)
"""

PULL = """
import sys, time
from pathlib import Path
from assay.client.http import RegistryClient
url, token, digest, path = sys.argv[1:5]
with RegistryClient(url, token) as c:
    t = time.perf_counter()
    assert c.download_blob(digest, Path(path)) == digest
    print(time.perf_counter() - t)
"""


def seconds(cmd: list[str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-1500:])
    return float(result.stdout) if result.stdout.strip() else time.perf_counter() - start


def measure(stack: Stack, digest: str, tmp: Path, size_mb: float, label: str) -> None:
    url = f"{stack.url}/api/v1/blobs/{digest}"
    py = str(BIN / "python")
    rows = {
        "curl GET": lambda: seconds(stack.curl_blob(digest, tmp / "curl.bin")),
        "receive only": lambda: seconds([py, "-c", RECEIVE, url, stack.token, "read"]),
        "receive + hash inline": lambda: seconds([py, "-c", RECEIVE, url, stack.token, "hash"]),
        "client download (durable)": lambda: seconds([py, "-c", PULL, stack.url, stack.token, digest, str(tmp / "pulled.bin")]),
    }
    for name, run in rows.items():
        elapsed = run()
        for leftover in ("curl.bin", "pulled.bin"):
            (tmp / leftover).unlink(missing_ok=True)
        print(f"  {label:9s} {name:27s} {size_mb / elapsed:7.0f} MB/s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--sqlite", action="store_true", help="the registry on SQLite (a machine without PostgreSQL)")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="assay-paths-"))
    src = random_file(tmp / "blob.bin", args.size_mib)
    size_mb = src.stat().st_size / 1e6
    print(f"{args.size_mib} MiB into {tmp}")
    try:
        for nginx in (True, False):
            stack = Stack(nginx=nginx, sqlite=args.sqlite, verifier=False).start()
            try:
                digest = stack.put_blob(src)
                for _ in range(args.rounds):
                    measure(stack, digest, tmp, size_mb, "nginx" if nginx else "gunicorn")
            finally:
                stack.stop()
    finally:
        subprocess.run(["rm", "-rf", str(tmp)])


if __name__ == "__main__":
    main()
