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
