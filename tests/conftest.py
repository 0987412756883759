import os
from pathlib import Path

import pytest

# The in-process verifier of the pipeline tests: the whole-vocabulary trigger search takes minutes
# per SmolLM2 run on 2 cores, so it runs only where a test asks for it (test_vocab_scan.py).
os.environ.setdefault("ASSAY_VOCAB_SCAN", "off")
os.environ.setdefault("ASSAY_QUANT_CHECK_TYPES", "off")  # likewise the quantized copies of originals (test_quant_check.py)

from tests.support.models import smollm2_gguf
from tests.support.stack import Stack


@pytest.fixture(autouse=True)
def _rate_limits_start_empty():
    """Every test starts with no rate-limit counters (all tests come from 127.0.0.1). Only those
    keys are deleted: the Redis database is shared with the test stacks' Celery queues."""
    try:
        import redis
        from django.conf import settings

        client = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"], socket_timeout=1)
        for key in client.scan_iter("assay:*:rl:*", count=1000):
            client.delete(key)
    except Exception:  # no Django settings or no Redis (a unit test): nothing to reset
        pass
    yield


@pytest.fixture(scope="session")
def smollm2() -> Path:
    return smollm2_gguf()


@pytest.fixture(scope="session")
def stack():
    """A live registry + Celery worker shared by the end-to-end tests of a session."""
    s = Stack().start()
    yield s
    s.stop()


@pytest.fixture
def user_home(tmp_path, stack) -> Path:
    """A fresh client home: logged in, trusting the stack, with a registered key."""
    return stack.client_home(tmp_path / "home")


@pytest.fixture(scope="session")
def published_smollm2(stack, smollm2, tmp_path_factory):
    """demo/smollm2:q4_1: the real SmolLM2 published through the CLI and verified by the worker,
    once per session; (publisher home, final status). Every test that needs a verified real
    release shares it, whatever order the test modules run in."""
    home = stack.client_home(tmp_path_factory.mktemp("publisher"))
    result = stack.assay(home, "publish", str(smollm2), "demo/smollm2:q4_1")
    assert "/api/v1/releases/demo/smollm2:q4_1/status" in result.stdout
    status = stack.wait_status("demo/smollm2:q4_1")
    assert status["status"] == "verified", (status, stack.logs())
    return home, status


@pytest.fixture
def flaky():
    """FlakyServer(drops, ...) on loopback, closed after the test (tests/support/flaky_server.py)."""
    from tests.support.flaky_server import FlakyServer

    servers = []
    yield lambda *a, **kw: servers.append(FlakyServer(*a, **kw)) or servers[-1]
    for s in servers:
        s.close()
