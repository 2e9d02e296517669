"""Executing runs: prepare each configuration, then retrain the prepared runs through the workspace's engine.

Engines differ in one way that matters here: the plain, graph and compile engines retrain one run at a
time (and can checkpoint every epoch); the fused engine retrains runs whose pruned architectures, masked
layers and step counts agree (``harness.train.fusion``) as one network, which is known only once they are
pruned. ``retraining_for`` is the one place that tells them apart; every driver, pool and verification
goes through the same interface.

Under fusion, configurations are put in an order that keeps likely partners adjacent (same target and
budget, then method, seed, and a plan beside its twin), pruned one by one and collected per architecture;
a group trains as soon as it holds ``group_size`` runs, and whatever is left trains at the end. At most a
few groups' worth of pruned models wait in memory: past that, the fullest waiting group trains.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Hashable, Iterator, Protocol, Sequence

from harness.core.errors import BenchError
from harness.run.pipeline import (
    PreparedRun,
    Workspace,
    finish,
    fused_run,
    prepare,
    retrain,
    retrain_fused,
)
from harness.run.record import RunConfig, RunRecord
from harness.train.checkpoints import FileCheckpoint
from harness.train.engines import EngineSettings
from harness.train.loop import Checkpoint

WAITING_GROUPS = 4
"""Pruned runs held back while their groups fill, in multiples of the group size."""


def fusion_order(config: RunConfig) -> tuple:
    """Sort key that puts runs likely to share an architecture and step count next to each other."""
    return (config.target, config.budget_epochs, config.method, config.dense_seed, config.seed, config.schedule,
            config.twin)


class Retraining(Protocol):
    """How an engine retrains prepared runs: which runs wait for each other, and the records they end in."""

    group_size: int
    checkpoints: bool
    """Whether a run can save its state every epoch and resume from it."""

    def order(self, configs: Sequence[RunConfig]) -> list[RunConfig]: ...

    def key(self, workspace: Workspace, prepared: PreparedRun) -> Hashable: ...

    def retrain(self, workspace: Workspace, group: Sequence[PreparedRun],
                checkpoint: Checkpoint | None = None) -> list[RunRecord]: ...


@dataclass(frozen=True)
class OneAtATime:
    """The plain, graph and compile engines: each run alone, optionally resuming from a per-epoch checkpoint."""

    group_size: int = 1
    checkpoints: bool = True

    def order(self, configs: Sequence[RunConfig]) -> list[RunConfig]:
        return list(configs)

    def key(self, workspace: Workspace, prepared: PreparedRun) -> Hashable:
        return prepared.config.run_id

    def retrain(self, workspace: Workspace, group: Sequence[PreparedRun],
                checkpoint: Checkpoint | None = None) -> list[RunRecord]:
        (prepared,) = group
        started = time.perf_counter()
        result, values = retrain(workspace, prepared.config, prepared.pruned, checkpoint=checkpoint)
        return [finish(workspace, prepared, result, values, time.perf_counter() - started)]


@dataclass(frozen=True)
class FusedGroups:
    """The fused engine: runs of one architecture and step count, up to ``group_size``, as one network."""

    group_size: int
    checkpoints: bool = False

    def order(self, configs: Sequence[RunConfig]) -> list[RunConfig]:
        return sorted(configs, key=fusion_order)

    def key(self, workspace: Workspace, prepared: PreparedRun) -> Hashable:
        return fused_run(workspace, prepared).key

    def retrain(self, workspace: Workspace, group: Sequence[PreparedRun],
                checkpoint: Checkpoint | None = None) -> list[RunRecord]:
        return retrain_fused(workspace, group)


def retraining_for(engine: EngineSettings, checkpointed: bool = False) -> Retraining:
    """The engine's way of retraining; ``checkpointed`` runs are refused by an engine that cannot resume them."""
    retraining = FusedGroups(engine.runs_per_group) if engine.fused else OneAtATime()
    if checkpointed and not retraining.checkpoints:
        raise BenchError(f"{engine.name} runs keep no per-epoch checkpoints; drop --checkpoint-dir or choose "
                         "another engine")
    return retraining


def execute(workspace: Workspace, config: RunConfig, checkpoint: Checkpoint | None = None) -> RunRecord:
    """Run one configuration; a method's own failure becomes a ``failed`` record, not a crash.
    With a ``checkpoint``, retraining resumes from the epoch a previous attempt saved last."""
    retraining = retraining_for(workspace.engine, checkpointed=checkpoint is not None)
    prepared = prepare(workspace, config)
    if isinstance(prepared, RunRecord):
        return prepared
    return retraining.retrain(workspace, [prepared], checkpoint)[0]


def execute_many(workspace: Workspace, configs: Sequence[RunConfig],
                 checkpoint_folder: Path | None = None) -> Iterator[RunRecord]:
    """Records of ``configs`` as they finish, retrained as the workspace's engine retrains. With
    ``checkpoint_folder``, each run saves its state every epoch and resumes from it; a run's checkpoint
    goes once the caller has taken its record (the driver writes it first)."""
    retraining = retraining_for(workspace.engine, checkpointed=checkpoint_folder is not None)
    size = retraining.group_size
    waiting: dict[Hashable, list[PreparedRun]] = {}

    def retrain_group(group: list[PreparedRun]) -> Iterator[RunRecord]:
        checkpoint = (FileCheckpoint.for_run(checkpoint_folder, group[0].config.run_id)
                      if checkpoint_folder is not None else None)
        yield from retraining.retrain(workspace, group, checkpoint)
        if checkpoint is not None:
            checkpoint.discard()

    for config in retraining.order(configs):
        prepared = prepare(workspace, config)
        if isinstance(prepared, RunRecord):
            yield prepared
            continue
        key = retraining.key(workspace, prepared)
        group = waiting.setdefault(key, [])
        group.append(prepared)
        if len(group) == size:
            yield from retrain_group(waiting.pop(key))
        elif sum(len(g) for g in waiting.values()) >= WAITING_GROUPS * size:
            yield from retrain_group(waiting.pop(max(waiting, key=lambda k: len(waiting[k]))))
    for group in waiting.values():
        yield from retrain_group(group)


def execute_group(workspace: Workspace, configs: Sequence[RunConfig]) -> list[RunRecord]:
    """Repeat one group exactly: its runs, in their order, retrained together (how a fused record is rerun)."""
    retraining = retraining_for(workspace.engine)
    prepared = [prepare(workspace, config) for config in configs]
    failed = next((p for p in prepared if isinstance(p, RunRecord)), None)
    if failed is not None:
        raise BenchError(f"{failed.config().label} no longer prunes ({failed.error.strip().splitlines()[-1]}), "
                         f"so its fused group cannot be repeated")
    if len({retraining.key(workspace, p) for p in prepared}) > 1:
        raise BenchError(f"the runs fused with {configs[0].label} no longer prune to one architecture and step "
                         f"count (a method or the track changed), so their group cannot be repeated")
    return retraining.retrain(workspace, prepared)
