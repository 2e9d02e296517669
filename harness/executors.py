"""Executors run a list of run configurations; the driver here writes their records.

The driver skips every run whose record is already on disk and writes each new record
atomically as soon as it arrives, so a killed grid loses at most the runs in flight and a
rerun continues where it stopped. Executors only compute: a distributed engine plugs in by
yielding records for configurations, without needing the results directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Protocol, Sequence

import torch

from harness.checkpoints import FileCheckpoint
from harness.latency import LatencySettings
from harness.plugins import registered_digest
from harness.records import RunConfig, RunRecord, read_record, record_path, write_record
from harness.runner import Workspace, execute
from harness.tracks import Track


class Executor(Protocol):
    def map(self, track: Track, configs: Sequence[RunConfig]) -> Iterator[RunRecord]: ...


@dataclass
class LocalExecutor:
    """Runs configurations one after another in this process, sharing one workspace per track.

    On a CPU the small benchmark networks run fastest on one intra-op thread, and more threads
    slow to a crawl when other processes compete for the cores, so ``threads`` defaults to 1.
    With ``checkpoint_folder``, every run saves its training state after each epoch, so a run
    killed mid-way resumes from its last epoch; the checkpoint goes once the record is written.
    """

    results_dir: Path
    device: str = "cpu"
    threads: int = 1
    latency: LatencySettings | None = None
    checkpoint_folder: Path | None = None

    def map(self, track: Track, configs: Sequence[RunConfig]) -> Iterator[RunRecord]:
        torch.set_num_threads(self.threads)
        workspace = Workspace(track, self.results_dir, self.device, latency=self.latency)
        for config in configs:
            if self.checkpoint_folder is None:
                yield execute(workspace, config)
                continue
            checkpoint = FileCheckpoint.for_run(self.checkpoint_folder, config)
            yield execute(workspace, config, checkpoint)
            checkpoint.discard()


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


def pending(configs: Sequence[RunConfig], results_dir: Path, retry_failed: bool = False) -> list[RunConfig]:
    """Configurations still to run: no record, a record that cannot be used (unreadable, or made by
    another version of the method's source), or -- with ``retry_failed`` -- a ``failed`` record.

    An unusable record is rerun rather than skipped, since the audit refuses it: skipping it
    would leave its cell a seed short for good.
    """
    digests: dict[str, str | None] = {}
    todo = []
    for config in configs:
        path = record_path(results_dir, config)
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
    results_dir: str | Path,
    executor: Executor,
    on_record: Callable[[RunRecord], None] | None = None,
    retry_failed: bool = False,
) -> GridOutcome:
    results_dir = Path(results_dir)
    todo = pending(configs, results_dir, retry_failed)
    outcome = GridOutcome(planned=len(configs), skipped=len(configs) - len(todo))
    for record in executor.map(track, todo):
        write_record(results_dir, record)
        outcome.written.append(record)
        if on_record is not None:
            on_record(record)
    return outcome
