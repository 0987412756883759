"""The runner's child sandbox: env scrubbing, limits, timeout and crash handling (real child
processes of `python -m runner.child`; the selftest op stands in for a misbehaving llama.cpp)."""
from __future__ import annotations

import os
import time

from runner.hardware import detect_hardware
from runner.sandbox import run_child, scrubbed_env


def _record(res, key):
    return next(r for r in res.records if key in r)


def test_scrubbed_env_keeps_only_safe_variables():
    env = scrubbed_env("/tmp/x", threads=4, base={"PATH": "/bin", "AWS_SECRET_ACCESS_KEY": "s", "ASSAY_TOKEN": "t",
                                                  "HOME": "/root", "HTTPS_PROXY": "http://p", "LANG": "C.UTF-8"},
                       busy_wait=False)
    assert env["HOME"] == "/tmp/x" and env["TMPDIR"] == "/tmp/x" and env["PATH"] == "/bin"
    assert env["OMP_NUM_THREADS"] == "4" and env["OMP_WAIT_POLICY"] == "PASSIVE"
    assert not {"AWS_SECRET_ACCESS_KEY", "ASSAY_TOKEN", "HTTPS_PROXY"} & set(env)


def test_child_sees_scrubbed_env_private_cwd_and_limits(monkeypatch):
    monkeypatch.setenv("ASSAY_SECRET_FOR_TEST", "leak")
    res = run_child({"op": "selftest", "action": "env"}, timeout_s=60, as_limit=2 << 30)
    assert res.status == "ok", res
    rec = _record(res, "env")
    assert "ASSAY_SECRET_FOR_TEST" not in rec["env"]
    assert rec["env"]["HOME"] == rec["cwd"] and os.path.basename(rec["cwd"]).startswith("assay-runner-")
    assert not os.path.exists(rec["cwd"])  # removed afterwards
    assert rec["stdin_empty"] is True
    assert rec["rlimit_as"] == 2 << 30


def test_hanging_child_times_out_and_its_group_is_killed():
    t0 = time.monotonic()
    res = run_child({"op": "selftest", "action": "spawn_sleeper"}, timeout_s=3)
    assert time.monotonic() - t0 < 20
    assert res.status == "timed_out" and "timed out after 3 s" in res.error
    pid = _record(res, "grandchild_pid")["grandchild_pid"]
    time.sleep(0.2)
    assert not os.path.exists(f"/proc/{pid}") or "Z" in open(f"/proc/{pid}/stat").read().split()[2]


def test_segfault_is_a_crashed_result():
    res = run_child({"op": "selftest", "action": "segv"}, timeout_s=60)
    assert res.status == "crashed" and "SIGSEGV" in res.error and res.returncode < 0


def test_address_space_limit_turns_a_huge_allocation_into_a_result():
    res = run_child({"op": "selftest", "action": "alloc", "bytes": 4 << 30}, timeout_s=60, as_limit=1 << 30)
    assert res.status == "crashed" and "MemoryError" in res.error


def test_nonzero_exit_and_unknown_op():
    assert run_child({"op": "selftest", "action": "exit", "code": 3}, timeout_s=60).error == "child exited with status 3"
    res = run_child({"op": "nope"}, timeout_s=60)
    assert res.status == "crashed" and "unknown op" in res.error


def test_hardware_profile_of_this_machine():
    prof = detect_hardware()
    assert prof.usable_cores >= 1 and prof.physical_cores >= 1 and prof.ram_available_bytes > 0
    assert prof.llama_info_error is None, prof.llama_info_error
    assert prof.llama_cpp_python_version and "CPU" in (prof.llama_system_info or "")
    assert isinstance(prof.to_dict()["gpus"], list)
