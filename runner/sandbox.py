"""Run `python -m runner.child` under limits: wall-clock timeout (the whole process group is
killed on expiry), address-space limit, scrubbed environment, private temp working dir,
stdin used only for the request. Whatever happens in the child (segfault, OOM kill, hang,
garbage output) comes back as a ChildResult; nothing escapes and the caller never hangs.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from assay.toolchain import confine

PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
               "NUMEXPR_NUM_THREADS")
# OMP_WAIT_POLICY: the plan's busy_wait sets it (spinning, on the cores the plan found free);
# an operator's own setting passes through and wins.
PASS_THROUGH = ("PATH", "LANG", "LC_ALL", "CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "LD_LIBRARY_PATH",
                "GGML_CUDA_NO_PINNED", "OMP_WAIT_POLICY")
STDERR_TAIL = 4000


@dataclass
class ChildResult:
    status: str                      # "ok" | "crashed" | "timed_out"
    records: list[dict] = field(default_factory=list)
    error: str | None = None
    returncode: int | None = None
    elapsed_s: float = 0.0
    stderr_tail: str = ""


def scrubbed_env(home: str, *, threads: int | None = None, base: dict | None = None,
                 busy_wait: bool | None = None) -> dict:
    """The child's whole environment: PATH/LANG (and GPU selection) from `base`, HOME and
    TMPDIR = the private temp dir, thread-count variables, nothing else (no tokens, no proxies)."""
    base = os.environ if base is None else base
    env = {k: base[k] for k in PASS_THROUGH if k in base}
    env.setdefault("PATH", "/usr/bin:/bin")
    env.setdefault("LANG", "C.UTF-8")
    n = str(threads or 1)
    env.update({k: n for k in THREAD_VARS})
    if busy_wait is not None and "OMP_WAIT_POLICY" not in env:
        env["OMP_WAIT_POLICY"] = "ACTIVE" if busy_wait else "PASSIVE"
    env["OPENBLAS_NUM_THREADS"] = "1"   # numpy in the child only does softmaxes
    env.update({
        "HOME": home, "TMPDIR": home, "PYTHONPATH": PACKAGE_ROOT, "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1", "MALLOC_ARENA_MAX": "2",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def _describe_exit(rc: int) -> str:
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        hint = " (out of memory?)" if -rc == signal.SIGKILL else ""
        return f"child killed by {name}{hint}"
    return f"child exited with status {rc}"


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL a child started with start_new_session=True and everything it started."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            proc.kill()
        except ProcessLookupError:
            pass


def _parse_lines(data: bytes) -> tuple[list[dict], int]:
    records, bad = [], 0
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(rec, dict):
            records.append(rec)
        else:
            bad += 1
    return records, bad


def run_child(
    request: dict,
    *,
    timeout_s: float,
    as_limit: int | None = None,
    threads: int | None = None,
    python: str | None = None,
    module: str = "runner.child",
    busy_wait: bool | None = None,
) -> ChildResult:
    """Run one child with `request` on stdin; collect its JSON-line records."""
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="assay-runner-") as tmp:
        env = scrubbed_env(tmp, threads=threads, busy_wait=busy_wait)
        argv = [python or sys.executable, "-s", "-m", module]
        if as_limit:
            argv += ["--as-limit", str(int(as_limit))]
        with open(os.path.join(tmp, "stderr.log"), "w+b") as err:
            try:
                with confine.confined() as confinement:
                    proc = subprocess.Popen(
                        argv, cwd=tmp, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                        start_new_session=True, close_fds=True, **confinement,
                    )
            except (OSError, subprocess.SubprocessError) as exc:
                return ChildResult("crashed", error=f"could not start the runner child: {exc}",
                                   elapsed_s=time.monotonic() - t0)
            timed_out = False
            payload = json.dumps(request).encode("utf-8")
            try:
                out, _ = proc.communicate(payload, timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                kill_group(proc)
                try:
                    out, _ = proc.communicate(timeout=10)
                except subprocess.TimeoutExpired:  # should not happen: the whole group is dead
                    out = b""
            finally:
                if proc.poll() is None:
                    kill_group(proc)
                    proc.wait()
                # Any grandchild left in the group goes too.
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            err.seek(0, os.SEEK_END)
            size = err.tell()
            err.seek(max(0, size - STDERR_TAIL))
            tail = err.read().decode("utf-8", "replace")
    records, bad = _parse_lines(out or b"")
    rc = proc.returncode
    elapsed = time.monotonic() - t0
    errors = [r.get("error") for r in records if r.get("type") == "error"]
    if timed_out:
        return ChildResult("timed_out", records, f"runner child timed out after {timeout_s:g} s",
                           rc, elapsed, tail)
    done = any(r.get("type") == "done" for r in records)
    if rc != 0 or not done or errors:
        msg = errors[0] if errors else _describe_exit(rc) if rc != 0 else "child ended without finishing"
        if bad:
            msg += f" ({bad} unparseable output lines)"
        return ChildResult("crashed", records, msg, rc, elapsed, tail)
    return ChildResult("ok", records, None, rc, elapsed, tail)
