"""Requests racing on one upload (registry/blobstore.LocalBlobStore): a client retrying a chunk
while the first try is still being received, a finalize while a chunk is still arriving. One
request at a time holds the upload; the other is told to resume from the offset, and neither
the upload nor a stored, content-addressed blob ever takes bytes twice or after the fact."""
from __future__ import annotations

import io
import threading
import time

import pytest

from assay.core.digest import digest_bytes
from registry.blobstore import LocalBlobStore, UploadError


class SlowBody:
    """A request body that arrives slowly (set `started` on the first read)."""

    def __init__(self, data: bytes):
        self.data, self.started = data, threading.Event()

    def read(self, n):
        self.started.set()
        time.sleep(0.2)
        block, self.data = self.data[:n], self.data[n:]
        return block


def test_the_same_chunk_sent_twice_at_once_is_kept_once(tmp_path):
    store = LocalBlobStore(tmp_path)
    upload = store.new_upload()
    chunk = b"x" * 1000
    first = SlowBody(chunk)
    outcome = {}
    t = threading.Thread(target=lambda: outcome.setdefault("first", store.append(upload, 0, first, len(chunk))))
    t.start()
    first.started.wait(5)
    with pytest.raises(UploadError, match="busy"):
        store.append(upload, 0, io.BytesIO(chunk), len(chunk))
    t.join()
    assert outcome["first"] == 1000 and store.upload_offset(upload) == 1000
    assert store.finalize(upload, digest_bytes(chunk)) == 1000


def test_a_finalize_while_a_chunk_arrives_is_refused_and_the_blob_stays_whole(tmp_path):
    store = LocalBlobStore(tmp_path)
    data = b"real weights" * 100
    upload = store.new_upload()
    store.append(upload, 0, io.BytesIO(data), len(data))
    late = SlowBody(b"GARBAGE")
    outcome = {}
    t = threading.Thread(target=lambda: outcome.setdefault("late", store.append(upload, len(data), late, 7)))
    t.start()
    late.started.wait(5)
    with pytest.raises(UploadError, match="busy"):
        store.finalize(upload, digest_bytes(data))
    t.join()
    assert outcome["late"] == len(data) + 7  # the chunk that was arriving is kept whole...
    with pytest.raises(Exception, match="digest mismatch"):  # ...so the upload no longer hashes to the old digest
        store.finalize(upload, digest_bytes(data))
    assert not store.local_path(digest_bytes(data)).exists()


def test_a_chunk_for_a_finalized_upload_is_refused_and_the_blob_is_untouched(tmp_path):
    store = LocalBlobStore(tmp_path)
    data = b"weights" * 10
    upload = store.new_upload()
    store.append(upload, 0, io.BytesIO(data), len(data))
    store.finalize(upload, digest_bytes(data))
    with pytest.raises(UploadError, match="does not exist"):
        store.append(upload, len(data), io.BytesIO(b"more"), 4)
    assert store.local_path(digest_bytes(data)).read_bytes() == data
