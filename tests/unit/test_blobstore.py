"""The content-addressed blob store: streaming uploads, digest checks, no partial blobs."""
import io
import tracemalloc

import pytest

from assay.core.digest import digest_bytes
from assay.core.errors import DigestError
from registry.blobstore import LocalBlobStore, UploadError
from tests.support.tiny_gguf import write_tiny_llama


@pytest.fixture
def store(tmp_path):
    return LocalBlobStore(tmp_path / "blobs")


def test_chunked_upload_lands_at_content_address(store, tmp_path):
    path = tmp_path / "tiny.gguf"
    write_tiny_llama(path)
    data = path.read_bytes()
    upload = store.new_upload()
    half = len(data) // 2
    assert store.append(upload, 0, io.BytesIO(data[:half]), half) == half
    assert store.upload_offset(upload) == half
    store.append(upload, half, io.BytesIO(data[half:]), len(data) - half)
    digest = digest_bytes(data)
    assert store.finalize(upload, digest) == len(data)
    hexd = digest[7:]
    assert store.local_path(digest) == tmp_path / "blobs" / "sha256" / hexd[:2] / hexd
    assert store.open(digest).read() == data
    assert not list((tmp_path / "blobs" / "uploads").iterdir())


def test_out_of_order_chunk_is_refused_with_the_resume_offset(store):
    upload = store.new_upload()
    store.append(upload, 0, io.BytesIO(b"abc"), 3)
    with pytest.raises(UploadError, match="resume from 3"):
        store.append(upload, 0, io.BytesIO(b"abc"), 3)


def test_digest_mismatch_discards_upload_and_writes_no_blob(store):
    upload = store.new_upload()
    store.append(upload, 0, io.BytesIO(b"hello"), 5)
    wrong = digest_bytes(b"world")
    with pytest.raises(DigestError, match="digest mismatch"):
        store.finalize(upload, wrong)
    assert not store.exists(wrong)
    assert not store.exists(digest_bytes(b"hello"))
    with pytest.raises(UploadError):
        store.upload_offset(upload)


@pytest.mark.parametrize("bad", ["sha256:../../etc/passwd", "sha256:" + "A" * 64, "md5:abc", "../x", "sha256:" + "0" * 63])
def test_malformed_digests_never_touch_a_path(store, bad):
    with pytest.raises(DigestError):
        store.local_path(bad)


@pytest.mark.parametrize("bad", ["../../x", "abc", "0" * 31 + "/", ""])
def test_malformed_upload_ids_are_refused(store, bad):
    with pytest.raises(UploadError):
        store.upload_offset(bad)


def test_append_streams_in_constant_memory(store):
    class Zeros(io.RawIOBase):
        def __init__(self, n):
            self.left = n

        def readable(self):
            return True

        def readinto(self, b):
            n = min(len(b), self.left)
            b[:n] = bytes(n)
            self.left -= n
            return n

    size = 64 * 1024 * 1024
    upload = store.new_upload()
    tracemalloc.start()
    store.append(upload, 0, io.BufferedReader(Zeros(size)), size)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 8 * 1024 * 1024
    assert store.upload_offset(upload) == size


def test_each_chunk_is_durable_and_so_is_the_blobs_name(store, monkeypatch):
    """Each appended chunk is fsynced before its offset is answered (a resume after a crash
    continues from it); finalize fsyncs the folder after the rename, so the blob the caller then
    records exists under its name after a crash. (os.fsync is watched, and still called.)"""
    import os
    import stat

    synced = []
    real_fsync = os.fsync

    def watching(fd):
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)
    monkeypatch.setattr(os, "fsync", watching)
    upload = store.new_upload()
    for i in range(3):
        store.append(upload, i * 4, io.BytesIO(b"abcd"), 4)
    assert synced == ["file"] * 3
    synced.clear()
    store.finalize(upload, digest_bytes(b"abcd" * 3))
    assert synced == ["dir"]


def _disk_full_after(monkeypatch, allowed: int):
    """os.write lets `allowed` more bytes reach the disk, then answers ENOSPC (a short write first)."""
    import errno
    import os

    real_write, left = os.write, {"n": allowed}

    def write(fd, data):
        if left["n"] <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = real_write(fd, bytes(data)[:left["n"]])
        left["n"] -= n
        return n
    monkeypatch.setattr(os, "write", write)


def test_a_disk_full_mid_chunk_keeps_none_of_it_and_says_so(store, monkeypatch):
    """The disk fills up in the middle of a chunk: the bytes of it that reached the upload are
    cut off again (the offset is the one before the chunk, nothing half-written and unsynced is
    answered later as received), a StorageFailure says the store is full, and when there is room
    again the same chunk goes through."""
    from registry.blobstore import StorageFailure

    upload = store.new_upload()
    store.append(upload, 0, io.BytesIO(b"a" * 10), 10)
    chunk = b"b" * (3 * 1024 * 1024)
    _disk_full_after(monkeypatch, 1024 * 1024 + 100)
    with pytest.raises(StorageFailure, match="No space left on device") as failed:
        store.append(upload, 10, io.BytesIO(chunk), len(chunk))
    assert failed.value.full
    monkeypatch.undo()
    assert store.upload_offset(upload) == 10
    assert store.append(upload, 10, io.BytesIO(chunk), len(chunk)) == 10 + len(chunk)
    assert store.finalize(upload, digest_bytes(b"a" * 10 + chunk)) == 10 + len(chunk)


def test_a_blob_folder_that_cannot_be_written_at_finalize_keeps_the_upload(store, monkeypatch):
    """The finished upload cannot be renamed into the blob folder (no permission): a
    StorageFailure, not a full one; the upload stays, and finalizing again later works."""
    import errno
    import os

    from registry.blobstore import StorageFailure

    upload = store.new_upload()
    store.append(upload, 0, io.BytesIO(b"weights"), 7)

    def refused(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied", str(dst))
    monkeypatch.setattr(os, "replace", refused)
    with pytest.raises(StorageFailure, match="Permission denied") as failed:
        store.finalize(upload, digest_bytes(b"weights"))
    assert not failed.value.full
    monkeypatch.undo()
    assert store.upload_offset(upload) == 7
    assert store.finalize(upload, digest_bytes(b"weights")) == 7
