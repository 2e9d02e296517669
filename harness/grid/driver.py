"""Executors run a list of run configurations; the driver here writes their records.

The driver skips every run whose record is already on disk and writes each new record
atomically as soon as it arrives, so a killed grid loses at most the runs in flight and a
rerun continues where it stopped. Executors only compute: a distributed engine plugs in by
yielding records for configurations, without needing the results directory.

Before any work the driver checks that the track's results folder is a writable folder and that
every budget is within bounds. Runs are *claimed*: right before a configuration is handed to the
executor the driver takes its advisory lock (``ResultsLayout.lock``) and reads its record again, so
two processes on one results folder -- or two machines sharing it -- never compute the same run: the
second skips what the first has finished or is running. A claim is dropped once its record is
written, or when the process ends in any way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Protocol, Sequence

from harness.core.atomic import check_writable, remove_stale_temps
from harness.core.layout import ResultsLayout
from harness.core.locks import FileLock, acquire
from harness.methods.plugins import registered_digest
from harness.run.record import (
    RunConfig,
    RunRecord,
    read_record,
    record_path,
    write_record,
)
from harness.track.definition import Track
from harness.track.schedules import check_budget


class Executor(Protocol):
    def map(self, track: Track, configs: Sequence[RunConfig]) -> Iterator[RunRecord]: ...


@dataclass
class GridOutcome:
    planned: int
    skipped: int
    written: list[RunRecord] = field(default_factory=list)
    elsewhere: int = 0
    """Of ``skipped``: runs another process finished or was running when this one came to them."""

    @property
    def failed(self) -> list[RunRecord]:
        return [r for r in self.written if r.status == "failed"]

    @property
    def diverged(self) -> list[RunRecord]:
        return [r for r in self.written if r.status == "diverged"]


def pending(configs: Sequence[RunConfig], layout: ResultsLayout, retry_failed: bool = False) -> list[RunConfig]:
    """Configurations still to run: no record, a record that cannot be used (unreadable, or made by
    another version of the method's source), or -- with ``retry_failed`` -- a ``failed`` record.

    An unusable record is rerun rather than skipped, since the audit refuses it: skipping it
    would leave its cell a seed short for good.
    """
    digests: dict[str, str | None] = {}
    todo = []
    for config in configs:
        path = record_path(layout, config)
        if not path.exists():
            todo.append(config)
            continue
        try:
            record = read_record(path)
        except ValueError:
            todo.append(config)
            continue
        if config.method not in digests:
            digests[config.method] = registered_digest(config.method)
        stale = record.method_digest is not None and record.method_digest != digests[config.method]
        if stale or (retry_failed and record.status == "failed"):
            todo.append(config)
    return todo


class Claims(Sequence[RunConfig]):
    """The pending configurations, each claimed only when the executor reaches it.

    Iterating takes each run's lock and re-reads its record right before yielding it; a run locked by
    another process, or finished since the pending list was made, is left out. A later iteration
    replays what was claimed (executors that look at their configurations more than once see the
    same ones); ``len`` and indexing claim everything first."""

    SPARE_FILES = 256
    """Open files left for everything else: a held claim is an open file, so claims stop short of the limit."""

    def __init__(self, candidates: Sequence[RunConfig], layout: ResultsLayout, track: str, retry_failed: bool):
        self._candidates, self._layout, self._track, self._retry = list(candidates), layout, track, retry_failed
        self._claimed: list[RunConfig] = []
        self._locks: dict[str, FileLock] = {}
        self._next = 0
        self.elsewhere = 0
        self.unclaimed = 0
        """Runs handed over without a lock (past the open-file limit): their record was still re-read."""
        self._most = _open_file_room(len(self._candidates) + self.SPARE_FILES) - self.SPARE_FILES

    def __iter__(self) -> Iterator[RunConfig]:
        index = 0
        while True:
            if index < len(self._claimed):
                index += 1
                yield self._claimed[index - 1]
                continue
            if self._next >= len(self._candidates):
                return
            config = self._candidates[self._next]
            self._next += 1
            if self._claim(config):
                self._claimed.append(config)

    def _claim(self, config: RunConfig) -> bool:
        if len(self._locks) >= self._most:  # an executor that takes the whole list at once, past the file limit
            if pending([config], self._layout, self._retry):
                self.unclaimed += 1
                return True
            self.elsewhere += 1
            return False
        lock = acquire(self._layout.lock(self._track, config.run_id))
        if lock is None:
            self.elsewhere += 1
            return False
        if not pending([config], self._layout, self._retry):  # written by another process since we looked
            lock.release()
            self.elsewhere += 1
            return False
        self._locks[config.run_id] = lock
        return True

    def __len__(self) -> int:
        return len(self._all())

    def __getitem__(self, index):
        return self._all()[index]

    def _all(self) -> list[RunConfig]:
        for _ in self:
            pass
        return self._claimed

    def release(self, run_id: str | None = None) -> None:
        """Drop one run's claim (once its record is on disk), or every claim."""
        for key in [run_id] if run_id is not None else list(self._locks):
            lock = self._locks.pop(key, None)
            if lock is not None:
                lock.release()


def _open_file_room(wanted: int) -> int:
    """Raise this process's open-file limit towards ``wanted`` (up to the hard limit); the limit it has now."""
    try:
        import resource
    except ImportError:  # not POSIX: no limit to ask about
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return wanted if soft == resource.RLIM_INFINITY else soft


def check_grid(track: Track, configs: Sequence[RunConfig], layout: ResultsLayout) -> None:
    """What must hold before any work: a writable results folder and bounded budgets (one line each)."""
    check_writable(layout.track(track.name))
    for budget in sorted({c.budget_epochs for c in configs}):
        check_budget(budget)


def run_grid(
    track: Track,
    configs: Sequence[RunConfig],
    layout: ResultsLayout,
    executor: Executor,
    on_record: Callable[[RunRecord], None] | None = None,
    retry_failed: bool = False,
) -> GridOutcome:
    check_grid(track, configs, layout)
    for folder in (layout.track(track.name), layout.dense(track.name), layout.checkpoints(track.name)):
        remove_stale_temps(folder)  # what killed writers left (a record it held was written again, not lost)
    todo = pending(configs, layout, retry_failed)
    outcome = GridOutcome(planned=len(configs), skipped=len(configs) - len(todo))
    claims = Claims(todo, layout, track.name, retry_failed)
    try:
        for record in executor.map(track, claims):
            write_record(layout, record)
            claims.release(record.id)
            outcome.written.append(record)
            if on_record is not None:
                on_record(record)
    finally:
        claims.release()
        outcome.elsewhere = claims.elsewhere
        outcome.skipped += claims.elsewhere
    return outcome
