"""Executors run a list of run configurations; the driver here writes their records.

The driver skips every run whose record is already on disk and writes each new record
atomically as soon as it arrives, so a killed grid loses at most the runs in flight and a
rerun continues where it stopped. Executors only compute: a distributed engine plugs in by
yielding records for configurations, without needing the results directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Protocol, Sequence

from harness.core.layout import ResultsLayout
from harness.methods.plugins import registered_digest
from harness.run.record import (
    RunConfig,
    RunRecord,
    read_record,
    record_path,
    write_record,
)
from harness.track.definition import Track


class Executor(Protocol):
    def map(self, track: Track, configs: Sequence[RunConfig]) -> Iterator[RunRecord]: ...


@dataclass
class GridOutcome:
    planned: int
    skipped: int
    written: list[RunRecord] = field(default_factory=list)

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


def run_grid(
    track: Track,
    configs: Sequence[RunConfig],
    layout: ResultsLayout,
    executor: Executor,
    on_record: Callable[[RunRecord], None] | None = None,
    retry_failed: bool = False,
) -> GridOutcome:
    todo = pending(configs, layout, retry_failed)
    outcome = GridOutcome(planned=len(configs), skipped=len(configs) - len(todo))
    for record in executor.map(track, todo):
        write_record(layout, record)
        outcome.written.append(record)
        if on_record is not None:
            on_record(record)
    return outcome
