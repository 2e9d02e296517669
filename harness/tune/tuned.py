"""Tuned runs: the finished studies of a selection, their best parameters for ``grid.expand``, and an
executor that stamps each tuned record with its study's summary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

from harness.core.errors import BenchError
from harness.core.layout import ResultsLayout
from harness.dense.baseline import dense_hash
from harness.grid.driver import Executor
from harness.grid.selection import CellParamsKey, Selection, dense_seed_for
from harness.run.record import RunConfig, RunRecord
from harness.track.definition import Track
from harness.tune.history import StudyHistory, load_history, study_name
from harness.tune.search import tuning_cells


def load_tuning(layout: ResultsLayout, track: Track, selection: Selection,
                study_prefix: str | None = None) -> dict[CellParamsKey, StudyHistory]:
    """The finished study of every selected cell whose schedule has tunables, keyed as ``grid.expand`` wants."""
    cells, _ = tuning_cells(track, selection)
    histories = {}
    for cell in cells:
        history = load_history(layout, track.name, study_name(cell, study_prefix))
        if not history.complete:
            raise BenchError(f"study '{history.study}' has {history.n_trials} of {history.trials_requested} trials; "
                             "rerun the same `bench tune` command to finish it")
        if history.dense_hashes != [dense_hash(track, dense_seed_for(track, s)) for s in history.seeds]:
            raise BenchError(f"study '{history.study}' was tuned on other dense baselines (the track has changed); "
                             "retune under a new --study-prefix")
        if history.best_params is None:
            raise BenchError(f"study '{history.study}' has no completed trial (all pruned or failed); "
                             "tune it with more trials or --pruner none")
        histories[(cell.method, cell.twin, cell.target, cell.schedule, cell.budget_epochs)] = history
    return histories


def tuned_params(histories: Mapping[CellParamsKey, StudyHistory]) -> dict[CellParamsKey, dict[str, float]]:
    return {key: dict(history.best_params or {}) for key, history in histories.items()}


@dataclass
class TunedExecutor:
    """Wraps an executor so each record of a tuned cell carries its study's summary in ``tuning``."""

    inner: Executor
    histories: Mapping[CellParamsKey, StudyHistory]

    def map(self, track: Track, configs: Sequence[RunConfig]) -> Iterator[RunRecord]:
        for record in self.inner.map(track, configs):
            history = self.histories.get((record.method, record.twin, record.target, record.schedule,
                                          record.budget_epochs))
            yield record.model_copy(update={"tuning": history.summary()}) if history else record
