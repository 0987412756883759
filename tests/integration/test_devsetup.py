"""`manage.py devsetup` (what `make up` runs) on a database that another checkout's registry filled."""
from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from registry import serverkeys
from registry.models import LogEntry
from tests.support.factories import registry_dirs  # noqa: F401  (fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("registry_dirs")]


def test_devsetup_prints_a_token_and_runs_again():
    for _ in range(2):
        out = io.StringIO()
        call_command("devsetup", "--url", "http://127.0.0.1:8000", stdout=out)
        assert "API token: assay_" in out.getvalue()


def test_a_database_holding_another_key_folders_log_is_refused_with_what_to_do(settings):
    """A second clone on the same machine finds the `assay` database of the first: a new log key
    would sign a log it never signed (and the verifier 'local' is registered with a key in the other
    clone). devsetup says so, creates no key, and says how to go on, where make up failed on a 409."""
    call_command("devsetup", stdout=io.StringIO())  # the first checkout: its key, its log
    assert LogEntry.objects.exists()
    key_file = settings.ASSAY_KEY_DIR / "log.key"
    key_file.unlink()  # the second checkout: the same database, a key folder of its own
    serverkeys.log_key.cache_clear()
    with pytest.raises(CommandError, match="belongs to another checkout or key folder.*createdb.*dropdb"):
        call_command("devsetup", stdout=io.StringIO())
    assert not key_file.exists()
