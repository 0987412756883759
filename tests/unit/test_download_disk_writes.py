"""How a download reaches the disk (assay/client/diskwrite.py): whole blocks straight to the disk
with O_DIRECT where the file system takes it, buffered with write-behind elsewhere; either way the
file comes out whole, a failed download keeps every byte received for its resume, and a refusal
of either falls back to plain writes."""
from __future__ import annotations

import errno
import fcntl
import hashlib
import mmap
import os

import pytest

from assay.client import diskwrite
from assay.client.http import RegistryClient
from assay.core.digest import format_digest

BUFFER = 64 * 1024  # the receive buffer in these tests (READ_BUFFER): several writes for a small blob


@pytest.fixture
def direct_writes(tmp_path, monkeypatch):
    """Every write(2) to a file under tmp_path: (offset, length, whether O_DIRECT was on). Skips
    where tmp_path's file system does not take O_DIRECT."""
    if not diskwrite.O_DIRECT:
        pytest.skip("no O_DIRECT on this system")
    probe = tmp_path / "probe"
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_DIRECT)
    try:
        os.write(fd, memoryview(mmap.mmap(-1, diskwrite.BLOCK)))
    except OSError:
        pytest.skip("this file system does not take O_DIRECT")
    finally:
        os.close(fd)
        probe.unlink()
    monkeypatch.setattr(diskwrite, "READ_BUFFER", BUFFER)
    writes, real_write = [], os.write

    def spy(fd, data):
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(tmp_path)):
            writes.append((os.lseek(fd, 0, os.SEEK_END), len(data), bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT)))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", spy)
    return writes


def _download(server, partial, blob: bytes) -> None:
    digest = format_digest(hashlib.sha256(blob).hexdigest())
    with RegistryClient(server.url) as client:
        assert client.download_blob(digest, partial, expected_size=len(blob)) == digest
    assert partial.read_bytes() == blob


def test_a_download_writes_whole_blocks_straight_to_the_disk_and_the_rest_buffered(flaky, tmp_path, direct_writes):
    blob = os.urandom(5 * BUFFER + 1234)
    _download(flaky(drops=0, blob=blob), tmp_path / "x.part", blob)
    direct = [(offset, length) for offset, length, on in direct_writes if on]
    assert len(direct) >= 3
    assert all(offset % diskwrite.BLOCK == 0 and length % diskwrite.BLOCK == 0 for offset, length in direct)
    assert [on for _, _, on in direct_writes][-1] is False  # the last part block, without O_DIRECT
    assert sum(length for _, length, _ in direct_writes) == len(blob)


