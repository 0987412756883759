"""Terminal output helpers: progress bars and one-line errors."""
from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

console = Console(stderr=True)
out = Console()


class TransferBar:
    def __init__(self, total: int, description: str):
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
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
