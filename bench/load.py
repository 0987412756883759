"""Many clients at once against a real registry (gunicorn, or behind nginx with --nginx):

1. N concurrent pulls of one M MB blob with the Assay client (hash while streaming), against
   N concurrent `curl` downloads of the same URL in the same run: aggregate MB/s and the ratio.
   After an uncounted warm-up, each round runs every kind once (SHA-256 and BLAKE3 checked
   pulls, curl, curl + fsync), a different kind first each round; the ratios are taken within a
   round and their median printed, as runs on a shared 2-core machine drift.
2. S slow connections that send one header line a second and never finish their request, held
   open while legitimate requests are timed: how long `GET /api/v1/trust` takes meanwhile.

    .venv/bin/python bench/load.py [--nginx] [--pulls 50] [--size-mib 100] [--slow 200] [--rounds 3]

Goals (issue 13): aggregate pull >= 0.8x curl's; with 200 slow connections legitimate requests
still answered within 1 s. Prints the numbers and ratios; asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from assay.core.digest import digest_file  # noqa: E402
from tests.support.stack import BIN, Stack, compile_client, random_file  # noqa: E402

PULL = """
import sys
from pathlib import Path
from assay.client.http import RegistryClient
url, token, digest, path = sys.argv[1:5]
expected = sys.argv[5] if len(sys.argv) > 5 else digest  # a blake3: digest: checked by BLAKE3, as when the verdicts repeat it
with RegistryClient(url, token) as c:
    assert c.download_blob(digest, Path(path), algorithm=expected.split(":")[0]) == expected
"""


def run_all(cmds: list[list[str]]) -> tuple[float, float]:
    """Run the commands at once: (wall seconds, the commands' CPU seconds, user + system, from
    the children's rusage)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for c in cmds]
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(err.decode(errors="replace")[-1500:])
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run_once(command_of, count: int, tmp: Path) -> tuple[float, float]:
    """`count` pulls of one kind at once, each into its own file, removed afterwards."""
    try:
        return run_all([command_of(i) for i in range(count)])
    finally:
        for i in range(count):
            (tmp / f"p{i}").unlink(missing_ok=True)


def slow_clients(host: str, port: int, count: int, stop: threading.Event) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        s = socket.create_connection((host, port))
        s.sendall(b"GET /api/v1/trust HTTP/1.1\r\nHost: x\r\n")
        socks.append(s)

    def drip():
        while not stop.is_set():
            for s in socks:
                try:
                    s.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    pass
            stop.wait(1.0)

    threading.Thread(target=drip, daemon=True).start()
    return socks


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nginx", action="store_true")
    ap.add_argument("--pulls", type=int, default=50)
    ap.add_argument("--size-mib", type=int, default=100)
    ap.add_argument("--slow", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sqlite", action="store_true", help="the registry on SQLite (a machine without PostgreSQL)")
    args = ap.parse_args()
    compile_client()
    stack = Stack(nginx=args.nginx, sqlite=args.sqlite, verifier=False).start()
    tmp = Path(tempfile.mkdtemp(prefix="assay-load-"))
    try:
        src = random_file(tmp / "blob.bin", args.size_mib)
        digest = stack.put_blob(src)
        blake3 = digest_file(src, algorithm="blake3")
        total_mb = args.pulls * src.stat().st_size / 1e6
        kinds = {  # name -> the command of pull i
            "sha256": lambda i: [str(BIN / "python"), "-c", PULL, stack.url, stack.token, digest, str(tmp / f"p{i}")],
            "blake3": lambda i: [str(BIN / "python"), "-c", PULL, stack.url, stack.token, digest, str(tmp / f"p{i}"), blake3],
            "curl": lambda i: stack.curl_blob(digest, tmp / f"p{i}"),
            # The client fsyncs each file before it takes its name; curl does not. The durable
            # baseline: each curl followed by `sync FILE` (an fsync of that file).
            "curl_durable": lambda i: stack.curl_blob(digest, tmp / f"p{i}", durable=True),
        }
        # Warm-up, not counted: the first run against a fresh stack pays for gunicorn's and
        # Python's first imports and compiled files, whichever kind goes first.
        for kind in ("curl", "blake3"):
            run_once(kinds[kind], min(args.pulls, 4), tmp)
        rounds: list[dict[str, tuple[float, float]]] = []  # per round: kind -> (seconds, clients' CPU seconds)
        for r in range(args.rounds):
            order = list(kinds)[r % len(kinds):] + list(kinds)[:r % len(kinds)]  # each kind takes a turn going first
            rounds.append({kind: run_once(kinds[kind], args.pulls, tmp) for kind in order})

        def median_of(kind: str, index: int = 0) -> float:
            return statistics.median(rnd[kind][index] for rnd in rounds)

        def ratio(kind: str, baseline: str) -> str:  # per round (same conditions), then the median; and the range
            values = sorted(rnd[baseline][0] / rnd[kind][0] for rnd in rounds)
            return f"{statistics.median(values):.2f} ({values[0]:.2f}-{values[-1]:.2f})"

        print(f"{'behind nginx' if args.nginx else 'gunicorn directly'}: {args.pulls} concurrent pulls of {args.size_mib} MiB into {tmp}, "
              f"{args.rounds} rounds taking turns, medians (range of the per-round ratios)")
        for kind, label in (("sha256", "assay client, checked by SHA-256"), ("blake3", "assay client, checked by BLAKE3")):
            print(f"  {label}: {total_mb / median_of(kind):7.1f} MB/s aggregate | vs curl {ratio(kind, 'curl')} | "
                  f"vs curl + fsync of each file (both durable) {ratio(kind, 'curl_durable')}")
        print(f"  curl {total_mb / median_of('curl'):7.1f} MB/s | curl + fsync {total_mb / median_of('curl_durable'):7.1f} MB/s")
        print(f"  the clients' CPU (user + system): SHA-256 {median_of('sha256', 1):.1f} s | BLAKE3 {median_of('blake3', 1):.1f} s | "
              f"curl {median_of('curl', 1):.1f} s | curl + fsync {median_of('curl_durable', 1):.1f} s "
              f"({os.cpu_count()} CPUs; the server's share is not counted)")

        stop = threading.Event()
        socks = slow_clients("127.0.0.1", stack.port, args.slow, stop)
        time.sleep(2)
        latencies, failures = [], 0
        for _ in range(20):
            t = time.perf_counter()
            try:
                httpx.get(f"{stack.url}/api/v1/trust", timeout=10).raise_for_status()
                latencies.append(time.perf_counter() - t)
            except httpx.HTTPError:
                failures += 1
            time.sleep(0.2)
        stop.set()
        for s in socks:
            s.close()
        if latencies:
            print(f"  with {args.slow} slow connections held open: GET /api/v1/trust median {statistics.median(latencies) * 1000:.0f} ms, "
                  f"max {max(latencies) * 1000:.0f} ms, {failures} of 20 failed (goal: all within 1000 ms)")
        else:
            print(f"  with {args.slow} slow connections held open: all 20 requests failed or timed out (10 s)")
    finally:
        stack.stop()
        subprocess.run(["rm", "-rf", str(tmp)])


if __name__ == "__main__":
    main()
