"""Matching claims to cells: the fair settings a claim is judged on, the comparison it states, and what
the records lack.

Both entries are compared under the same schedule and budget (each stated setting in turn), or, when
no schedule is stated, each entry under its best schedule chosen on validation accuracy at every
shared budget. A stated comparison whose two sides differ in schedule or budget is kept apart, so
rules R1/R2 can judge its fairness.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from harness.audit.claims.schema import DENSE, Claim, claim_source
from harness.audit.comparisons import best_by_validation
from harness.core.errors import BenchError
from harness.run.cells import Cell, CellKey


@dataclass(frozen=True)
class Setting:
    """One fair comparison a claim is judged on; ``b`` is None for a no-loss claim against dense."""

    label: str
    a: Cell
    b: Cell | None



class CellIndex:
    """The cells by key; ``get`` and ``entry`` return only cells with successful runs."""

    def __init__(self, cells: Sequence[Cell]):
        self.cells = {cell.key: cell for cell in cells}

    def get(self, key: CellKey) -> Cell | None:
        cell = self.cells.get(key)
        return cell if cell is not None and cell.n else None

    def entry(self, track: str, method: str, twin: bool, target: str | None = None) -> list[Cell]:
        """The reproduced cells of one entry (a method or its twin) on a track, at one target or all."""
        return [c for c in self.cells.values()
                if c.reproduced and c.n and (c.key.track, c.key.method, c.key.twin) == (track, method, twin)
                and (target is None or c.key.target == target)]


def claim_track(claim: Claim, cells: Sequence[Cell]) -> str:
    """The track a claim is about: the one it names, or the only track the records hold."""
    if claim.track:
        return claim.track
    tracks = sorted({c.key.track for c in cells if c.reproduced})
    if len(tracks) != 1:
        raise BenchError(f"claim {claim.name!r} names no track and the records hold {len(tracks)} tracks "
                         f"({', '.join(tracks) or 'none'}); add track = \"...\" (or \"*\" for all)")
    return tracks[0]


def claim_settings(claim: Claim, track: str, index: CellIndex) -> tuple[list[Setting], tuple[Cell, Cell] | None, list[str]]:
    """The fair settings, the stated comparison (when its two sides differ) and what is missing."""
    method_a = (claim.method, False)
    method_b = None if claim.baseline_side_is_dense else claim.baseline_entry()
    if claim.target:
        targets = [claim.target]
    else:
        targets_a = {c.key.target for c in index.entry(track, *method_a)}
        targets_b = targets_a if method_b is None else {c.key.target for c in index.entry(track, *method_b)}
        targets = sorted(targets_a & targets_b)
        if not targets:
            return [], None, [f"{track}: no target where both {claim.method} and {claim.baseline or DENSE} have runs"]
    settings: list[Setting] = []
    missing: list[str] = []
    stated = None

    def cell(entry: tuple[str, bool], target: str, schedule: str, budget: int) -> Cell | None:
        key = CellKey(track, entry[0], entry[1], target, schedule, budget)
        found = index.get(key)
        if found is None:
            missing.append(key.label)
        return found

    for target in targets:
        if claim.budget is not None:
            budgets = [(claim.budget, claim.budget if claim.baseline_budget is None else claim.baseline_budget)]
        else:
            schedule_b = claim.baseline_schedule or claim.schedule
            have_a = {c.key.budget_epochs for c in index.entry(track, *method_a, target)
                      if claim.schedule in (None, c.key.schedule)}
            have_b = have_a if method_b is None else {c.key.budget_epochs for c in index.entry(track, *method_b, target)
                                                      if schedule_b in (None, c.key.schedule)}
            shared = sorted(have_a & have_b)
            budgets = [(b, b) for b in shared if b > 0 or claim.schedule == "none"]
            if not budgets:
                missing.append(f"{track}/{target}: no budget where both sides have runs")
        for budget_a, budget_b in budgets:
            if claim.schedule is None:
                best = {}
                for budget in sorted({budget_a, budget_b}):
                    best_a = best_by_validation([c for c in index.entry(track, *method_a, target)
                                                 if c.key.budget_epochs == budget])
                    best_b = None if method_b is None else best_by_validation(
                        [c for c in index.entry(track, *method_b, target) if c.key.budget_epochs == budget])
                    if best_a is None or (method_b is not None and best_b is None):
                        missing.append(f"{track}/{target}@{budget}: no runs with validation accuracy for both sides")
                        continue
                    best[budget] = (best_a, best_b)
                    settings.append(Setting(f"{target}, best schedule on validation @{budget}", best_a, best_b))
                if budget_a != budget_b and budget_a in best and budget_b in best and method_b is not None:
                    stated = (best[budget_a][0], best[budget_b][1])
                continue
            schedule_a = claim.schedule
            schedule_b = claim.baseline_schedule or schedule_a
            sides = {(schedule_a, budget_a), (schedule_b, budget_b)}
            for schedule, budget in sorted(sides):
                a = cell(method_a, target, schedule, budget)
                b = None if method_b is None else cell(method_b, target, schedule, budget)
                if a is not None and (method_b is None or b is not None):
                    settings.append(Setting(f"{target}, {schedule}@{budget}", a, b))
            if len(sides) == 2 and method_b is not None:
                a = index.get(CellKey(track, *method_a, target, schedule_a, budget_a))
                b = index.get(CellKey(track, *method_b, target, schedule_b, budget_b))
                if a is not None and b is not None:
                    stated = (a, b)
    return settings, stated, sorted(set(missing))


def reported_cells(claim: Claim, index: CellIndex) -> list[Cell]:
    """The cells of the claimant's own numbers, when the claim reports them."""
    if not claim.reported or claim.track is None or claim.target is None:
        return []
    source = f"reported: {claim_source(claim)}"
    keys = [CellKey(claim.track, claim.method, False, claim.target, claim.schedule, claim.budget, source)]
    if claim.reported.baseline:
        method, twin = claim.baseline_entry()
        budget = claim.budget if claim.baseline_budget is None else claim.baseline_budget
        keys.append(CellKey(claim.track, method, twin, claim.target, claim.baseline_schedule or claim.schedule,
                            budget, source))
    return [index.cells[key] for key in keys if key in index.cells]
