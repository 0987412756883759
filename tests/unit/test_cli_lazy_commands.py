"""The commands defined outside assay/cli/main.py are imported when a command line names them
(main._LazyGroup): each resolves under its own name, --help lists them all, and a command such as
`assay pull` starts without importing the toolchain, the witness server or the log commands."""
from __future__ import annotations

import subprocess
import sys

import click
from click.testing import CliRunner

from assay.cli.main import LAZY_COMMANDS, cli


def test_every_lazy_command_resolves_under_its_own_name():
    ctx = click.Context(cli)
    for name in LAZY_COMMANDS:
        command = cli.get_command(ctx, name)
        assert isinstance(command, click.Command) and command.name == name


def test_help_lists_the_lazy_commands_with_the_others():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    listed = {line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.strip()}
    assert set(LAZY_COMMANDS) | {"pull", "publish", "verify", "login"} <= listed


def test_a_pull_does_not_import_the_other_commands_modules():
    script = ("import sys\nfrom assay.cli.main import cli\n"
              "print(sorted(m for m in sys.modules if m.startswith(('assay.cli.', 'assay.toolchain')) "
              "and m not in ('assay.cli.main', 'assay.cli.ui')))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_an_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(cli, ["nosuch"])
    assert result.exit_code == 2 and "No such command 'nosuch'" in result.output
