"""Terminal output helpers: progress bars and one-line errors.

Much of what the CLI prints comes from the registry or from files (status reasons, step
summaries, file names, error messages). Rich would read `[...]` in such text as markup and
raise MarkupError on e.g. `[/INST]`, so both consoles have markup off: a string is printed as
it is. Styled output is built with `styled()` (a rich Text), which never parses its text.
"""
from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.text import Text

console = Console(stderr=True, markup=False, highlight=False)
out = Console(markup=False, soft_wrap=True)  # plain lines, never wrapped at 80 columns when piped


def styled(*parts: str | tuple[str, str]) -> Text:
    """A line from plain strings and (text, style) pairs; no text is read as markup."""
    return Text.assemble(*parts)


def print_error(label: str, message: str) -> None:
    """`label:` in bold red, then the message verbatim, on one line (no wrapping at 80 columns)."""
    console.print(styled((f"{label}:", "bold red"), " ", message), soft_wrap=True)


class TransferBar:
    def __init__(self, total: int, description: str):
        self.progress = Progress(
            TextColumn("{task.description}", markup=False), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
            console=console, transient=False, disable=not sys.stderr.isatty(),
        )
        self.progress.start()
        self.task = self.progress.add_task(description, total=total)

    def advance(self, n: int) -> None:
        self.progress.advance(self.task, n)

    def close(self) -> None:
        self.progress.stop()


def progress_factory(total: int, description: str) -> TransferBar:
    return TransferBar(total, description)


json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
