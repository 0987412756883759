"""Several downloads at once: the parts of a split release. Each download hashes on a thread of
its own, so a pull whose speed is set by SHA-256 (a CPU without SHA extensions hashes one stream
at about 300 MB/s, well under what a local network or nginx delivers) goes about as many times
faster as parts run at once, up to the cores there are.

The first failure, or Ctrl-C, stops the others at their next block: a part never goes on
downloading gigabytes for a pull that has already failed. What each part downloaded stays in
its partial file, and the next pull resumes from there."""
from __future__ import annotations

import os
import queue
import threading
from pathlib import Path
from typing import Callable

from assay.core.digest import digest_file

MAX_AT_ONCE = 4  # each download holds a 2 MiB buffer (diskwrite.DownloadWriter); hashing and writing release the GIL
GRACE_SECONDS = 10.0  # after Ctrl-C, how long the others get to stop at their next block

Check = Callable[[], None]
Job = Callable[[Check], None]


class Stopped(Exception):
    """Another download of the same batch failed, or the pull was interrupted."""


def default_limit() -> int:
    return max(1, min(MAX_AT_ONCE, os.cpu_count() or 1))


def run_together(jobs: list[Job], limit: int | None = None) -> None:
    """Run every job, up to `limit` at once (default: the cores, at most MAX_AT_ONCE), and return
    when all are done. Each job is called with `check`, which it calls between blocks: once the
    batch is stopping, `check` raises Stopped. The first failure stops the batch and is raised
    here after the others have stopped; with one job at a time they run in order on this thread."""
    stop = threading.Event()

    def check() -> None:
        if stop.is_set():
            raise Stopped("stopped: another part of the same pull failed")

    workers = min(len(jobs), limit if limit is not None else default_limit())
    if workers <= 1:
        for job in jobs:
            job(check)
        return
    waiting: queue.SimpleQueue[Job] = queue.SimpleQueue()
    for job in jobs:
        waiting.put(job)
    failures: list[BaseException] = []

    def work() -> None:
        while not stop.is_set():
            try:
                job = waiting.get_nowait()
            except queue.Empty:
                return
            try:
                job(check)
            except Stopped:
                return
            except BaseException as exc:  # noqa: BLE001 -- handed to the caller's thread below
                failures.append(exc)
                stop.set()
                return

    # Daemon threads: a part stuck on a dead connection cannot keep the process alive after Ctrl-C.
    threads = [threading.Thread(target=work, name=f"assay-download-{i}", daemon=True) for i in range(workers)]
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join()
    except BaseException:  # KeyboardInterrupt: stop the others, give them a moment, then go
        stop.set()
        for t in threads:
            t.join(timeout=GRACE_SECONDS)
        raise
    if failures:
        raise failures[0]


def digest_files(paths: list[Path], progress_factory=None, limit: int | None = None, hash_file=digest_file) -> list:
    """The digest of each file, in order, several hashed at once (a bar each, `hash NAME`, when
    `progress_factory` is given); the first error stops the rest and is raised. `hash_file(path,
    progress)`: what to compute (digest_file: sha256; digest.file_digests: sha256 and blake3)."""
    digests: list = [""] * len(paths)

    def hasher(i: int, path: Path) -> Job:
        def run(check: Check) -> None:
            bar = progress_factory(path.stat().st_size, f"hash {path.name}") if progress_factory else None

            def advance(n: int) -> None:
                check()
                if bar:
                    bar.advance(n)
            try:
                digests[i] = hash_file(path, advance)
            finally:
                if bar:
                    bar.close()
        return run
    run_together([hasher(i, p) for i, p in enumerate(paths)], limit)
    return digests
