"""Write-behind for a large file that will be fsynced: while the file is still being written, the
kernel is asked to write each finished stretch to disk (Linux `sync_file_range`), so the closing
fsync has almost nothing left to do. Without it, a 1 GiB download first fills the page cache and
then waits for the whole file in one fsync at the end (0.3-0.7 s of a 1 s pull here).

Each stretch is started at once and the one before it is waited for, so at most two stretches
are dirty at a time: memory stays flat in file size, and a disk slower than the network slows
the writer (and, through its bounded queue, the download) instead of piling up dirty pages.
Elsewhere (no `sync_file_range`) it does nothing, and the fsync does all the work as before."""
from __future__ import annotations

import ctypes
import sys

STRETCH = 32 * 1024 * 1024
_WAIT_BEFORE, _WRITE, _WAIT_AFTER = 1, 2, 4


def _load_sync_file_range():
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_sync_file_range = _load_sync_file_range()


class WriteBehind:
    """Tracks how far a file descriptor has been written (from `start`) and starts the disk
    write of every full stretch. Call `wrote(n)` after each write of n bytes; a failing
    `sync_file_range` (a file system without it) turns the write-behind off, never the write."""

    def __init__(self, fd: int, start: int = 0, stretch: int = STRETCH):
        self.fd, self.stretch = fd, stretch
        self.end = self.started = start  # bytes written / bytes whose disk write has been started
        self.previous: tuple[int, int] | None = None  # the stretch started last: (offset, length)
        self.enabled = _sync_file_range is not None

    def wrote(self, n: int) -> None:
        self.end += n
        if not self.enabled or self.end - self.started < self.stretch:
            return
        current = (self.started, self.end - self.started)
        if (_sync_file_range(self.fd, *current, _WRITE) != 0
                or (self.previous and _sync_file_range(self.fd, *self.previous, _WAIT_BEFORE | _WRITE | _WAIT_AFTER) != 0)):
            self.enabled = False  # e.g. EINVAL, ESPIPE: the fsync at the end still makes it durable
            return
        self.started, self.previous = self.end, current
