"""Tuning histories: the one schema of an exported study, and its I/O.

``<results>/<track>/tuning/<study>.json`` (``ResultsLayout.history``) is rewritten atomically after
every trial by ``bench tune``; ``bench run --tuned`` and a tuned submission reuse it, and the audit
reads it (rule R10, equal tuning budgets). Every reader goes through :class:`StudyHistory`::

    {"study": str, "track": str, "method": str, "twin": bool, "target": str, "schedule": str,
     "budget_epochs": int, "seeds": [int], "dense_hashes": [str],
     "sampler": "tpe" | "grid" | "random", "seed": int, "pruner": "median" | "hyperband" | "none",
     "space": {name: {"low": float, "high": float, "log": bool}},
     "objective": "val_acc", "split": "val",
     "trials_requested": int,    # the largest budget any invocation asked for
     "n_trials": int,            # finished trials (n_complete + n_pruned): what the budget counts
     "n_complete": int, "n_pruned": int, "n_failed": int, "n_running": int,
     "trials": [{"number": int, "state": "COMPLETE" | "PRUNED" | "FAIL" | "RUNNING" | "WAITING",
                 "value": float | null, "params": {name: float}, "intermediate": [float]}],
     "best_params": {name: float} | null, "best_value": float | null}

``trials`` lists every trial by number, failed ones included; ``value`` is set for COMPLETE
trials only. ``best_*`` is the COMPLETE trial with the highest value (lowest number on ties).

Reading needs the keys of :data:`REQUIRED` (the cell, the split, the trials): enough to audit a
history. Reusing one -- tuned runs, a tuned submission -- also needs the protocol keys of
:data:`PROTOCOL` (:func:`check_reusable`). Missing counts are derived from ``trials``, a missing
``objective`` is ``val_acc``; unknown keys are ignored.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from harness import stats
from harness.core.atomic import write_json_atomic
from harness.core.errors import BenchError
from harness.core.layout import ResultsLayout
from harness.run.cells import CELL_FIELDS, CellKey
from harness.run.record import RecordProblem

OBJECTIVE = "val_acc"
SELECTION_SPLIT = "val"
"""The split every study selects on (R10 fails a study that selected on another)."""
REQUIRED = ("study", *CELL_FIELDS, "split", "n_trials", "trials")
"""What every reader needs: the cell, the selection split and the trials."""
PROTOCOL = ("seeds", "dense_hashes", "sampler", "seed", "pruner", "space", "trials_requested")
"""What reusing a study's best parameters also needs: how it was tuned."""
COUNTED = {"n_complete": "COMPLETE", "n_pruned": "PRUNED", "n_failed": "FAIL", "n_running": "RUNNING"}
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


class HistoryError(ValueError):
    """A tuning history that cannot be read; the message names the first missing or malformed key."""


@dataclass(frozen=True)
class TrialRecord:
    number: int
    state: str
    value: float | None
    params: dict[str, float]
    intermediate: list[float]

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> TrialRecord:
        value = raw.get("value")
        return cls(int(raw["number"]), str(raw["state"]), None if value is None else float(value),
                   dict(raw.get("params") or {}), [float(v) for v in raw.get("intermediate") or ()])


