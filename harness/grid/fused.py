"""Which runs of a grid train together under the ``fused`` engine, and their records.

Runs can share one network only when their pruned architectures, masked layers and step counts
agree (``harness.train.fusion``), which is known only once they are pruned. So configurations are put
in an order that keeps likely partners adjacent (same target and budget, then method, seed, and
a plan beside its twin), pruned one by one and collected per architecture; a group trains as
soon as it holds ``group_size`` runs, and whatever is left trains at the end. At most a few
groups' worth of pruned models wait in memory: past that, the fullest waiting group trains.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

from harness.core.errors import BenchError
from harness.run.pipeline import (
    PreparedRun,
    Workspace,
    execute,
    fused_run,
    prepare,
    retrain_fused,
)
from harness.run.record import RunConfig, RunRecord
from harness.train.checkpoints import FileCheckpoint

WAITING_GROUPS = 4
"""Pruned runs held back while their groups fill, in multiples of the group size."""


def fusion_order(config: RunConfig) -> tuple:
    """Sort key that puts runs likely to share an architecture and step count next to each other."""
    return (config.target, config.budget_epochs, config.method, config.dense_seed, config.seed, config.schedule,
            config.twin)


def execute_many(workspace: Workspace, configs: Sequence[RunConfig],
                 checkpoint_folder: Path | None = None) -> Iterator[RunRecord]:
    """Records of ``configs`` as they finish: one by one, or in fused groups when the workspace's engine fuses.
    With ``checkpoint_folder``, each run of the plain loop saves its state every epoch and resumes from it."""
    if not workspace.engine.fused:
        for config in configs:
            if checkpoint_folder is None:
                yield execute(workspace, config)
                continue
            checkpoint = FileCheckpoint.for_run(checkpoint_folder, config.run_id)
            yield execute(workspace, config, checkpoint)
            checkpoint.discard()
        return
    size = workspace.engine.runs_per_group
    waiting: dict[tuple, list[PreparedRun]] = {}
    for config in sorted(configs, key=fusion_order):
        prepared = prepare(workspace, config)
        if isinstance(prepared, RunRecord):
            yield prepared
            continue
        key = fused_run(workspace, prepared).key
        group = waiting.setdefault(key, [])
        group.append(prepared)
        if len(group) == size:
            yield from retrain_fused(workspace, waiting.pop(key))
        elif sum(len(g) for g in waiting.values()) >= WAITING_GROUPS * size:
            fullest = max(waiting, key=lambda key: len(waiting[key]))
            yield from retrain_fused(workspace, waiting.pop(fullest))
    for group in waiting.values():
        yield from retrain_fused(workspace, group)


def execute_group(workspace: Workspace, configs: Sequence[RunConfig]) -> list[RunRecord]:
    """Repeat one fused group exactly: its runs, in their order, as one network (how a fused record is rerun)."""
    prepared = [prepare(workspace, config) for config in configs]
    failed = next((p for p in prepared if isinstance(p, RunRecord)), None)
    if failed is not None:
        raise BenchError(f"{failed.config().label} no longer prunes ({failed.error.strip().splitlines()[-1]}), "
                         f"so its fused group cannot be repeated")
    if len({fused_run(workspace, p).key for p in prepared}) > 1:
        raise BenchError(f"the runs fused with {configs[0].label} no longer prune to one architecture and step "
                         f"count (a method or the track changed), so their group cannot be repeated")
    return retrain_fused(workspace, prepared)
