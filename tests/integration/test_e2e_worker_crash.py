"""A worker killed mid-step leaves the release re-runnable, never verified."""
from __future__ import annotations

import time

import httpx
import pytest

from tests.support.stack import Stack

pytestmark = pytest.mark.slow


def test_killed_worker_leaves_release_rerunnable(smollm2, tmp_path):
    stack = Stack(extra_env={"ASSAY_BROKER_VISIBILITY_TIMEOUT": "20"}).start()
    try:
        home = stack.client_home(tmp_path / "home")
        stack.assay(home, "publish", str(smollm2), "demo/crash:q4_1")
        headers = {"Authorization": f"Bearer {stack.token}"}
        worker = stack.procs[-1]
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # wait until the probes step (model execution) is running
            status = httpx.get(f"{stack.url}/api/v1/releases/demo/crash:q4_1/status", headers=headers).json()
            steps = {s["name"]: s["status"] for s in status["steps"]}
            if steps["probes"] == "running":
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"probes never started: {status}\n{stack.logs()}")
        stack.kill(worker)  # SIGKILL the worker's whole process group, mid-step
        status = httpx.get(f"{stack.url}/api/v1/releases/demo/crash:q4_1/status", headers=headers).json()
        assert status["status"] == "verifying"
        time.sleep(3)
        assert httpx.get(f"{stack.url}/api/v1/releases/demo/crash:q4_1/status", headers=headers).json()["status"] == "verifying"
        stack.start_worker()  # a new worker gets the unacknowledged task back and re-runs the step
        final = stack.wait_status("demo/crash:q4_1", timeout=600)
        assert final["status"] == "verified", (final, stack.logs())
        probes = next(s for s in final["steps"] if s["name"] == "probes")
        assert probes["status"] == "passed"
    finally:
        stack.stop()
