"""What `pull` writes, and where: safe file names only, never more bytes than were signed, never
over a different file without --force, and across file systems (a tmpfs target) as on one."""
from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

import pytest

from assay.client import pull
from assay.core import statements
from assay.client.http import RegistryClient
from assay.core.digest import format_digest
from assay.core.errors import FormatError, VerificationError
from assay.core.names import file_name_problem, validate_file_name
from tests.unit.test_cli_errors import FakeServer


@pytest.mark.parametrize("name", [
    "..", ".", ".bashrc", ".ssh", "a/b.gguf", "a\\b.gguf", "", " lead.gguf", "trail.gguf ",
    "model\u202egguf.exe", "model\u2066x.gguf", "zero\u200bwidth.gguf", "new\nline.gguf", "tab\t.gguf", "del\x7f.gguf",
    "x" * 256, "\u00e9" * 128,
])
def test_unsafe_file_names_are_refused(name):
    assert file_name_problem(name) is not None
    with pytest.raises(FormatError):
        validate_file_name(name)
    with pytest.raises(FormatError, match="is not a safe file name|subject.name"):
        statements.build_release_statement(subject_name=name, subject_digest="sha256:" + "1f" * 32, namespace="demo", model="m",
                                           tag="t", version=1, quantization="Q4_1", base=None, recipe=None, model_card_digest=None)
    with pytest.raises(VerificationError, match="refusing file name"):
        pull.target_path("out/", name)


@pytest.mark.parametrize("name", ["SmolLM2-135M-Instruct.Q4_1.gguf", "model-00001-of-00003.gguf", "модель.gguf", "a b.gguf", "x" * 255])
def test_ordinary_file_names_are_accepted(name):
    assert file_name_problem(name) is None
    assert pull.target_path("out/", name) == Path("out") / name


@pytest.fixture
def blob_server():
    s = FakeServer()
    yield s
    s.httpd.shutdown()


def test_download_stops_at_the_announced_size(blob_server, tmp_path):
    signed = b"GGUF" + bytes(1000)  # the bytes whose digest is signed
    digest = format_digest(hashlib.sha256(signed).hexdigest())
    blob_server.routes[f"/api/v1/blobs/{digest}"] = (200, "application/octet-stream", signed * 4)  # 4x what was signed
    partial = tmp_path / "cache" / "x.part"
    with RegistryClient(blob_server.url) as client:
        with pytest.raises(VerificationError, match="more than the 1004 bytes its release bundle gives"):
            client.download_blob(digest, partial, expected_size=len(signed))
    assert not partial.exists()
    blob_server.routes[f"/api/v1/blobs/{digest}"] = (200, "application/octet-stream", signed)
    with RegistryClient(blob_server.url) as client:
        assert client.download_blob(digest, partial, expected_size=len(signed)) == digest


def test_a_partial_longer_than_the_signed_size_is_started_over(blob_server, tmp_path):
    signed = b"GGUF" + bytes(100)
    digest = format_digest(hashlib.sha256(signed).hexdigest())
    blob_server.routes[f"/api/v1/blobs/{digest}"] = (200, "application/octet-stream", signed)
    partial = tmp_path / "x.part"
    partial.write_bytes(bytes(500))
    with RegistryClient(blob_server.url) as client:
        assert client.download_blob(digest, partial, expected_size=len(signed)) == digest
    assert partial.read_bytes() == signed


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="no tmpfs at /dev/shm")
def test_move_into_place_across_file_systems(tmp_path):
    """The download cache on disk, the target on tmpfs: copied, fsynced, renamed (this crashed
    with a NameError once). Several megabytes, not a whole number of blocks: more than one buffer
    of the copy (diskwrite.copy_file) and a part block at the end."""
    partial = tmp_path / "blob.part"
    payload = os.urandom((3 << 20) + 123)
    partial.write_bytes(payload)
    with tempfile.TemporaryDirectory(dir="/dev/shm") as shm:
        if os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
            pytest.skip("/dev/shm is on the same file system here")
        target = Path(shm) / "sub" / "model.gguf"
        pull._move_into_place(partial, target)
        assert target.read_bytes() == payload and not partial.exists()
        assert not [p for p in target.parent.iterdir() if p.name != "model.gguf"]  # no temp file left



