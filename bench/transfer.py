"""Upload and pull a generated file through a real registry (gunicorn + PostgreSQL), next to
OpenSSL's SHA-256 and `curl` of the same file measured in the same run.

    .venv/bin/python bench/transfer.py [--size-mib 1024] [--nginx]

With --nginx the registry runs behind Debian's nginx (as `ASSAY_NGINX=1 make up`): downloads
leave through nginx (X-Accel-Redirect), and curl's baseline is nginx serving the same file.

Prints MB/s, peak RSS of the client and of the server processes, and ratios to the baselines.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from assay.core.digest import digest_file  # noqa: E402
from tests.support.stack import BIN, Stack, compile_client, random_file  # noqa: E402

CLIENT = """
import sys, time
from pathlib import Path
from assay.client.http import RegistryClient
from assay.core.digest import digest_file
url, token, path, mode, digest = sys.argv[1:6]
with RegistryClient(url, token) as c:
    t = time.perf_counter()
    if mode == "upload":
        c.upload_blob(Path(path), digest)
    else:  # "download" (checked by SHA-256) or "download:blake3:<hex>" (checked by the BLAKE3 a verdict repeats)
        expected = mode.split(":", 1)[1] if ":" in mode else digest
        got = c.download_blob(digest, Path(path), algorithm=expected.split(":")[0])
        assert got == expected, got
    print(time.perf_counter() - t)
"""


def timed(cmd: list[str], env=None) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (KiB) of this one child (os.wait4's own rusage, not the running
    maximum over all children), stdout."""
    os.sync()  # each step starts with no dirty pages left by the one before (the upload's 1 GiB)
    with tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env)
        out = proc.stdout.read()
        proc.stdout.close()
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{cmd[0]} exited {proc.returncode}: {err.read().decode(errors='replace')[-2000:]}")
    return elapsed, usage.ru_maxrss, out.decode()