def test_a_cut_download_keeps_every_byte_received_and_resumes_after_it(flaky, tmp_path, direct_writes):
    """Half the blob (not a whole number of blocks) comes before the cut: the part block still in
    the buffer is written before the retry, which asks for the rest from exactly there."""
    blob = os.urandom(6 * BUFFER + 2 * 777)
    server = flaky(drops=1, blob=blob)
    _download(server, tmp_path / "x.part", blob)
    assert (len(blob) // 2) % diskwrite.BLOCK
    assert len(server.requests) == 2 and f"bytes={len(blob) // 2}-" in server.requests_headers[1].lower()


@pytest.mark.parametrize("have", [3 * diskwrite.BLOCK, 3 * diskwrite.BLOCK + 100])
def test_a_resumed_download_writes_directly_only_from_a_block_boundary(flaky, tmp_path, direct_writes, have):
    blob = os.urandom(4 * BUFFER + 99)
    (tmp_path / "x.part").write_bytes(blob[:have])
    direct_writes.clear()
    _download(flaky(drops=0, blob=blob), tmp_path / "x.part", blob)
    direct = [offset for offset, _, on in direct_writes if on]
    if have % diskwrite.BLOCK:
        assert direct == []  # the file ends inside a block: buffered throughout
    else:
        assert direct and direct[0] == have


def test_a_disk_that_refuses_a_direct_write_gets_the_download_buffered(flaky, tmp_path, direct_writes, monkeypatch):
    """EINVAL (another alignment than 4 KiB): O_DIRECT is turned off and the same bytes are written
    buffered, none twice and none lost."""
    spy = os.write
    refused = []

    def refuse_the_first_direct_write(fd, data):
        if not refused and fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            refused.append(len(data))
            raise OSError(errno.EINVAL, "Invalid argument")
        return spy(fd, data)

    monkeypatch.setattr(os, "write", refuse_the_first_direct_write)
    blob = os.urandom(5 * BUFFER + 4321)
    _download(flaky(drops=0, blob=blob), tmp_path / "x.part", blob)
    assert refused and not any(on for _, _, on in direct_writes)


def test_a_disk_full_during_a_direct_write_stops_the_download_with_the_file_a_prefix(flaky, tmp_path, direct_writes, monkeypatch):
    """The writing thread's failure reaches the download as the same OSError (pull turns it into
    "cannot write the download"), and no byte after the failed write is written: a rerun resumes
    from a file that is a prefix of the blob."""
    spy = os.write
    direct_seen = []

    def full_at_the_second_direct_write(fd, data):
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            direct_seen.append(len(data))
            if len(direct_seen) == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
        return spy(fd, data)

    monkeypatch.setattr(os, "write", full_at_the_second_direct_write)
    blob = os.urandom(8 * BUFFER + 1000)
    digest = format_digest(hashlib.sha256(blob).hexdigest())
    with RegistryClient(flaky(drops=0, blob=blob).url) as client, pytest.raises(OSError) as raised:
        client.download_blob(digest, tmp_path / "x.part", expected_size=len(blob))
    assert raised.value.errno == errno.ENOSPC
    kept = (tmp_path / "x.part").read_bytes()
    assert kept == blob[:direct_seen[0]]


def test_a_failure_of_the_last_direct_write_leaves_no_later_byte_in_the_file(flaky, tmp_path, direct_writes, monkeypatch):
    """The last handed-over buffer fails; the failure surfaces only when the download finishes, and
    the part block still waiting is not written after the gap (the file stays a prefix)."""
    blob = os.urandom(3 * BUFFER + 1000)
    _download(flaky(drops=0, blob=blob), tmp_path / "probe.part", blob)
    last = len([on for _, _, on in direct_writes if on])
    spy, direct_seen = os.write, []

    def full_at_the_last_direct_write(fd, data):
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            direct_seen.append(len(data))
            if len(direct_seen) == last:
                raise OSError(errno.ENOSPC, "No space left on device")
        return spy(fd, data)

    monkeypatch.setattr(os, "write", full_at_the_last_direct_write)
    digest = format_digest(hashlib.sha256(blob).hexdigest())
    with RegistryClient(flaky(drops=0, blob=blob).url) as client, pytest.raises(OSError, match="No space left"):
        client.download_blob(digest, tmp_path / "x.part", expected_size=len(blob))
    assert (tmp_path / "x.part").read_bytes() == blob[:sum(direct_seen[:-1])]


def test_a_file_system_without_o_direct_gets_the_download_buffered(flaky, tmp_path, direct_writes, monkeypatch):
    real_fcntl = fcntl.fcntl

    def refuse_o_direct(fd, cmd, arg=0):
        if cmd == fcntl.F_SETFL and arg & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_fcntl(fd, cmd, arg)

    monkeypatch.setattr(fcntl, "fcntl", refuse_o_direct)
    blob = os.urandom(3 * BUFFER + 5)
    _download(flaky(drops=0, blob=blob), tmp_path / "x.part", blob)
    assert direct_writes and not any(on for _, _, on in direct_writes)


def test_a_buffered_download_starts_its_disk_writes_behind_it_and_lets_the_cache_drop_what_is_written(flaky, tmp_path, monkeypatch):
    """Where a download's writes go through the page cache (no O_DIRECT), every WRITE_BEHIND
    stretch is handed to posix_fadvise(DONTNEED) once the next one is written: the stretch before
    it (on disk by then) may leave the page cache, the last one starts its disk write. The ranges
    follow one another, a resumed download starts at its offset, and the file is whole."""

    if not hasattr(os, "posix_fadvise"):
        pytest.skip("no posix_fadvise on this system")
    calls = []
    real = os.posix_fadvise
    monkeypatch.setattr(os, "posix_fadvise", lambda fd, offset, length, advice: (calls.append((offset, length, advice)),
                                                                                  real(fd, offset, length, advice))[1])
    blob = os.urandom(300 * 1024)
    server = _download_in_stretches(flaky, tmp_path / "x.part", blob, monkeypatch, stretch=64 * 1024)
    _assert_stretches(calls, start=0, size=len(blob), stretch=64 * 1024)
    assert {advice for _, _, advice in calls} == {os.POSIX_FADV_DONTNEED}

    calls.clear()  # a resumed download: the stretches count from where it resumes
    (tmp_path / "y.part").write_bytes(blob[:100 * 1024])
    _download_in_stretches(flaky, tmp_path / "y.part", blob, monkeypatch, stretch=64 * 1024, server=server)
    _assert_stretches(calls, start=100 * 1024, size=len(blob), stretch=64 * 1024)


def _download_in_stretches(flaky, partial, blob: bytes, monkeypatch, *, stretch: int, server=None):
    """Download `blob` into `partial`, buffered, with stretches of `stretch` bytes and socket reads
    of a quarter of that; the file must come out whole. Returns the server (for another download)."""
    monkeypatch.setattr(diskwrite, "O_DIRECT", 0)
    monkeypatch.setattr(diskwrite, "WRITE_BEHIND", stretch)
    monkeypatch.setattr(diskwrite, "READ_BUFFER", stretch // 4)
    server = server or flaky(drops=0, blob=blob)
    _download(server, partial, blob)
    return server


def _assert_stretches(calls: list, *, start: int, size: int, stretch: int) -> None:
    """Each advice covers the stretch before the last one and the last one (writes end where the
    buffer filled, so a stretch is at least `stretch` long); less than a stretch is left for the fsync."""
    ends = [offset + length for offset, length, _ in calls]
    assert len(calls) >= 2
    for i, (offset, _, _) in enumerate(calls):
        assert offset == (start if i < 2 else ends[i - 2])
        assert ends[i] - (ends[i - 1] if i else start) >= stretch
    assert size - ends[-1] < stretch


def test_a_file_system_that_refuses_the_advice_still_gets_the_whole_download(flaky, tmp_path, monkeypatch):
    """Where posix_fadvise fails (a file system without it), the download goes on as before: the
    whole file is written and fsynced at the end; the advice is not tried again."""
    calls = []

    def refuse(*args):
        calls.append(args)
        raise OSError(errno.ESPIPE, "Illegal seek")

    monkeypatch.setattr(os, "posix_fadvise", refuse, raising=False)
    _download_in_stretches(flaky, tmp_path / "x.part", os.urandom(200 * 1024), monkeypatch, stretch=32 * 1024)
    assert len(calls) == 1


