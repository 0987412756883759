"""Confine the children that read strangers' files (llama.cpp loading a model, its tools, the Hugging
Face converter, a chat template's renderer) with Landlock, so that code a malicious file gets to run
there cannot reach what the process that started it guards.

What a process guards it names with `protect(folder, except_for=...)`: a verifier its own folder
(its signing key and its registration token; its jobs' folder is the exception the children need),
the `assay` command its config folder (the publisher's key, tokens, the trust store). A confined
child may do anything it could before, anywhere, except:
  - touch a protected folder (read, write or run anything in it; only its names may be listed),
    but for its exceptions;
  - open or accept TCP connections (no model file, tool or converter needs the network);
  - signal, ptrace or read the memory of processes outside its own sandbox (the parent that holds
    the key), or reach abstract Unix sockets outside it;
  - read the environment of the process that protects a folder: Landlock lets /proc/PID/environ
    through, so that process makes itself non-dumpable (as ssh-agent does: its /proc files become
    root's) and the child keeps no capabilities (a child of root would otherwise read them with
    CAP_SYS_PTRACE).

Landlock allows, it cannot deny: the rules allow every entry of each folder on the way down to a
protected folder but the one leading to it, and each exception in full. An entry added to one of
those folders after the rules were made is out of the child's reach. Where the kernel has no
Landlock (before Linux 5.13, or turned off, or a seccomp profile that refuses its calls), children
run as before; `status()` says which, and a verifier reports it with each step (worker profile).
"""
from __future__ import annotations

import ctypes
import errno
import os
import stat
import threading
from contextlib import contextmanager
from pathlib import Path

_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446  # the same on every architecture
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_DUMPABLE = 4
_PR_CAPBSET_DROP = 24
_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

# LANDLOCK_ACCESS_FS_*: ABI 1 has bits 0-12, ABI 2 adds REFER (13), ABI 3 TRUNCATE (14), ABI 5 IOCTL_DEV (15)
_FS_BITS_BY_ABI = {1: 13, 2: 14, 3: 15, 4: 15, 5: 16}
_READ_DIR = 1 << 3
_FILE_ACCESS = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 14) | (1 << 15)  # execute, write, read, truncate, ioctl_dev
_NET_ALL = (1 << 0) | (1 << 1)  # LANDLOCK_ACCESS_NET_BIND_TCP, _CONNECT_TCP (ABI 4)
_SCOPE_ALL = (1 << 0) | (1 << 1)  # LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET, _SIGNAL (ABI 6)

_lock = threading.Lock()
_protected: dict[Path, tuple[Path, ...]] = {}


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def abi_version() -> int:
    """The kernel's Landlock ABI version, 0 where it has none (or may not be asked)."""
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    version = libc.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return max(int(version), 0)


def status() -> str:
    """One line for a worker's profile: how its children are confined."""
    if os.environ.get("ASSAY_NO_CONFINE"):
        return "none (ASSAY_NO_CONFINE is set)"
    abi = abi_version()
    return f"landlock ABI {abi}" if abi else "none (the kernel offers no Landlock)"


def protect(folder: Path, *, except_for: tuple[Path, ...] | list[Path] = ()) -> None:
    """Keep the children this process starts from now on out of `folder`, but for `except_for`
    (folders inside it the children need). Calling it again for the same folder replaces its
    exceptions."""
    with _lock:
        _protected[Path(os.path.abspath(folder))] = tuple(Path(os.path.abspath(p)) for p in except_for)
    _set_dumpable(False)


def unprotect_all() -> None:
    """Forget every protected folder (tests; a process that no longer holds them)."""
    with _lock:
        _protected.clear()
    _set_dumpable(True)


def _set_dumpable(dumpable: bool) -> None:
    """A non-dumpable process's /proc files (environ, mem, ...) belong to root: a child of the same
    user cannot read them. It also writes no core dump (which would hold its keys)."""
    _libc().prctl(_PR_SET_DUMPABLE, int(dumpable), 0, 0, 0)


def _drop_capabilities(libc) -> None:
    """In the child: no capability now or after exec (bounding, ambient, effective, permitted and
    inheritable sets emptied). For a child of root this is what keeps it out of its parent's
    /proc files; for anyone else the sets are empty already (dropping the bounding set is refused
    without CAP_SETPCAP, and no_new_privs keeps a set-user-ID program from giving any back)."""
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    for cap in range(64):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == errno.EINVAL:
            break  # past the kernel's last capability
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    if libc.capset(header, (ctypes.c_uint32 * 6)()) != 0:
        raise OSError(ctypes.get_errno(), "capset")


