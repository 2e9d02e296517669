"""Tuned runs: the finished studies of a selection, their best parameters for ``grid.expand``, and an
executor that stamps each tuned record with its study's summary."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

from harness.core.errors import BenchError
from harness.core.layout import ResultsLayout
from harness.dense.baseline import dense_hash
from harness.grid.driver import Executor
from harness.grid.selection import CellParamsKey, Selection, dense_seed_for
from harness.run.record import RunConfig, RunRecord
from harness.track.definition import Track
from harness.track.schedules import get_schedule
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
        check_space(history, track, cell.schedule)
        histories[(cell.method, cell.twin, cell.target, cell.schedule, cell.budget_epochs)] = history
    return histories


def check_space(history: StudyHistory, track: Track, schedule: str) -> None:
    """A reused history must lie in its schedule's declared search space: the space it says it searched is
    the declared one (or a part of it), and every best parameter is a declared tunable, a finite number within
    its bounds. Anything else (an edited file, a history of another track or harness) is one BenchError."""
    declared = {t.name: t for t in get_schedule(schedule).tunables(track.recipe)}
    retune = "retune the cell with `bench tune` (or restore the file)"
    for name, bounds in (history.space or {}).items():
        tunable = declared.get(name)
        if tunable is None or not isinstance(bounds, dict) or \
                (bounds.get("low"), bounds.get("high"), bounds.get("log")) != (tunable.low, tunable.high, tunable.log):
            raise BenchError(f"study '{history.study}' searched {name} over {bounds}, not schedule '{schedule}''s "
                             f"declared space on this track; {retune}")
    for name, value in (history.best_params or {}).items():
        tunable = declared.get(name)
        if tunable is None:
            raise BenchError(f"study '{history.study}' has a best parameter '{name}', which schedule '{schedule}' does "
                             f"not tune (it tunes {', '.join(declared) or 'nothing'}); {retune}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not tunable.low * (1 - 1e-9) <= value <= tunable.high * (1 + 1e-9):
            raise BenchError(f"study '{history.study}' has best {name} = {value!r}, outside schedule '{schedule}''s "
                             f"declared space [{tunable.low:g}, {tunable.high:g}]; {retune}")


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
