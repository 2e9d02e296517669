"""One progress display for a grid of runs: a rich bar (done/total, elapsed, ETA) on a terminal, plain
``k/N`` lines otherwise (logs and CI keep every step, with no control characters)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable

from harness.cli import common

if TYPE_CHECKING:
    from rich.progress import Progress

    from harness.run.record import RunRecord


def progress_bar(**settings: Any) -> Progress:
    """The bar of every long command, on stderr: description, bar, done/total, elapsed, ETA and the last step
    (the ``last`` field of its task)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), TextColumn("{task.fields[last]}"), console=common.err, **settings)


class RunProgress:
    """``start(total, done)`` once the runs are known, ``advance(record)`` per record written, ``stop()``."""

    def __init__(self, description: str, quiet: bool = False):
        self.description, self.quiet = description, quiet
        self._bar = None
        self._task = None
        self.done = self.total = 0
        self._started = time.monotonic()

    def start(self, total: int, done: int = 0) -> None:
        self.total, self.done, self._started = total, done, time.monotonic()
        if self.quiet:
            return
        if common.err.is_terminal:
            self._bar = progress_bar()
            self._bar.start()
            self._task = self._bar.add_task(self.description, total=total, completed=done, last="")
        else:
            common.err.print(f"{self.description}: {done}/{total} runs done, {total - done} to run", highlight=False)

    def advance(self, record: RunRecord) -> None:
        self.done += 1
        if self.quiet:
            return
        acc = f"{100 * record.test_acc:.2f}%" if record.test_acc is not None else record.status
        last = f"{record.config().label} {acc}"
        if self._bar is not None:
            self._bar.update(self._task, advance=1, last=last)
            return
        elapsed = time.monotonic() - self._started
        common.err.print(f"{self.done}/{self.total} {last} ({elapsed:.0f} s)", highlight=False)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def callbacks(self) -> tuple[Callable, Callable]:
        return self.start, self.advance
