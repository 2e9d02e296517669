"""Tuning histories as the audit reads them (rule R10): how many trials each cell got, their
validation scores, and on which split they were selected.

Histories live at ``<results>/<track>/tuning/<study>.json`` (written by ``bench tune``). No folder
means nothing was tuned, which is fine. A history that cannot be read is reported with its path
and skipped, like an invalid record.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Mapping

from harness import stats
from harness.core.layout import ResultsLayout
from harness.run.cells import CellKey
from harness.run.record import RecordProblem, RunRecord


@dataclass(frozen=True)
class TuningStudy:
    """One cell's study: ``values`` are the validation scores of its completed trials."""

    study: str
    path: str
    track: str
    method: str
    twin: bool
    target: str
    schedule: str
    budget_epochs: int
    split: str
    objective: str
    n_trials: int
    values: tuple[float, ...]
    best_value: float | None

    @property
    def cell(self) -> tuple[str, str, bool, str, str, int]:
        return self.track, self.method, self.twin, self.target, self.schedule, self.budget_epochs

    def expected_max(self, trials: int) -> float:
        """Expected best validation score after ``trials`` trials (Dodge et al. 2019)."""
        return stats.expected_max(self.values, trials) if self.values else math.nan


def parse_study(raw: Mapping[str, Any], path: str) -> TuningStudy:
    """Raises ValueError naming the first missing or malformed key."""
    try:
        trials = raw["trials"]
        values = tuple(float(t["value"]) for t in trials
                       if t.get("state") == "COMPLETE" and t.get("value") is not None and math.isfinite(t["value"]))
        return TuningStudy(
            study=str(raw["study"]), path=path, track=str(raw["track"]), method=str(raw["method"]),
            twin=bool(raw["twin"]), target=str(raw["target"]), schedule=str(raw["schedule"]),
            budget_epochs=int(raw["budget_epochs"]), split=str(raw["split"]),
            objective=str(raw.get("objective", "val_acc")), n_trials=int(raw["n_trials"]), values=values,
            best_value=None if raw.get("best_value") is None else float(raw["best_value"]),
        )
    except KeyError as exc:
        raise ValueError(f"tuning history lacks the key {exc}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"tuning history is malformed ({exc})") from None


def load_studies(layout: ResultsLayout, track: str | None = None) -> tuple[list[TuningStudy], list[RecordProblem]]:
    """Every readable study in the layout (or one track's), plus the refused files."""
    studies, problems = [], []
    for name in [track] if track else layout.tracks():
        for path in sorted(layout.tuning(name).glob("*.json")):
            try:
                studies.append(parse_study(json.loads(path.read_text()), str(path)))
            except (OSError, json.JSONDecodeError, ValueError) as exc:
                problems.append(RecordProblem(path, str(exc)))
    return studies, problems


def record_tuning(record: RunRecord) -> Mapping[str, Any] | None:
    """The ``tuning`` summary a tuned run carries (None when untuned or on records without the field)."""
    tuning = getattr(record, "tuning", None)
    return tuning if isinstance(tuning, Mapping) and tuning else None


def studies_by_cell(studies: list[TuningStudy]) -> dict[tuple, TuningStudy]:
    return {study.cell: study for study in studies}


def cell_study(key: CellKey, records: tuple[RunRecord, ...], studies: Mapping[tuple, TuningStudy],
               by_name: Mapping[str, TuningStudy]) -> TuningStudy | None:
    """The study a cell's runs were tuned with: named in the records, else matched by configuration."""
    for record in records:
        tuning = record_tuning(record)
        if tuning and str(tuning.get("study")) in by_name:
            return by_name[str(tuning["study"])]
    return studies.get((key.track, key.method, key.twin, key.target, key.schedule, key.budget_epochs))


def trial_count(study: TuningStudy | None, records: tuple[RunRecord, ...]) -> int:
    """Configurations tried before the cell's reported run: the study's trials, or 1 (the defaults)
    for an untuned cell; a record's own summary counts when its history file is missing."""
    if study is not None:
        return study.n_trials
    counts = [int(t.get("n_trials", 1)) for t in (record_tuning(r) for r in records) if t]
    return max(counts, default=1)


def expected_best(study: TuningStudy | None, untuned_score: float | None, trials: int) -> float | None:
    """Expected best validation accuracy at ``trials`` trials; an untuned cell has one configuration."""
    if study is not None and study.values:
        return study.expected_max(trials)
    return untuned_score


def record_splits(records: tuple[RunRecord, ...]) -> set[str]:
    """The selection splits tuned records declare."""
    return {str(t["split"]) for t in (record_tuning(r) for r in records) if t and t.get("split")}