def _resolved(path: Path) -> Path | None:
    try:
        return path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None


def _needed() -> list[Path]:
    """What every child needs: the Python it runs and the packages it imports."""
    import sys

    here = Path(__file__).resolve().parents[2]
    return [p for p in (_resolved(Path(x)) for x in (sys.prefix, sys.base_prefix, sys.executable, here)) if p is not None]


def _allowed_paths(protected: dict[Path, tuple[Path, ...]]) -> list[Path]:
    """The folders and files a confined child may use: everything from / down, less each
    protected folder, plus the exceptions inside them. A folder that holds the Python the
    children run, or this package, is not protected (they could not start)."""
    needed = _needed()
    denied = [p for p in (_resolved(p) for p in protected) if p is not None
              and not any(p == n or p in n.parents for n in needed)]
    allowed: list[Path] = [Path("/")]
    for folder in denied:
        kept: list[Path] = []
        for root in allowed:
            if root == folder or folder in root.parents:
                continue  # the folder itself, or inside it (an exception is added back below)
            if root in folder.parents:
                kept.extend(_around(root, folder))
            else:
                kept.append(root)
        allowed = kept
    for exceptions in protected.values():
        allowed.extend(p for p in (_resolved(e) for e in exceptions) if p is not None)
    return allowed


def _around(root: Path, folder: Path) -> list[Path]:
    """Every entry beneath `root` on the way to `folder` but the ones leading to it (symbolic links
    left out: what they name is reached under its own rules)."""
    out: list[Path] = []
    current = root
    for part in folder.relative_to(root).parts:
        try:
            entries = list(os.scandir(current))
        except OSError:
            entries = []
        for entry in entries:
            if entry.name == part:
                continue
            out.append(Path(entry.path))
        current = current / part
    return out


def _ruleset(abi: int, paths: list[Path]) -> int:
    """A Landlock ruleset fd that handles every right the kernel knows and allows them on `paths`."""
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    handled_fs = (1 << _FS_BITS_BY_ABI.get(abi, 16)) - 1
    fields = [handled_fs]
    if abi >= 4:
        fields.append(_NET_ALL)
    if abi >= 6:
        fields.append(_SCOPE_ALL)
    attr = (ctypes.c_uint64 * len(fields))(*fields)
    fd = libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)), ctypes.c_uint32(0))
    if fd < 0:
        raise OSError(ctypes.get_errno(), f"landlock_create_ruleset: {os.strerror(ctypes.get_errno())}")
    try:
        # Listing any folder stays allowed (READ_DIR on /, which covers a protected folder's names but
        # none of its contents): Python's import system lists each folder on sys.path, and the one
        # holding the code may hold the protected folder too (a verifier's default var/verifier).
        paths = [(Path("/"), _READ_DIR)] + [(p, None) for p in paths]
        for path, only in paths:
            try:
                pfd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                mode = os.fstat(pfd).st_mode
                if stat.S_ISLNK(mode):
                    continue
                access = only if only is not None else handled_fs if stat.S_ISDIR(mode) else handled_fs & _FILE_ACCESS
                rule = _PathBeneath(access, pfd)
                if libc.syscall(_SYS_ADD_RULE, ctypes.c_int(fd), ctypes.c_int(_RULE_PATH_BENEATH), ctypes.byref(rule),
                                ctypes.c_uint32(0)) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"landlock_add_rule {path}: {os.strerror(err)}")
            finally:
                os.close(pfd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _enter(ruleset_fd: int) -> None:
    """In the child, between fork and exec: no capabilities, no new privileges, then the
    ruleset, for good."""
    libc = _libc()
    _drop_capabilities(libc)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    libc.syscall.restype = ctypes.c_long
    if libc.syscall(_SYS_RESTRICT_SELF, ctypes.c_int(ruleset_fd), ctypes.c_uint32(0)) != 0:
        raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    os.close(ruleset_fd)


@contextmanager
def confined():
    """Keyword arguments for subprocess.Popen that start the child confined (preexec_fn, pass_fds),
    or none where Landlock is unavailable or ASSAY_NO_CONFINE is set. Use within the block:

        with confine.confined() as extra:
            proc = subprocess.Popen(cmd, ..., **extra)
    """
    abi = 0 if os.environ.get("ASSAY_NO_CONFINE") else abi_version()
    if not abi:
        yield {}
        return
    with _lock:
        protected = dict(_protected)
    fd = _ruleset(abi, _allowed_paths(protected))
    try:
        yield {"preexec_fn": lambda: _enter(fd), "pass_fds": (fd,)}
    finally:
        os.close(fd)
