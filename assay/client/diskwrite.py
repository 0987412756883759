"""Writing a download to its partial file, for the download loop in assay/client/http.py.

Where the file system takes O_DIRECT (Linux: ext4, XFS, btrfs, tmpfs since 6.6), whole 4 KiB
blocks go from the receive buffer to the disk without passing through the page cache: the kernel
neither copies the bytes nor allocates, accounts and writes back dirty pages for them. Writing
2 GiB on a 2-core VM took 0.15-0.19 s of CPU that way, against 0.7 s buffered with write-behind
and 2.5-4.7 s buffered with one fsync at the end; fifty pulls at once on two cores are bound by
the CPU (bench/load.py): direct writes cut their clients' CPU by 10-12 %. A direct write waits
for the disk, so a thread of its own does it (_BlockWriter) while the download receives and hashes
the next megabyte. Elsewhere (macOS, a file system that refuses it, a resumed file that ends
inside a block) the writes go through the page cache, with _WriteBehind.

Either way a file just pulled is not in the page cache: the next `assay run` reads it from disk,
as after a reboot.
"""
from __future__ import annotations

import errno
import mmap
import os

READ_BUFFER = 1024 * 1024  # at most one socket read: hashed while in the CPU's cache, written once the buffer holds this much
WRITE_BEHIND = 16 * 1024 * 1024  # buffered writes: a stretch whose disk write starts while the next one arrives (_WriteBehind)
BLOCK = 4096  # direct writes start and end on whole blocks of this size, a multiple of every disk's logical block size
O_DIRECT = getattr(os, "O_DIRECT", 0)  # 0 where the system has none (macOS)


class DownloadWriter:
    """Receives a download into its buffer and writes it to the raw file `out`, open for appending
    at `start` bytes. The loop: `n = response.readinto(writer.space())`, `hash.update(writer.received(n))`,
    and at the end `finish()` (the rest, then fsync). Used as a context manager, a failure on the
    way calls `abandon()` (the rest, for a later resume; the writing thread waited for) before the
    file is closed.

    Direct writes wait for the disk, so a thread of their own does them (_BlockWriter) while this
    one receives and hashes the next megabyte; buffered writes only copy into the page cache and
    stay on the receiving thread."""

    def __init__(self, out, start: int):
        self.fd = out.fileno()
        self.view = _buffer()
        self.filled = 0
        self.offset = start  # buffered writes: the file's length so far
        self.direct = bool(O_DIRECT) and start % BLOCK == 0 and _set_direct(self.fd, True)
        self.blocks: _BlockWriter | None = None  # direct: the writing thread, from the first full buffer on
        self.behind = _WriteBehind(self.fd, start)

    def __enter__(self) -> DownloadWriter:
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if kind is not None:
            try:
                self.abandon()
            except OSError:
                pass  # the first failure is the one to report

    def space(self) -> memoryview:
        """Where the next socket read goes (the buffer is written out first once it holds READ_BUFFER bytes)."""
        if self.filled >= READ_BUFFER:
            if self.direct:
                self._hand_over()
            else:
                self._write_rest()
        return self.view[self.filled:self.filled + READ_BUFFER]

    def received(self, n: int) -> memoryview:
        """The `n` bytes just read into space(), to hash before the next space()."""
        block = self.view[self.filled:self.filled + n]
        self.filled += n
        return block

    def finish(self) -> None:
        """Write what is left and wait until the whole file is on disk."""
        self._write_rest()
        os.fsync(self.fd)

    def abandon(self) -> None:
        """Write what is left, so that a later attempt resumes after every byte received."""
        self._write_rest()

    def _hand_over(self) -> None:
        """The buffer's whole blocks to the writing thread; its last part block to the front of the
        buffer the thread gives back."""
        if self.blocks is None:
            self.blocks = _BlockWriter(self.fd)
        whole = self.filled - self.filled % BLOCK
        try:
            spare = self.blocks.swap(self.view, whole)
        except BaseException:
            # a write failed (or Ctrl-C came): the buffer is the thread's now, and no byte after it
            # is written; abandon() still waits for the thread before the file is closed
            self.filled = 0
            raise
        full, self.view = self.view, spare
        self.filled -= whole
        self.view[:self.filled] = full[whole:whole + self.filled]  # the thread writes only full[:whole]

    def _write_rest(self) -> None:
        """Everything handed over, then what the buffer holds, on this thread and without O_DIRECT.
        A failed direct write stops here, before any later byte is written: the file stays a prefix
        of the download."""
        if self.blocks is not None:
            blocks, self.blocks = self.blocks, None
            try:
                blocks.drain()
            except BaseException:
                self.filled = 0  # nothing after the failed write, not even at a later abandon()
                raise
        if self.direct:
            self.direct = False
            _set_direct(self.fd, False)
            self.offset = os.lseek(self.fd, 0, os.SEEK_END)
            self.behind = _WriteBehind(self.fd, self.offset)
        block = self.view[:self.filled]
        while block:
            wrote = os.write(self.fd, block)
            block = block[wrote:]
            self.offset += wrote
        self.behind.wrote_up_to(self.offset)
        self.filled = 0