def test_the_parts_of_a_split_are_renamed_all_or_none(tmp_path):
    """If a later part cannot take its name, the parts already renamed by the same pull are taken
    back: no part is left at its final name, and the verified downloads go back to the cache."""
    from assay.core.errors import AssayError
    from assay.client.pull import _move_all_into_place

    cache, out = tmp_path / "cache", tmp_path / "models"
    cache.mkdir()
    out.mkdir()
    partials = []
    for i in (1, 2, 3):
        p = cache / f"part{i}.part"
        p.write_bytes(b"part %d" % i)
        partials.append(p)
    targets = [out / f"m-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
    (out / targets[2].name).mkdir()  # something that is not a file sits at the last part's name
    (out / targets[2].name / "x").write_text("occupied")
    with pytest.raises(AssayError, match="none of them was left at its final name"):
        _move_all_into_place(list(zip(partials, targets)))
    assert not targets[0].exists() and not targets[1].exists()
    assert [p.read_bytes() for p in partials] == [b"part 1", b"part 2", b"part 3"]
    assert sorted(p.name for p in out.iterdir()) == [targets[2].name]
    targets[2].joinpath("x").unlink()
    targets[2].rmdir()
    _move_all_into_place(list(zip(partials, targets)))
    assert [t.read_bytes() for t in targets] == [b"part 1", b"part 2", b"part 3"]


def _three_parts(tmp_path, out: Path) -> tuple[list[Path], list[Path]]:
    cache = tmp_path / "cache"
    cache.mkdir()
    partials = []
    for i in (1, 2, 3):
        p = cache / f"part{i}.part"
        p.write_bytes(b"part %d" % i * 1000)
        partials.append(p)
    return partials, [out / f"m-0000{i}-of-00003.gguf" for i in (1, 2, 3)]


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="no tmpfs at /dev/shm")
def test_a_disk_full_while_copying_a_part_leaves_no_temp_file(tmp_path, monkeypatch):
    """The folder fills up while the 2nd of 3 parts is copied across file systems: the half
    copy is removed (it held the space the user needs), nothing is at a final name, and every
    verified download stays in the cache."""
    import errno
    import shutil

    from assay.core.errors import AssayError

    real_copy, calls = shutil.copyfile, []

    def copy_until_full(src, dst, **kw):
        calls.append(src)
        if len(calls) == 2:
            Path(dst).write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_copy(src, dst, **kw)
    monkeypatch.setattr(shutil, "copyfile", copy_until_full)
    with tempfile.TemporaryDirectory(dir="/dev/shm") as shm:
        if os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
            pytest.skip("/dev/shm is on the same file system here")
        partials, targets = _three_parts(tmp_path, Path(shm))
        with pytest.raises(AssayError, match="No space left on device; none of them was left at its final name"):
            pull._move_all_into_place(list(zip(partials, targets)))
        assert list(Path(shm).iterdir()) == []
    assert [p.read_bytes() for p in partials] == [b"part %d" % i * 1000 for i in (1, 2, 3)]


def test_ctrl_c_while_placing_the_parts_puts_them_back(tmp_path, monkeypatch):
    """Ctrl-C between the renames: the parts renamed already and those moved beside their
    targets go back to the cache (a rerun needs no download), none is left at a final or
    temporary name, and the KeyboardInterrupt goes on (exit 130)."""
    out = tmp_path / "models"
    out.mkdir()
    partials, targets = _three_parts(tmp_path, out)
    real_link = os.link

    def interrupted(src, dst):
        if Path(dst) == targets[1]:
            raise KeyboardInterrupt
        return real_link(src, dst)
    monkeypatch.setattr(os, "link", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pull._move_all_into_place(list(zip(partials, targets)))
    monkeypatch.undo()
    assert list(out.iterdir()) == []
    assert [p.read_bytes() for p in partials] == [b"part %d" % i * 1000 for i in (1, 2, 3)]


@pytest.mark.parametrize("other_fs", [False, True])
def test_a_file_that_appears_at_the_target_during_the_download_is_not_replaced(tmp_path, other_fs):
    """`pull` refuses a different file at the target before downloading; one that appears there
    while it downloads (another pull of another release to the same path, the user's copy) was
    replaced by the final rename all the same. Now it is kept unless --force was given, the
    verified download stays in the cache and no temporary file is left beside the target."""
    from assay.core.errors import AssayError

    with contextlib.ExitStack() as stack:
        folder = tmp_path / "models"
        if other_fs:
            if not Path("/dev/shm").is_dir():
                pytest.skip("no tmpfs at /dev/shm")
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(dir="/dev/shm")))
            if os.stat(folder).st_dev == os.stat(tmp_path).st_dev:
                pytest.skip("/dev/shm is on the same file system here")
        folder.mkdir(exist_ok=True)
        partial, target = tmp_path / "blob.part", folder / "model.gguf"
        partial.write_bytes(b"verified bytes")
        target.write_bytes(b"someone else's file")
        with pytest.raises(AssayError, match="appeared while it was downloading; it was not replaced"):
            pull._move_into_place(partial, target, force=False)
        assert target.read_bytes() == b"someone else's file" and partial.read_bytes() == b"verified bytes"
        assert [p.name for p in folder.iterdir()] == ["model.gguf"]
        pull._move_into_place(partial, target, force=True)
        assert target.read_bytes() == b"verified bytes" and not partial.exists()
        target.unlink()
        partial.write_bytes(b"verified bytes")
        pull._move_into_place(partial, target, force=False)
        assert target.read_bytes() == b"verified bytes" and not partial.exists()
        assert [p.name for p in folder.iterdir()] == ["model.gguf"]


