"""The download's writer: blocks read into a ring of buffers (no copy), hashed on one thread and
written on another, with the disk write started behind it (assay.core.writeback)."""
from __future__ import annotations

import hashlib
import os
import random
import time

import pytest

from assay.client.http import _HashWriter
from assay.core import writeback
from assay.core.writeback import WriteBehind


class SlowHash:
    """sha256 that dawdles now and then, so the writer thread runs ahead of it and back."""

    def __init__(self, seed: int):
        self.h, self.rng = hashlib.sha256(), random.Random(seed)

    def update(self, block) -> None:
        if self.rng.random() < 0.3:
            time.sleep(0.002)
        self.h.update(block)


@pytest.mark.parametrize("depth", [1, 2, 8])
def test_ring_buffers_are_never_refilled_while_a_thread_still_reads_them(tmp_path, depth):
    rng = random.Random(depth)
    blocks = [rng.randbytes(rng.randint(1, 4096)) for _ in range(300)]
    h = SlowHash(depth)
    with open(tmp_path / "out", "wb", buffering=0) as out, _HashWriter(out, h, 0, depth=depth, block=4096) as sink:
        for data in blocks:
            buffer = sink.next_buffer()
            buffer[:len(data)] = data
            sink.put(buffer[:len(data)])
    whole = b"".join(blocks)
    assert (tmp_path / "out").read_bytes() == whole
    assert h.h.hexdigest() == hashlib.sha256(whole).hexdigest()


def test_the_ring_grows_only_as_far_as_a_download_needs(tmp_path):
    with open(tmp_path / "out", "wb", buffering=0) as out, _HashWriter(out, hashlib.sha256(), 0, depth=8, block=64) as sink:
        buffer = sink.next_buffer()
        buffer[:3] = b"abc"
        sink.put(buffer[:3])
        assert len(sink.ring) == 1
        for _ in range(50):
            sink.put(sink.next_buffer())
        assert len(sink.ring) == 11


def test_a_failing_write_surfaces_at_the_end(tmp_path):
    class Full:
        def __init__(self, f):
            self.f = f

        def fileno(self):
            return self.f.fileno()

        def write(self, block):
            raise OSError(28, "No space left on device")

    with open(tmp_path / "x", "wb", buffering=0) as f, pytest.raises(OSError, match="No space"):
        with _HashWriter(Full(f), hashlib.sha256(), 0, depth=2, block=16) as sink:
            for _ in range(20):
                buffer = sink.next_buffer()
                sink.put(buffer)


def test_write_behind_starts_the_disk_write_of_each_full_stretch(tmp_path):
    path = tmp_path / "big"
    data = os.urandom(5 * 64 * 1024 + 123)
    with open(path, "wb", buffering=0) as f:
        behind = WriteBehind(f.fileno(), 0, stretch=64 * 1024)
        for i in range(0, len(data), 10_000):
            n = f.write(data[i:i + 10_000])
            behind.wrote(n)
        os.fsync(f.fileno())
    assert path.read_bytes() == data
    if writeback._sync_file_range is not None:  # Linux
        assert behind.enabled
        assert len(data) - behind.started < 64 * 1024  # every full stretch was started
        assert behind.previous is not None and sum(behind.previous) == behind.started


def test_write_behind_turns_itself_off_where_the_file_cannot_take_it(tmp_path):
    read_end, write_end = os.pipe()  # sync_file_range on a pipe: ESPIPE
    try:
        behind = WriteBehind(write_end, 0, stretch=16)
        os.write(write_end, b"x" * 32)
        behind.wrote(32)  # no exception: the write-behind is an optimisation, never a failure
        assert not behind.enabled or writeback._sync_file_range is None
        assert os.read(read_end, 64) == b"x" * 32
    finally:
        os.close(read_end)
        os.close(write_end)
