"""Tuning studies as Ray tasks: each cell's Optuna study is one task against one shared RDB storage, so the
cells are tuned in parallel while each study stays sequential -- exactly the requested number of trials, and
the same trials as tuning on one machine."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

import ray
import torch
from ray.exceptions import RayTaskError

from harness.core.errors import BenchError
from harness.core.layout import ResultsLayout
from harness.grid.ray import (
    WORKER_DIED,
    RayExecutor,
    WorkerSettings,
    as_finished,
    shippable,
)
from harness.grid.selection import dense_seed_for
from harness.methods import ensure_registered
from harness.run.cells import CellKey
from harness.run.pipeline import Workspace
from harness.track.definition import Track
from harness.tune.history import StudyHistory, export_history
from harness.tune.search import TuneOptions, check_cells, open_storage, tune_cell


def tune_on_ray(
    executor: RayExecutor, track: Track, cells: Sequence[CellKey], options: TuneOptions, storage: str, study: str | None = None,
    on_history: Callable[[StudyHistory], None] | None = None,
) -> list[StudyHistory]:
    """Tune every cell's study as one task against ``storage``, an RDB URL every worker reaches;
    each finished study's history is exported under this driver's results folder."""
    check_cells(track, cells, options, study)
    open_storage(storage, options.heartbeat)
    histories: dict[CellKey, StudyHistory] = {}
    with executor.connection():
        task = _tune.options(**executor.task_options())
        settings = WorkerSettings(executor.device, max(1, int(executor.cpus_per_run)), None, None)
        dense = executor.dense_baselines(track, {dense_seed_for(track, s) for s in options.seeds})
        shared = ray.put((track, shippable(cell.method for cell in cells), settings, options, storage, study,
                          dense))
        pending = {task.remote(shared, cell): cell for cell in cells}
        for cell, history in as_finished(pending, _study_history):
            export_history(executor.layout, history)
            histories[cell] = history
            if on_history is not None:
                on_history(history)
    return [histories[cell] for cell in cells]


def _study_history(ref: Any, cell: CellKey) -> tuple[CellKey, StudyHistory]:
    """A study's history; a worker's user error keeps its one-line message."""
    try:
        return cell, ray.get(ref)
    except RayTaskError as exc:
        if isinstance(exc.cause, BenchError):
            raise exc.cause from None
        raise
    except WORKER_DIED as exc:
        raise BenchError(f"the worker tuning {cell.entry} / {cell.target} / {cell.schedule} at {cell.budget_epochs} "
                         f"epochs died more often than --max-retries allows ({type(exc).__name__}); rerun the same "
                         "command to resume its study") from None


@ray.remote
def _tune(shared: tuple, cell: CellKey) -> StudyHistory:
    track, methods, settings, options, storage, study, dense = shared
    ensure_registered(methods)
    torch.set_num_threads(settings.threads)
    with tempfile.TemporaryDirectory(prefix="prune-bench-") as scratch:
        workspace = Workspace(track, ResultsLayout(Path(scratch)), device=settings.device, dense=dense)
        return tune_cell(workspace, cell, options, study, open_storage(storage, options.heartbeat))
