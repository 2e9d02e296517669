"""The leaderboard: per track, target and budget, methods ranked by test accuracy under their
best schedule -- at equal budget, with intervals, the gap to their random twin, and ties shown.

An entry's schedule is chosen on *validation* accuracy (choosing it on test accuracy would be
selection on the test split, rule R10), then its test accuracy is reported. Ranks come from the
audit's own comparisons and verdicts (each Holm-corrected within its method's pre-declared family,
see :mod:`harness.audit.comparisons`), never from a correction of their own: an entry's rank is one
more than the number of reference methods whose verdict against it is ``better``; entries with the
same count share a rank. Only references move ranks, so adding, removing or rerunning any other
method changes no other entry's rank. Entries touched by a ``fail`` finding are listed, marked,
never hidden. Only reproduced runs are ranked.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Sequence

from harness.audit import memo
from harness.audit.comparisons import (
    Cell,
    Comparison,
    best_by_validation,
    context,
    family,
)
from harness.audit.config import AuditConfig
from harness.audit.engine import AuditInputs, AuditResult, audit_from, audit_inputs
from harness.audit.families import method_order
from harness.audit.findings import rule_ids, touching
from harness.audit.rules.fairness import cell_split
from harness.core.layout import ResultsLayout
from harness.run.record import RecordProblem, split_name


@dataclass(frozen=True)
class Entry:
    rank: int
    tied: bool
    method: str
    schedule: str
    cell: str
    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    val_mean: float | None
    twin_mean: float | None
    twin_gap: float | None
    twin_gap_ci: tuple[float, float] | None
    twin_verdict: str | None
    macs_after: float | None
    flags: tuple[str, ...]
    split: tuple[int, ...] = ()
    """The entry's budget split in epochs: before pruning, then each round's retraining."""

    @property
    def schedule_shown(self) -> str:
        """The schedule, and the split of the budget when the method spent part of it itself (``ft (5+5)``)."""
        trains = sum(self.split) > 0 and (len(self.split) > 2 or self.split[0] > 0)
        return f"{self.schedule} ({split_name(self.split)})" if trains else self.schedule

    def as_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank, "tied": self.tied, "method": self.method, "schedule": self.schedule, "cell": self.cell,
            "n": self.n, "test_acc_mean": self.mean, "test_acc_std": self.std, "ci": [self.ci_low, self.ci_high],
            "val_acc_mean": self.val_mean, "twin_test_acc_mean": self.twin_mean, "twin_gap": self.twin_gap,
            "twin_gap_ci": list(self.twin_gap_ci) if self.twin_gap_ci else None, "twin_verdict": self.twin_verdict,
            "macs_after": self.macs_after, "fail_findings": list(self.flags), "budget_split": list(self.split),
        }


@dataclass(frozen=True)
class Table:
    """One ranking: structured and unstructured (masked) methods are ranked apart, since masks keep
    every MAC and the two reach different operating points at one target."""

    track: str
    target: str
    budget: int
    family: str
    entries: tuple[Entry, ...]
    comparisons: tuple[Comparison, ...]

    @property
    def detectable(self) -> tuple[float, float] | None:
        """Range of the detectable differences between the ranked entries."""
        values = [c.minimum_detectable_difference for c in self.comparisons
                  if math.isfinite(c.minimum_detectable_difference)]
        return (min(values), max(values)) if values else None

    def as_dict(self) -> dict[str, Any]:
        detectable = self.detectable
        return {"track": self.track, "target": self.target, "budget_epochs": self.budget, "family": self.family,
                "detectable_difference": list(detectable) if detectable else None,
                "entries": [e.as_dict() for e in self.entries]}


@dataclass(frozen=True)
class Leaderboard:
    tables: tuple[Table, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"tables": [t.as_dict() for t in self.tables]}


def _flags(cells: Sequence[Cell | None], result: AuditResult) -> tuple[str, ...]:
    labels = {c.label for c in cells if c is not None}
    return rule_ids(touching(result.findings, labels))


MIRRORED = {"better": "worse", "worse": "better", "tie": "tie", "equivalent": "equivalent"}


def _verdict(comparisons: dict[tuple[str, str], Comparison], a: Cell, b: Cell) -> str | None:
    """Verdict of ``a`` against ``b`` whichever way round the pair was compared; None when not compared."""
    if (a.label, b.label) in comparisons:
        return comparisons[(a.label, b.label)].verdict
    if (b.label, a.label) in comparisons:
        return MIRRORED[comparisons[(b.label, a.label)].verdict]
    return None


def _rank(entries: list[Cell], comparisons: dict[tuple[str, str], Comparison], references: set[str]
          ) -> list[tuple[int, Cell]]:
    """One more than the number of reference entries whose verdict against the entry is ``better``;
    listed by rank, then mean test accuracy."""
    ranks = []
    for cell in entries:
        beaten_by = sum(other is not cell and other.key.method in references
                        and _verdict(comparisons, other, cell) == "better" for other in entries)
        ranks.append((1 + beaten_by, cell))
    return sorted(ranks, key=lambda item: (item[0], -item[1].mean, item[1].key.method))


def build_leaderboard(result: AuditResult) -> Leaderboard:
    groups: dict[tuple[str, str, int, str], dict[str, list[Cell]]] = defaultdict(lambda: defaultdict(list))
    twins: dict[tuple, Cell] = {}
    for cell in result.cells:
        if not cell.reproduced or not cell.n:
            continue
        if cell.key.plain_twin:
            twins[(*context(cell.key), cell.key.method)] = cell
        elif not cell.key.twin:
            groups[(cell.key.track, cell.key.target, cell.key.budget_epochs, family(cell))][cell.key.method].append(cell)
    twin_comparisons = {(c.a, c.b): c for c in result.comparisons if c.kind == "twin"}
    between = {(c.a, c.b): c for c in result.comparisons if c.kind in ("methods", "leaderboard")}
    methods_of: dict[str, set[str]] = defaultdict(set)
    for (track, _, _, _), by_method in groups.items():
        methods_of[track] |= set(by_method)
    references = {track: method_order(track, methods, result.config)[1] for track, methods in methods_of.items()}
    tables = []
    for (track, target, budget, kind), by_method in sorted(groups.items()):
        best = [b for b in (best_by_validation(cells) for _, cells in sorted(by_method.items())) if b is not None]
        labels = {c.label for c in best}
        compared = [c for c in between.values() if c.a in labels and c.b in labels]
        ranked = _rank(best, between, references[track])
        counts: dict[int, int] = defaultdict(int)
        for rank, _ in ranked:
            counts[rank] += 1
        entries = []
        for rank, cell in ranked:
            twin = twins.get((*context(cell.key), cell.key.method))
            gap = twin_comparisons.get((cell.label, twin.label)) if twin else None
            summary = cell.summary
            entries.append(Entry(
                rank=rank, tied=counts[rank] > 1, method=cell.key.method, schedule=cell.key.schedule, cell=cell.label,
                n=cell.n, mean=summary.mean, std=summary.std, ci_low=summary.ci_low, ci_high=summary.ci_high,
                val_mean=cell.mean_of("val_acc"), twin_mean=twin.mean if twin else None,
                twin_gap=gap.difference if gap else None, twin_gap_ci=(gap.ci_low, gap.ci_high) if gap else None,
                twin_verdict=gap.verdict if gap else None, macs_after=cell.mean_of("macs_after"),
                flags=_flags([cell, twin], result), split=cell_split(cell),
            ))
        tables.append(Table(track, target, budget, kind, tuple(entries), tuple(compared)))
    return Leaderboard(tuple(tables))


def leaderboard_results(layout: ResultsLayout, track: str | None = None, config: AuditConfig = AuditConfig()
                        ) -> tuple[Leaderboard, tuple[RecordProblem, ...]]:
    """The leaderboard of a results folder (one track's, or every track's) and the files its audit
    refused."""
    return leaderboard_from(audit_inputs(layout, track, config=config))


def leaderboard_from(inputs: AuditInputs) -> tuple[Leaderboard, tuple[RecordProblem, ...]]:
    """The leaderboard of what :func:`audit_inputs` read. It is kept beside the audit's memo under the
    same inputs, so an unchanged folder's leaderboard is read back without reading back the audit."""
    path, key = inputs.layout.leaderboard_memo(inputs.track), memo.derived_key(inputs.key, "leaderboard")
    kept = memo.recall(path, key)
    if kept is not None:
        return kept
    result = audit_from(inputs)
    standing = (build_leaderboard(result), result.problems)
    memo.remember(path, key, standing)
    return standing