@dataclass(frozen=True, kw_only=True)
class StudyHistory:
    """One study as exported next to the records (the module docstring gives the JSON form)."""

    study: str
    cell: CellKey
    """The cell tuned; the JSON form spells its fields at the top level (``CELL_FIELDS``)."""
    seeds: list[int] | None = None
    dense_hashes: list[str] | None = None
    sampler: str | None = None
    seed: int | None = None
    pruner: str | None = None
    space: dict[str, dict[str, Any]] | None = None
    objective: str = OBJECTIVE
    split: str
    trials_requested: int | None = None
    n_trials: int
    n_complete: int
    n_pruned: int
    n_failed: int
    n_running: int
    trials: list[TrialRecord]
    best_params: dict[str, float] | None = None
    best_value: float | None = None

    @property
    def complete(self) -> bool:
        return self.trials_requested is not None and self.n_trials >= self.trials_requested

    def values(self) -> tuple[float, ...]:
        """The validation scores of the completed trials (finite ones), in trial order."""
        return tuple(t.value for t in self.trials
                     if t.state == "COMPLETE" and t.value is not None and math.isfinite(t.value))

    def expected_max(self, trials: int) -> float:
        """Expected best validation score after ``trials`` trials (Dodge et al. 2019)."""
        return expected_max_of(self.values(), trials)

    def missing_protocol(self) -> tuple[str, ...]:
        """The :data:`PROTOCOL` keys this history lacks (an empty tuple for every ``bench tune`` export)."""
        return tuple(key for key in PROTOCOL if getattr(self, key) is None)

    def to_json(self) -> dict[str, Any]:
        raw = dataclasses.asdict(self)
        del raw["cell"]
        return {**raw, **self.cell.config()}

    @classmethod
    def from_json(cls, raw: Any) -> StudyHistory:
        """Raises HistoryError naming the first missing or malformed key."""
        if not isinstance(raw, Mapping):
            raise HistoryError(f"tuning history is malformed (a {type(raw).__name__}, not an object)")
        missing = next((key for key in REQUIRED if key not in raw), None)
        if missing is not None:
            raise HistoryError(f"tuning history lacks the key '{missing}'")
        try:
            trials = [TrialRecord.from_json(t) for t in raw["trials"]]
            counts = {key: int(raw[key]) if key in raw else sum(t.state == state for t in trials)
                      for key, state in COUNTED.items()}
            return cls(
                study=str(raw["study"]), cell=CellKey.of_config(raw),
                seeds=_optional(raw, "seeds", lambda v: [int(s) for s in v]),
                dense_hashes=_optional(raw, "dense_hashes", lambda v: [str(h) for h in v]),
                sampler=_optional(raw, "sampler", str), seed=_optional(raw, "seed", int),
                pruner=_optional(raw, "pruner", str), space=_optional(raw, "space", dict),
                objective=str(raw.get("objective") or OBJECTIVE), split=str(raw["split"]),
                trials_requested=_optional(raw, "trials_requested", int), n_trials=int(raw["n_trials"]),
                **counts, trials=trials, best_params=_optional(raw, "best_params", dict),
                best_value=_optional(raw, "best_value", float),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise HistoryError(f"tuning history is malformed ({type(exc).__name__}: {exc})") from None

    def summary(self) -> dict[str, Any]:
        """What a tuned run's record carries in its ``tuning`` field (no storage URL: records stay portable)."""
        return {
            "study": self.study, "n_trials": self.n_trials, "n_complete": self.n_complete,
            "n_pruned": self.n_pruned, "params": self.best_params, "best_value": self.best_value,
            "objective": self.objective, "split": self.split, "sampler": self.sampler, "seed": self.seed,
            "seeds": self.seeds,
        }


def _optional(raw: Mapping[str, Any], key: str, parse: Any) -> Any:
    return None if raw.get(key) is None else parse(raw[key])


def expected_max_of(values: Sequence[float], trials: int) -> float:
    """Expected best of ``trials`` draws from ``values`` (NaN when there are none)."""
    return stats.expected_max(values, trials) if values else math.nan


def study_name(cell: CellKey, prefix: str | None = None) -> str:
    """Deterministic: the same cell (and prefix) always names the same study, so reruns resume it."""
    method = f"{cell.method}+twin" if cell.twin else cell.method
    name = ".".join(p for p in (prefix, cell.track, method, cell.target, cell.schedule, f"{cell.budget_epochs}ep") if p)
    return checked_name(name, "derived study name")


def checked_name(name: str, what: str) -> str:
    if not _SAFE_NAME.match(name):
        raise BenchError(f"{what} {name!r} must be letters, digits, '.', '_', '+' or '-' (it names a file); "
                         "pick another --study or --study-prefix")
    return name


def export_history(layout: ResultsLayout, history: StudyHistory) -> Path:
    path = layout.history(history.cell.track, history.study)
    write_json_atomic(path, history.to_json())
    return path


def read_history(path: Path) -> StudyHistory:
    """Raises OSError, or ValueError (bad JSON, or a HistoryError) naming what is wrong."""
    return StudyHistory.from_json(json.loads(path.read_text()))


def load_histories(layout: ResultsLayout, track: str) -> tuple[dict[Path, StudyHistory], list[RecordProblem]]:
    """Every readable history of a track by file, in name order, plus the files refused and why.
    No tuning folder means nothing was tuned: no histories and no problems."""
    histories, problems = {}, []
    for path in sorted(layout.tuning(track).glob("*.json")):
        try:
            histories[path] = read_history(path)
        except (OSError, ValueError) as exc:
            problems.append(RecordProblem(path, str(exc)))
    return histories, problems


def check_reusable(history: StudyHistory, path: Path) -> StudyHistory:
    """A history whose best parameters are reused must say how it was tuned (see :data:`PROTOCOL`)."""
    missing = history.missing_protocol()
    if missing:
        raise unreadable(path, f"it lacks the key '{missing[0]}'")
    return history


def unreadable(path: Path, reason: str) -> BenchError:
    return BenchError(f"tuning history {path} is unreadable ({reason}); rerun `bench tune` to rewrite it")


def load_history(layout: ResultsLayout, track: str, study: str) -> StudyHistory:
    """One study's history, for reuse; a missing, unreadable or incomplete file is one BenchError."""
    path = layout.history(track, study)
    if not path.exists():
        raise BenchError(f"no tuning history {path}; run `bench tune` for this cell first (or pass the --study-prefix "
                         "it was tuned under)")
    try:
        history = read_history(path)
    except (OSError, ValueError) as exc:
        raise unreadable(path, str(exc)) from None
    return check_reusable(history, path)