def test_a_part_that_appears_at_its_name_during_the_download_is_not_replaced(tmp_path):
    from assay.core.errors import AssayError

    out = tmp_path / "models"
    out.mkdir()
    partials, targets = _three_parts(tmp_path, out)
    targets[1].write_bytes(b"someone else's file")
    with pytest.raises(AssayError, match=f"{targets[1]} appeared while the parts were downloading"):
        pull._move_all_into_place(list(zip(partials, targets)))
    assert sorted(p.name for p in out.iterdir()) == [targets[1].name]
    assert targets[1].read_bytes() == b"someone else's file"
    assert [p.read_bytes() for p in partials] == [b"part %d" % i * 1000 for i in (1, 2, 3)]
    pull._move_all_into_place(list(zip(partials, targets)), force=True)
    assert [t.read_bytes() for t in targets] == [b"part %d" % i * 1000 for i in (1, 2, 3)]


def test_a_copy_of_a_file_pulled_before_is_on_disk_before_it_takes_the_target_name(tmp_path, monkeypatch):
    """_copy_known fills the partial from a verified copy already on this machine; the partial is
    then renamed to the target. Its bytes must be fsynced first (as a download's are), or a power
    cut after the rename can leave an empty or partial file at the final name."""
    import stat
    from types import SimpleNamespace

    data = b"GGUF" + bytes(3000)
    digest = format_digest(hashlib.sha256(data).hexdigest())
    known = tmp_path / "elsewhere" / "model.gguf"
    known.parent.mkdir()
    known.write_bytes(data)
    monkeypatch.setenv("ASSAY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(pull, "_known_paths", lambda: {digest: [str(known)]})
    partial = tmp_path / "cache" / "x.part"
    partial.parent.mkdir()
    synced = []
    real_fsync = os.fsync

    def watching(fd):
        synced.append(os.fstat(fd).st_ino if stat.S_ISREG(os.fstat(fd).st_mode) else None)
        real_fsync(fd)
    monkeypatch.setattr(os, "fsync", watching)
    verified = SimpleNamespace(digest=digest, size=len(data), check_digest=lambda d=None: digest)
    assert pull._copy_known(verified, partial)
    assert partial.read_bytes() == data and os.stat(partial).st_ino in synced


@pytest.mark.parametrize("content", ['{"sha256:%s": 5}', '{"sha256:%s": "/x"}', '{"sha256:%s": [5, null]}'])
def test_a_damaged_list_of_pulled_copies_is_only_a_missed_hint(tmp_path, monkeypatch, content):
    """pulled.json (where verified copies lie) holding valid JSON of another shape made
    _copy_known and _remember raise a TypeError traceback, before and after a download."""
    from types import SimpleNamespace

    monkeypatch.setenv("ASSAY_CACHE_DIR", str(tmp_path / "cache"))
    digest = "sha256:" + "ab" * 32
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / pull.KNOWN_FILE).write_text(content % ("ab" * 32))
    verified = SimpleNamespace(digest=digest, size=4, check_digest=lambda d=None: digest)
    assert not pull._copy_known(verified, tmp_path / "cache" / "x.part")
    target = tmp_path / "model.gguf"
    pull._remember(digest, target)
    assert pull._known_paths() == {digest: [str(target.resolve())]}