def server_peak_rss_kib(stack: Stack) -> int:
    web = stack.procs[0]  # gunicorn
    pids = [web.pid] + [int(p) for p in subprocess.run(["pgrep", "-P", str(web.pid)], capture_output=True, text=True).stdout.split()]
    peak = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]))
    return peak


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--nginx", action="store_true", help="the registry behind nginx")
    ap.add_argument("--rounds", type=int, default=3, help="downloads by the client and by curl, taking turns")
    ap.add_argument("--sqlite", action="store_true", help="the registry on SQLite (a machine without PostgreSQL)")
    args = ap.parse_args()
    compile_client()
    size = args.size_mib * 1024 * 1024
    stack = Stack(nginx=args.nginx, sqlite=args.sqlite, verifier=False).start()
    tmp = Path(tempfile.mkdtemp(prefix="assay-bench-"))
    try:
        src = random_file(tmp / "blob.bin", args.size_mib)
        mb = size / 1e6
        # SHA-256 alone, by OpenSSL as hashlib runs it (coreutils' sha256sum lacks the SHA extensions)
        t_sha, _, out = timed(["openssl", "dgst", "-sha256", str(src)])
        digest = "sha256:" + out.split()[-1]
        t_b3 = time.perf_counter()
        blake3 = digest_file(src, algorithm="blake3")  # one core, as the client hashes
        t_b3 = time.perf_counter() - t_b3
        env = {**os.environ, "ASSAY_CACHE_DIR": str(tmp / "cache")}
        py = [str(BIN / "python"), "-c", CLIENT, stack.url, stack.token]

        _, rss_up, out = timed(py + [str(src), "upload", digest], env)
        t_up = float(out.strip())
        rss_server_up = server_peak_rss_kib(stack)

        # Baselines through the same server: curl streaming the same bytes up and down.
        auth = f"Authorization: Bearer {stack.token}"
        upload_id = httpx.post(f"{stack.url}/api/v1/uploads", headers={"Authorization": f"Bearer {stack.token}"}).json()["upload_id"]
        # (behind nginx, curl sends the whole file in one request straight to gunicorn: nginx takes
        # bodies up to one chunk, and this is the storage path the client's chunks end in)
        up_url = f"http://127.0.0.1:{stack.web_port}" if args.nginx else stack.url
        # ...then the same finalize the client does (the server hashes the upload before it keeps it)
        t_curl_up, _, _ = timed(["sh", "-c", f'curl -sf -X PATCH -H "{auth}" -H "Content-Type: application/octet-stream" '
                                             f'-H "Content-Range: bytes 0-{size - 1}/{size}" --upload-file "{src}" '
                                             f'"{up_url}/api/v1/uploads/{upload_id}" -o /dev/null && '
                                             f'curl -sf -X PUT -H "{auth}" "{up_url}/api/v1/uploads/{upload_id}?digest={digest}" -o /dev/null'])
        # Downloads in rounds, the client and curl taking turns, each measured after the same
        # `sync`; the median of each is reported (a single first pull right after a 1 GiB upload
        # varied by 2x between runs on the same machine).
        downs, fast, curls, durables, rss_down = [], [], [], [], 0
        for _ in range(args.rounds):
            _, rss, out = timed(py + [str(tmp / "pulled.bin"), "download", digest], env)
            downs.append(float(out.strip()))
            rss_down = max(rss_down, rss)
            (tmp / "pulled.bin").unlink()
            _, rss, out = timed(py + [str(tmp / "pulled.bin"), f"download:{blake3}", digest], env)
            fast.append(float(out.strip()))
            rss_down = max(rss_down, rss)
            (tmp / "pulled.bin").unlink()
            curls.append(timed(stack.curl_blob(digest, tmp / "curl.bin"))[0])
            (tmp / "curl.bin").unlink()
            # The client fsyncs the file before it may be renamed into place; curl does not. The
            # durable baseline is curl then `sync FILE` (fsync of that file), timed together.
            durables.append(timed(stack.curl_blob(digest, tmp / "curl.bin", durable=True))[0])
            (tmp / "curl.bin").unlink()
        t_down, t_fast, t_curl_down, t_curl_durable = (statistics.median(x) for x in (downs, fast, curls, durables))
        rss_server = server_peak_rss_kib(stack)

        print(f"file: {size / 2**20:.0f} MiB; SHA-256 (openssl) {mb / t_sha:.0f} MB/s; BLAKE3 (one core) {mb / t_b3:.0f} MB/s; "
              f"{'behind nginx' if args.nginx else 'gunicorn directly'}")
        print(f"upload  (assay client, chunked+finalize): {mb / t_up:7.1f} MB/s  | curl PATCH+finalize {mb / t_curl_up:7.1f} MB/s  | ratio {t_curl_up / t_up:.2f}")
        print(f"pull    (assay client, hash while streaming): {mb / t_down:7.1f} MB/s  | curl GET {mb / t_curl_down:7.1f} MB/s  | ratio {t_curl_down / t_down:.2f}"
              f"  (median of runs: client {', '.join(f'{mb / t:.0f}' for t in downs)}; curl {', '.join(f'{mb / t:.0f}' for t in curls)})")
        print(f"pull    (checked by BLAKE3, as when the verdicts repeat it): {mb / t_fast:7.1f} MB/s  | curl GET {mb / t_curl_down:7.1f} MB/s  | "
              f"ratio {t_curl_down / t_fast:.2f}  (runs: {', '.join(f'{mb / t:.0f}' for t in fast)})")
        print(f"pull vs curl GET + fsync of the file (both durable): curl {mb / t_curl_durable:7.1f} MB/s | ratio {t_curl_durable / t_down:.2f} "
              f"(SHA-256), {t_curl_durable / t_fast:.2f} (BLAKE3)")
        print(f"pull vs SHA-256 of the file alone: ratio {t_sha / t_down:.2f}")
        print(f"peak RSS: upload client {rss_up / 1024:.0f} MiB, pull client {rss_down / 1024:.0f} MiB, "
              f"server {rss_server / 1024:.0f} MiB (after upload {rss_server_up / 1024:.0f} MiB)")
    finally:
        stack.stop()
        subprocess.run(["rm", "-rf", str(tmp)])


if __name__ == "__main__":
    main()
