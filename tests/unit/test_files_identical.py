"""assay.core.digest.files_identical: the rebuild-vs-candidate comparison of the reproduce step."""
from __future__ import annotations

import os

import pytest

from assay.core.digest import files_identical

CHUNK = 4096  # small blocks, so the cases below cross block boundaries


@pytest.fixture
def data():
    return os.urandom(3 * CHUNK + 123)


def write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 123])
def test_equal_files(tmp_path, data, size):
    assert files_identical(write(tmp_path, "a", data[:size]), write(tmp_path, "b", data[:size]), chunk_size=CHUNK)


@pytest.mark.parametrize("where", [0, CHUNK - 1, CHUNK, 2 * CHUNK + 5, 3 * CHUNK + 122])
def test_one_byte_differs(tmp_path, data, where):
    other = bytearray(data)
    other[where] ^= 1
    assert not files_identical(write(tmp_path, "a", data), write(tmp_path, "b", bytes(other)), chunk_size=CHUNK)


def test_sizes_differ(tmp_path, data):
    assert not files_identical(write(tmp_path, "a", data), write(tmp_path, "b", data + b"\0"), chunk_size=CHUNK)


def test_stale_buffer_tail_is_not_compared(tmp_path):
    # Same last block, different earlier blocks would already fail; here the files are equal but
    # shorter than a block after a full one: leftovers of the first block must not matter.
    a = b"x" * CHUNK + b"yz"
    assert files_identical(write(tmp_path, "a", a), write(tmp_path, "b", a), chunk_size=CHUNK)
