"""Per-epoch training checkpoints on disk, so a retried run continues instead of starting over.

One file per run, ``<folder>/<run id>.pt``, rewritten atomically after every epoch (a worker
killed mid-write leaves the previous epoch's file). The file holds plain data only -- tensors,
numbers and lists -- so it loads with ``weights_only=True``. The run id is the hash of the whole
configuration, so a checkpoint can only ever be resumed by the run that wrote it. The executor
deletes it once the run's record is made: it exists only while a run is unfinished.

A file that cannot be read as such a checkpoint (corrupt, truncated by something other than the
harness, or another program's) is refused in one line naming it, never resumed from and never deleted:
it may be someone's file. Cleaning up after killed writers removes only temporary files whose
writer is gone, never one another live process is still writing.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import torch

from harness.core.atomic import stale_temp, torch_save_atomic
from harness.core.errors import BenchError
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
        try:
            payload = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch's own messages run to pages and advise weights_only=False: never that
            raise BenchError(f"{self.path} is not a readable training checkpoint ({type(exc).__name__}: corrupt, "
                             "or not written by prune-bench); delete it to start the run over") from None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT or payload.get("version") != VERSION:
            raise BenchError(f"{self.path} is not a version-{VERSION} prune-bench training checkpoint; "
                             "delete it to start the run over")
        try:
            return TrainState(**payload["state"])
        except (KeyError, TypeError):
            raise BenchError(f"{self.path} is a damaged training checkpoint (its state is incomplete); "
                             "delete it to start the run over") from None

    def save(self, state: TrainState) -> None:
        payload = {field.name: getattr(state, field.name) for field in fields(TrainState)}
        torch_save_atomic({"format": FORMAT, "version": VERSION, "state": payload}, self.path)

    def discard(self) -> None:
        """Delete the checkpoint, and any half-written one a killed worker left behind (never a temporary
        file another live process is writing: with a shared folder it may be writing this very name)."""
        self.path.unlink(missing_ok=True)
        for leftover in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            if stale_temp(leftover):
                leftover.unlink(missing_ok=True)
