"""Per-epoch training checkpoints on disk, so a retried run continues instead of starting over.

One file per run, ``<folder>/<run id>.pt``, rewritten atomically after every epoch (a worker
killed mid-write leaves the previous epoch's file). The file holds plain data only -- tensors,
numbers and lists -- so it loads with ``weights_only=True``. The run id is the hash of the whole
configuration, so a checkpoint can only ever be resumed by the run that wrote it. The executor
deletes it once the run's record is made: it exists only while a run is unfinished.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import torch

from harness.core.atomic import torch_save_atomic
from harness.train.loop import TrainState

FORMAT = "prune-bench/train-state"
VERSION = 1


@dataclass(frozen=True)
class FileCheckpoint:
    """A ``harness.train.loop.Checkpoint`` kept in one file."""

    path: Path

    @classmethod
    def for_run(cls, folder: str | Path, run_id: str) -> FileCheckpoint:
        return cls(Path(folder) / f"{run_id}.pt")

    def load(self) -> TrainState | None:
        if not self.path.exists():
            return None
        payload = torch.load(self.path, map_location="cpu", weights_only=True)
        if payload.get("format") != FORMAT or payload.get("version") != VERSION:
            raise ValueError(f"{self.path} is not a version-{VERSION} training checkpoint; delete it to start over")
        return TrainState(**payload["state"])

    def save(self, state: TrainState) -> None:
        payload = {field.name: getattr(state, field.name) for field in fields(TrainState)}
        torch_save_atomic({"format": FORMAT, "version": VERSION, "state": payload}, self.path)

    def discard(self) -> None:
        """Delete the checkpoint, and any half-written one a killed worker left behind."""
        self.path.unlink(missing_ok=True)
        for leftover in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            leftover.unlink(missing_ok=True)
