"""The parts of a split release downloaded at once (client/together.py) against one after another,
and against curl fetching the same parts at once, through a real registry in the same run.

    .venv/bin/python bench/split_pull.py [--parts 4] [--part-mib 256] [--nginx] [--rounds 2]

One SHA-256 stream is the ceiling of one download (about 300-370 MB/s on a CPU without SHA
extensions, 1.6 GB/s with them); parts at once hash on several cores. Prints MB/s and ratios;
asserts nothing.
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
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assay.client import pull  # noqa: E402
from assay.client.http import RegistryClient  # noqa: E402
from assay.client.together import default_limit, run_together  # noqa: E402
from tests.support.stack import Stack, random_file  # noqa: E402


def client_pull(stack: Stack, parts: list[tuple[str, int]], folder: Path, limit: int) -> float:
    os.sync()
    os.environ["ASSAY_CACHE_DIR"] = str(folder / "cache")  # no copy pulled before: every byte comes over the network
    t = time.perf_counter()
    with RegistryClient(stack.url, stack.token) as client:
        run_together([pull.partial_filler(client, SimpleNamespace(digest=d, size=size, file_name=f"part{i}",
                                                                     check_digest=lambda d=d: d), folder / f"p{i}", None)
                      for i, (d, size) in enumerate(parts)], limit=limit)
    elapsed = time.perf_counter() - t
    subprocess.run(["rm", "-rf", str(folder)], check=True)
    return elapsed


def curl_pull(stack: Stack, parts: list[tuple[str, int]], folder: Path) -> float:
    """Every part at once, each followed by `sync FILE` (the client makes each part durable too)."""
    os.sync()
    folder.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    procs = [subprocess.Popen(stack.curl_blob(d, folder / f"p{i}", durable=True)) for i, (d, _) in enumerate(parts)]
    if any(p.wait() for p in procs):
        raise RuntimeError("curl failed")
    elapsed = time.perf_counter() - t
    subprocess.run(["rm", "-rf", str(folder)], check=True)
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parts", type=int, default=4)
    ap.add_argument("--part-mib", type=int, default=256)
    ap.add_argument("--nginx", action="store_true", help="the registry behind nginx")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--sqlite", action="store_true", help="the registry on SQLite (a machine without PostgreSQL)")
    args = ap.parse_args()
    stack = Stack(nginx=args.nginx, sqlite=args.sqlite, verifier=False).start()
    tmp = Path(tempfile.mkdtemp(prefix="assay-split-"))
    try:
        parts = []
        for i in range(args.parts):
            src = random_file(tmp / f"src{i}", args.part_mib)
            parts.append((stack.put_blob(src), src.stat().st_size))
            src.unlink()
        total_mb = sum(size for _, size in parts) / 1e6
        together, one_by_one, curls = [], [], []
        for r in range(args.rounds):
            one_by_one.append(client_pull(stack, parts, tmp / f"seq{r}", limit=1))
            together.append(client_pull(stack, parts, tmp / f"par{r}", limit=default_limit()))
            curls.append(curl_pull(stack, parts, tmp / f"curl{r}"))
        t_seq, t_par, t_curl = (statistics.median(x) for x in (one_by_one, together, curls))
        print(f"{args.parts} parts of {args.part_mib} MiB, {os.cpu_count()} cores, {default_limit()} parts at once, "
              f"{'behind nginx' if args.nginx else 'gunicorn directly'}")
        print(f"  client, one after another {total_mb / t_seq:7.1f} MB/s")
        print(f"  client, parts at once     {total_mb / t_par:7.1f} MB/s | {t_seq / t_par:.2f}x one after another")
        print(f"  curl, parts at once + sync of each file {total_mb / t_curl:7.1f} MB/s | client at once / curl: ratio {t_curl / t_par:.2f}")
    finally:
        stack.stop()
        subprocess.run(["rm", "-rf", str(tmp)])


if __name__ == "__main__":
    main()