class _BlockWriter:
    """A thread that writes full buffers of whole blocks with O_DIRECT, in the order handed over,
    while the download receives into the other buffer. Where the disk refuses a direct write
    (EINVAL: another alignment), it turns O_DIRECT off and writes the same bytes buffered. A
    failure (a full disk) is raised on the receiving thread at its next swap or at drain, and no
    later buffer is written. _thread and _queue rather than threading: fifty pulls at once each
    pay every import."""

    def __init__(self, fd: int):
        import _queue
        import _thread

        self.fd, self.error = fd, None
        self.jobs, self.free = _queue.SimpleQueue(), _queue.SimpleQueue()
        self.free.put(_buffer())
        self.stopped = _thread.allocate_lock()
        self.stopped.acquire()
        _thread.start_new_thread(self._run, ())

    def swap(self, view: memoryview, n: int) -> memoryview:
        """Hand over view[:n] to be written; return an empty buffer (waiting for one)."""
        self.jobs.put((view, n))
        spare = self.free.get()
        if self.error is not None:
            raise self.error
        return spare

    def drain(self) -> None:
        """Wait until everything handed over is written; raise its failure."""
        self.jobs.put(None)
        self.stopped.acquire()
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            while (job := self.jobs.get()) is not None:
                view, n = job
                if self.error is None:
                    try:
                        self._write(view, n)
                    except BaseException as exc:  # raised on the receiving thread
                        self.error = exc
                self.free.put(view)
        finally:
            self.stopped.release()

    def _write(self, view: memoryview, n: int) -> None:
        done = 0
        while done < n:
            try:
                done += os.write(self.fd, view[done:n])
            except OSError as exc:
                if exc.errno != errno.EINVAL or not _set_direct(self.fd, False):
                    raise
                # the disk wants another alignment: buffered from here on (the flag stays off)


def _buffer() -> memoryview:
    """A receive buffer: room for READ_BUFFER bytes past READ_BUFFER; page-aligned, as direct writes need."""
    return memoryview(mmap.mmap(-1, 2 * READ_BUFFER))


def copy_file(src, out, hash=None) -> None:
    """Copy the open raw file `src` into the empty raw file `out` as a download is written
    (DownloadWriter), then fsync; `hash` (a hashlib or blake3 object), if given, sees every byte."""
    with DownloadWriter(out, 0) as writer:
        while n := src.readinto(writer.space()):
            block = writer.received(n)
            if hash is not None:
                hash.update(block)
        writer.finish()


def _set_direct(fd: int, on: bool) -> bool:
    """Turn O_DIRECT on or off for `fd`; False where the file system refuses it."""
    import fcntl

    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | O_DIRECT if on else flags & ~O_DIRECT)
    except OSError:
        return False
    return True


class _WriteBehind:
    """Buffered writes: starts the disk write of each WRITE_BEHIND stretch of a download once it is
    written, and lets the page cache drop the stretch before it, which by then is on disk: the
    closing fsync has one stretch left to wait for rather than the whole file, and a pull of a
    model larger than the memory does not push everything else out of the page cache.
    (posix_fadvise DONTNEED starts the write of dirty pages and drops clean ones; pages still being
    written stay.) Fifty pulls of 100 MiB at once on a 2-core VM: 14 % more throughput and less CPU
    than writing it all and fsyncing at the end (bench/load.py). Where the call is missing (macOS)
    nothing happens."""

    def __init__(self, fd: int, start: int):
        self.fd, self.advise = fd, getattr(os, "posix_fadvise", None)
        self.previous = self.mark = start  # the stretch before the last one began at `previous`; the last one at `mark`

    def wrote_up_to(self, offset: int) -> None:
        if self.advise is None or offset - self.mark < WRITE_BEHIND:
            return
        try:
            self.advise(self.fd, self.previous, offset - self.previous, os.POSIX_FADV_DONTNEED)
        except OSError:
            self.advise = None  # a file system that does not take the advice: written at the fsync, as before
        self.previous, self.mark = self.mark, offset
