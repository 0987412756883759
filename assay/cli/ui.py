"""Terminal output helpers: progress bars and one-line errors.

Much of what the CLI prints comes from the registry or from files (status reasons, step
summaries, file names, error messages). Rich would read `[...]` in such text as markup and
raise MarkupError on e.g. `[/INST]`, so both consoles have markup off: a string is printed as
it is. Styled output is built with `styled()` (a rich Text), which never parses its text.
"""
from __future__ import annotations

import math
import sys
import threading

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.text import Text

console = Console(stderr=True, markup=False, highlight=False, soft_wrap=True)  # a long line stays one line in a log
out = Console(markup=False, soft_wrap=True)  # plain lines, never wrapped at 80 columns when piped


def styled(*parts: str | tuple[str, str]) -> Text:
    """A line from plain strings and (text, style) pairs; no text is read as markup."""
    return Text.assemble(*parts)


def print_error(label: str, message: str) -> None:
    """`label:` in bold red, then the message verbatim, on one line (no wrapping at 80 columns)."""
    console.print(styled((f"{label}:", "bold red"), " ", message), soft_wrap=True)


class TransferBar:
    """One progress bar. Bars open at the same time (the parts of a split release, downloaded at
    once) share one live display: rich draws only one at a time. It starts with the first bar
    and stops when the last one closes; bars may be opened, advanced and closed on any thread."""

    _lock = threading.Lock()
    _shared: Progress | None = None
    _open = 0

    def __init__(self, total: int, description: str):
        with TransferBar._lock:
            if TransferBar._shared is None:
                TransferBar._shared = Progress(
                    TextColumn("{task.description}", markup=False), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    TimeRemainingColumn(), console=console, transient=False, disable=not sys.stderr.isatty(),
                )
                TransferBar._shared.start()
            TransferBar._open += 1
            self.progress = TransferBar._shared
            self.task = self.progress.add_task(description, total=total)
        self.closed = False

    def advance(self, n: int) -> None:
        self.progress.advance(self.task, n)

    def close(self) -> None:
        with TransferBar._lock:
            if self.closed:
                return
            self.closed = True
            TransferBar._open -= 1
            if TransferBar._open == 0:
                self.progress.stop()
                TransferBar._shared = None


def progress_factory(total: int, description: str) -> TransferBar:
    return TransferBar(total, description)


json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")


class Seconds(click.ParamType):
    """A wall-clock limit in seconds: a finite number above 0 (click's float takes "inf" and "nan",
    which subprocess's communicate() turns into OverflowError or ValueError: a traceback)."""

    name = "seconds"

    def convert(self, value, param, ctx):
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not (math.isfinite(seconds) and 0 < seconds <= 366 * 86400):
            self.fail(f"{value!r} is not a number of seconds from above 0 to a year", param, ctx)
        return seconds


SECONDS = Seconds()
