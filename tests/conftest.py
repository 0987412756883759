import os
from pathlib import Path

import pytest

from tests.support.models import smollm2_gguf
from tests.support.stack import Stack


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
    home = tmp_path / "home"
    home.mkdir()
    stack.assay(home, "login", stack.url, "--token", stack.token)
    stack.assay(home, "trust", "add", stack.url, "--yes")
    stack.assay(home, "keygen")
    stack.assay(home, "keys", "register")
    return home
