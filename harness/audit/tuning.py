"""Tuning histories as the audit reads them (rule R10): how many trials each cell got, their
validation scores, and on which split they were selected.

The schema and its reader are ``harness.tune.history`` (``bench tune`` writes the files,
``<results>/<track>/tuning/<study>.json``); :class:`TuningStudy` is the audit's view of one
history. No folder means nothing was tuned, which is fine. A history that cannot be read is
reported with its path and skipped, like an invalid record.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from harness.core.layout import ResultsLayout
from harness.run.cells import CellKey
from harness.run.record import RecordProblem, RunRecord
from harness.tune.history import StudyHistory, expected_max_of, load_histories


@dataclass(frozen=True)
class TuningStudy:
    """One cell's study as the audit sees it: ``values`` are the validation scores of its completed trials."""

    study: str
    path: str
    cell: CellKey
    split: str
    objective: str
    n_trials: int
    values: tuple[float, ...]
    best_value: float | None

    @classmethod
    def of(cls, history: StudyHistory, path: str | Path) -> TuningStudy:
        return cls(study=history.study, path=str(path), cell=history.cell, split=history.split, objective=history.objective,
                   n_trials=history.n_trials, values=history.values(), best_value=history.best_value)

    def expected_max(self, trials: int) -> float:
        """Expected best validation score after ``trials`` trials (Dodge et al. 2019)."""
        return expected_max_of(self.values, trials)


def load_studies(layout: ResultsLayout, track: str | None = None) -> tuple[list[TuningStudy], list[RecordProblem]]:
    """Every readable study in the layout (or one track's), plus the refused files."""
    studies, problems = [], []
    for name in [track] if track else layout.tracks():
        histories, refused = load_histories(layout, name)
        studies += [TuningStudy.of(history, path) for path, history in histories.items()]
        problems += refused
    return studies, problems


def record_tuning(record: RunRecord) -> Mapping[str, Any] | None:
    """The ``tuning`` summary a tuned run carries (None when untuned or on records without the field)."""
    tuning = getattr(record, "tuning", None)
    return tuning if isinstance(tuning, Mapping) and tuning else None


def studies_by_cell(studies: list[TuningStudy]) -> dict[CellKey, TuningStudy]:
    return {study.cell: study for study in studies}


def cell_study(key: CellKey, records: tuple[RunRecord, ...], studies: Mapping[CellKey, TuningStudy],
               by_name: Mapping[str, TuningStudy]) -> TuningStudy | None:
    """The study a cell's runs were tuned with: named in the records, else matched by configuration."""
    for record in records:
        tuning = record_tuning(record)
        if tuning and str(tuning.get("study")) in by_name:
            return by_name[str(tuning["study"])]
    return studies.get(key)


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
