"""The local executor: runs one after another in this process, sharing one workspace per track."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import torch

from harness.core.layout import ResultsLayout
from harness.methods.isolation import Isolation
from harness.prune.latency import LatencySettings
from harness.run.execution import execute_many
from harness.run.pipeline import Workspace
from harness.run.record import RunConfig, RunRecord
from harness.track.definition import Track
from harness.train.engines import EngineSettings


@dataclass
class LocalExecutor:
    """Runs configurations in this process with ``engine``'s training steps.

    On a CPU the small benchmark networks run fastest on one intra-op thread, and more threads
    slow to a crawl when other processes compete for the cores, so ``threads`` defaults to 1.
    With ``checkpoint_folder``, every run saves its training state after each epoch, so a run
    killed mid-way resumes from its last epoch; the checkpoint goes once the record is written.
    """

    layout: ResultsLayout
    device: str = "cpu"
    threads: int = 1
    latency: LatencySettings | None = None
    engine: EngineSettings = EngineSettings()
    checkpoint_folder: Path | None = None
    isolation: Isolation | None = None
    """Computes plugin plans; share one to share its cache of plugin outcomes (a submission's tuning and runs)."""

    def map(self, track: Track, configs: Sequence[RunConfig]) -> Iterator[RunRecord]:
        torch.set_num_threads(self.threads)
        workspace = Workspace(track, self.layout, device=self.device, latency=self.latency, engine=self.engine,
                              isolation=self.isolation)
        yield from execute_many(workspace, configs, self.checkpoint_folder)
