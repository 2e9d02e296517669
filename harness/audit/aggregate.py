"""Statements across tracks (rule R13), made the way rliable makes them.

A task is one (track, target, family): structured and unstructured pruning at one target name
remove different things (channels vs single weights), so their runs never share a task and are
never compared with each other here. Accuracies of different tracks are not on one scale, so a run's
score is its change from its dense checkpoint (test accuracy minus dense test accuracy). In each
task every method is taken at the largest budget all methods share there, under the schedule it
does best with on the *validation* split. Methods are then summarized by the interquartile mean
of all their runs with a stratified-bootstrap interval, and pairs by the probability that a run
of one improves on a run of the other, averaged over the tasks both cover.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

from harness import stats
from harness.audit.comparisons import best_by_validation
from harness.audit.config import AuditConfig
from harness.core.seeding import derive_seed
from harness.run.cells import Cell

Task = tuple[str, str, str]
"""(track, target, family), the family being ``structured`` or ``unstructured``."""


@dataclass(frozen=True)
class TaskEntry:
    """A method's cell in one task and its runs' scores (change from dense accuracy)."""

    task: Task
    cell: Cell
    scores: tuple[float, ...]


@dataclass(frozen=True)
class MethodAggregate:
    method: str
    tasks: tuple[Task, ...]
    iqm: stats.AggregateEstimate


@dataclass(frozen=True)
class PairAggregate:
    a: str
    b: str
    tasks: tuple[Task, ...]
    probability_of_improvement: stats.AggregateEstimate


def _scores(cell: Cell) -> tuple[float, ...] | None:
    dense = cell.dense_values()
    return None if dense is None else tuple(v - d for v, d in zip(cell.values, dense))


def task_entries(cells: Sequence[Cell], methods: Sequence[str] | None = None) -> dict[str, dict[Task, TaskEntry]]:
    """Each method's entry per task, at the largest budget (above zero) that every method present
    in the task reached; restricted to ``methods`` when given. Reproduced, non-twin cells only."""
    by_task: dict[Task, list[Cell]] = defaultdict(list)
    for cell in cells:
        if cell.reproduced and not cell.key.twin and cell.n and (methods is None or cell.key.method in methods):
            by_task[(cell.key.track, cell.key.target, cell.family)].append(cell)
    entries: dict[str, dict[Task, TaskEntry]] = defaultdict(dict)
    for task, members in sorted(by_task.items()):
        budgets: dict[str, set[int]] = defaultdict(set)
        for cell in members:
            if cell.key.budget_epochs > 0:
                budgets[cell.key.method].add(cell.key.budget_epochs)
        shared = set.intersection(*budgets.values()) if budgets else set()
        if not shared:
            continue
        budget = max(shared)
        for method in sorted(budgets):
            best = best_by_validation([c for c in members if c.key.method == method and c.key.budget_epochs == budget])
            scores = _scores(best) if best else None
            if best and scores:
                entries[method][task] = TaskEntry(task, best, scores)
    return dict(entries)


def method_aggregates(entries: dict[str, dict[Task, TaskEntry]], config: AuditConfig) -> list[MethodAggregate]:
    out = []
    for method in sorted(entries):
        tasks = tuple(sorted(entries[method]))
        scores = [entries[method][t].scores for t in tasks]
        estimate = stats.aggregate_iqm(scores, seed=derive_seed(config.seed, f"iqm|{method}"), confidence=config.confidence,
                                       n_resamples=config.n_resamples)
        out.append(MethodAggregate(method, tasks, estimate))
    return out


def pair_aggregate(entries: dict[str, dict[Task, TaskEntry]], a: str, b: str,
                   config: AuditConfig) -> PairAggregate | None:
    """P(a run of ``a`` improves on a run of ``b``) averaged over the tasks both cover."""
    tasks = tuple(sorted(set(entries.get(a, {})) & set(entries.get(b, {}))))
    if not tasks:
        return None
    estimate = stats.aggregate_probability_of_improvement(
        [entries[a][t].scores for t in tasks], [entries[b][t].scores for t in tasks],
        seed=derive_seed(config.seed, f"poi|{a}|{b}"), confidence=config.confidence, n_resamples=config.n_resamples)
    return PairAggregate(a, b, tasks, estimate)


def pair_aggregates(entries: dict[str, dict[Task, TaskEntry]], config: AuditConfig) -> list[PairAggregate]:
    methods = sorted(entries)
    pairs = (pair_aggregate(entries, a, b, config) for i, a in enumerate(methods) for b in methods[i + 1:])
    return [p for p in pairs if p is not None]
