"""Claims: what someone says about pruning methods, judged against the records.

A claims file (TOML shown; JSON with a top-level ``"claim"`` list works too)::

    [[claim]]
    name = "L1-norm beats random pruning"   # optional; default "claim N"
    kind = "beats"                          # or "no-loss"
    method = "l1-norm"
    baseline = "random"      # a method, "twin" (the method's random twin), or "dense" (no-loss only)
    track = "digits-cnn"     # "*": across all tracks (beats only); optional with one track
    target = "uniform-50"    # optional: every target both entries have
    schedule = "ft"          # optional: the claimant's schedule and budget for `method` ...
    budget = 20
    baseline_schedule = "ft" # ... and for the baseline (default: the same as `method`)
    baseline_budget = 10
    margin = 0.005           # no-loss: the accuracy drop (a fraction) that still counts as none
    source = "Our paper, Table 3"           # where the reported numbers below come from
    [claim.reported]                        # optional: the claimant's own numbers (fractions)
    method = 0.962                          # or [0.96, 0.97, ...] or {test_acc = 0.962, std = 0.003, n = 3}
    baseline = 0.951

Judging. The claimant's comparison is checked for fairness as stated (a different budget or
schedule for the two sides breaks R1/R2); the claim itself is judged on *fair* comparisons: both
entries under the same schedule and budget (each stated setting in turn), or, when no schedule is
stated, each entry under its best schedule chosen on validation accuracy at every shared budget.
A claim must hold in every setting (intersection-union test: its p-value is the largest), and
the claims of one file are one family, Holm-corrected.

* ``supported`` -- significant after Holm in the claimed direction, by at least the detectable
  difference, on comparisons no fail-level fairness rule invalidates; a no-loss claim needs TOST
  non-inferiority at the margin (the lower one-sided test) in every setting.
* ``not supported`` -- the records contradict it (the baseline is better, or the two are
  equivalent), the compared entries differ in compression, dense baseline or tuning (R3, R4, R10),
  or the stated comparison was unfair (R1, R2) and the fair one does not show the claim.
* ``inconclusive`` -- the records cannot decide: entries missing, too few seeds, or a difference
  below what the seeds at hand can detect (the seeds needed are given).

Cross-track claims are judged by the probability of improvement averaged over tasks, with a
stratified-bootstrap interval: supported above 0.5, not supported below, inconclusive across it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from harness import stats
from harness.audit import power
from harness.audit.aggregate import pair_aggregate, task_entries
from harness.audit.comparisons import (
    REPRODUCED,
    Cell,
    Comparison,
    best_by_validation,
    compare_pairs,
    paired_cells,
)
from harness.audit.config import AuditConfig
from harness.audit.documents import describe, read_document
from harness.audit.findings import Finding
from harness.audit.reported import ReportedResult, to_records
from harness.core.errors import BenchError
from harness.run.record import Protocol, RunRecord

ALL_TRACKS = "*"
DENSE = "dense"
TWIN_NAMES = ("twin", "random twin")
ClaimVerdictName = Literal["supported", "not supported", "inconclusive"]
UNFAIR_COMPARISON = ("R3", "R4", "R10")
UNFAIR_STATEMENT = ("R1", "R2")


class ReportedNumbers(BaseModel):
    """The claimant's numbers for one side: a number, a list (one per seed), or a table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    test_acc: float | None = None
    values: tuple[float, ...] | None = None
    std: float | None = Field(None, ge=0)
    n: int | None = Field(None, ge=1)
    dense_test_acc: float | None = None
    params_after: int | None = Field(None, ge=0)
    macs_after: int | None = Field(None, ge=0)
    sparsity: float | None = None
    retrain_steps: int | None = Field(None, ge=0)
    protocol: Protocol | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, raw: Any) -> Any:
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            return {"test_acc": raw}
        if isinstance(raw, (list, tuple)):
            return {"values": raw}
        return raw


class ClaimReported(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    method: ReportedNumbers | None = None
    baseline: ReportedNumbers | None = None


class Claim(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = ""
    kind: Literal["beats", "no-loss"] = "beats"
    method: str
    baseline: str | None = None
    track: str | None = None
    target: str | None = None
    schedule: str | None = None
    budget: int | None = Field(None, ge=0)
    baseline_schedule: str | None = None
    baseline_budget: int | None = Field(None, ge=0)
    margin: float | None = Field(None, gt=0, lt=1)
    source: str | None = None
    reported: ClaimReported | None = None

    @field_validator("baseline")
    @classmethod
    def _known_baseline_word(cls, value: str | None) -> str | None:
        return "twin" if value in TWIN_NAMES else value

    @model_validator(mode="after")
    def _consistent(self) -> "Claim":
        if self.kind == "beats" and not self.baseline:
            raise ValueError("a 'beats' claim names its baseline (a method, or 'twin')")
        if self.kind == "beats" and self.baseline == DENSE:
            raise ValueError("'dense' is a baseline of no-loss claims; for 'beats' name a method or 'twin'")
        if self.kind == "beats" and self.margin is not None:
            raise ValueError("margin belongs to no-loss claims")
        if self.track == ALL_TRACKS and (self.kind != "beats" or self.reported or self.schedule or self.budget is not None):
            raise ValueError("a claim across all tracks ('*') is a 'beats' claim without schedule, budget or reported numbers")
        if self.reported and (self.schedule is None or self.budget is None or self.target is None or self.track is None):
            raise ValueError("reported numbers need the claim's track, target, schedule and budget")
        if self.baseline_schedule and not self.schedule:
            raise ValueError("baseline_schedule needs the method's schedule too")
        if self.reported and self.reported.baseline and self.baseline_side_is_dense:
            raise ValueError("a no-loss claim against dense reports the dense accuracy as method.dense_test_acc")
        return self

    @property
    def baseline_side_is_dense(self) -> bool:
        return self.kind == "no-loss" and (self.baseline or DENSE) == DENSE

    def baseline_entry(self) -> tuple[str, bool]:
        """(method, twin) of the baseline side."""
        return (self.method, True) if self.baseline == "twin" else (str(self.baseline), False)

    def statement(self) -> str:
        """The claim in one sentence, as the report prints it."""
        where = " across all tracks" if self.track == ALL_TRACKS else f" on {self.track}" if self.track else ""
        at = f" at {self.target}" if self.target else ""
        setting = ""
        if self.schedule or self.budget is not None:
            setting = " " + _setting_text(self.schedule, self.budget)
            baseline_side = (self.baseline_schedule or self.schedule,
                             self.budget if self.baseline_budget is None else self.baseline_budget)
            if baseline_side != (self.schedule, self.budget):
                setting += f" (the baseline {_setting_text(*baseline_side)})"
        baseline = "its random twin" if self.baseline == "twin" else self.baseline or DENSE
        if self.kind == "beats":
            return f"{self.method} beats {baseline}{where}{at}{setting}"
        margin = f"margin {self.margin}" if self.margin is not None else "no margin stated"
        return f"{self.method} loses no accuracy against {baseline}{where}{at}{setting} ({margin})"


def _setting_text(schedule: str | None, budget: int | None) -> str:
    under = f"under {schedule}" if schedule else "under its best schedule"
    return f"{under} at {budget} epochs" if budget is not None else f"{under} at every shared budget"


class ClaimsFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    claim: tuple[Claim, ...] = Field(min_length=1)


def load_claims(path: str | Path) -> list[Claim]:
    """Parse a claims file; unnamed claims are called "claim N" and names must be unique."""
    try:
        parsed = ClaimsFile.model_validate(read_document(path))
    except ValidationError as exc:
        raise describe(path, "claims", exc) from None
    claims = [c if c.name else c.model_copy(update={"name": f"claim {i + 1}"}) for i, c in enumerate(parsed.claim)]
    names = [c.name for c in claims]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise BenchError(f"{path}: claim name {duplicates[0]!r} is used twice; give every claim its own name")
    claim_records(claims, path)
    return claims


def claim_source(claim: Claim) -> str:
    return claim.source or f"claim: {claim.name}"


def claim_records(claims: Sequence[Claim], path: str | Path = "claims") -> list[RunRecord]:
    """The claimants' own numbers as reported records, one cell per claim side."""
    records = []
    for claim in claims:
        if not claim.reported:
            continue
        sides = [(claim.reported.method, claim.method, False, claim.schedule, claim.budget)]
        if claim.reported.baseline:
            method, twin = claim.baseline_entry()
            sides.append((claim.reported.baseline, method, twin, claim.baseline_schedule or claim.schedule,
                          claim.budget if claim.baseline_budget is None else claim.baseline_budget))
        for numbers, method, twin, schedule, budget in sides:
            if numbers is None:
                continue
            try:
                result = ReportedResult(track=claim.track, method=method, twin=twin, target=claim.target,
                                        schedule=schedule, budget_epochs=budget, **numbers.model_dump(exclude_none=True))
            except ValidationError as exc:
                raise describe(path, f"claim {claim.name!r}: reported numbers", exc) from None
            records.extend(to_records(result, claim_source(claim)))
    return records


@dataclass(frozen=True)
class Setting:
    """One fair comparison a claim is judged on; ``b`` is None for a no-loss claim against dense."""

    label: str
    a: Cell
    b: Cell | None


@dataclass(frozen=True)
class NoLossResult:
    setting: str
    n: int
    difference: float
    equivalence: stats.EquivalenceResult
    naive: stats.TestResult
    inferiority_pvalue: float


@dataclass(frozen=True)
class ClaimTest:
    """A claim with everything the rules and the verdict need."""

    claim: Claim
    track: str | None
    settings: tuple[Setting, ...]
    stated: tuple[Cell, Cell] | None
    comparisons: tuple[Comparison, ...]
    no_loss: tuple[NoLossResult, ...]
    pvalue: float
    pvalue_adjusted: float
    reported_cells: tuple[Cell, ...]
    missing: tuple[str, ...]
    aggregate: stats.AggregateEstimate | None

    @property
    def name(self) -> str:
        return self.claim.name

    @property
    def margin(self) -> float | None:
        return self.claim.margin

    def cells(self) -> set[str]:
        labels = {s.a.label for s in self.settings} | {s.b.label for s in self.settings if s.b}
        labels |= {c.label for c in self.reported_cells}
        if self.stated:
            labels |= {self.stated[0].label, self.stated[1].label}
        return labels

    def pairs(self) -> list[tuple[Cell, Cell]]:
        """Every pair of cells the claim compares: the fair settings and the stated comparison."""
        pairs = [(s.a, s.b) for s in self.settings if s.b is not None]
        return pairs + ([self.stated] if self.stated else [])


class _Index:
    """Reproduced cells by (track, method, twin, target, schedule, budget); reported by citation too."""

    def __init__(self, cells: Sequence[Cell]):
        self.cells = {}
        for cell in cells:
            k = cell.key
            self.cells[(k.track, k.method, k.twin, k.target, k.schedule, k.budget_epochs, k.source)] = cell

    def get(self, track: str, method: str, twin: bool, target: str, schedule: str, budget: int,
            source: str = REPRODUCED) -> Cell | None:
        cell = self.cells.get((track, method, twin, target, schedule, budget, source))
        return cell if cell is not None and cell.n else None

    def entry(self, track: str, method: str, twin: bool, target: str | None = None) -> list[Cell]:
        return [c for c in self.cells.values()
                if c.reproduced and c.n and (c.key.track, c.key.method, c.key.twin) == (track, method, twin)
                and (target is None or c.key.target == target)]


def _describe(track: str, method: str, twin: bool, target: str, schedule: str, budget: int) -> str:
    entry = f"{method}+twin" if twin else method
    return f"{track}/{entry}/{target}/{schedule}@{budget}"


def _claim_track(claim: Claim, cells: Sequence[Cell]) -> str:
    if claim.track:
        return claim.track
    tracks = sorted({c.key.track for c in cells if c.reproduced})
    if len(tracks) != 1:
        raise BenchError(f"claim {claim.name!r} names no track and the records hold {len(tracks)} tracks "
                         f"({', '.join(tracks) or 'none'}); add track = \"...\" (or \"*\" for all)")
    return tracks[0]


def _settings(claim: Claim, track: str, index: _Index) -> tuple[list[Setting], tuple[Cell, Cell] | None, list[str]]:
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
        found = index.get(track, entry[0], entry[1], target, schedule, budget)
        if found is None:
            missing.append(_describe(track, entry[0], entry[1], target, schedule, budget))
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
                a = index.get(track, *method_a, target, schedule_a, budget_a)
                b = index.get(track, *method_b, target, schedule_b, budget_b)
                if a is not None and b is not None:
                    stated = (a, b)
    return settings, stated, sorted(set(missing))


def _reported_cells(claim: Claim, index: _Index) -> list[Cell]:
    if not claim.reported or claim.track is None or claim.target is None:
        return []
    source = f"reported: {claim_source(claim)}"
    cells = [index.cells.get((claim.track, claim.method, False, claim.target, claim.schedule, claim.budget, source))]
    if claim.reported.baseline:
        method, twin = claim.baseline_entry()
        budget = claim.budget if claim.baseline_budget is None else claim.baseline_budget
        cells.append(index.cells.get((claim.track, method, twin, claim.target,
                                      claim.baseline_schedule or claim.schedule, budget, source)))
    return [c for c in cells if c is not None]


def _no_loss(setting: Setting, margin: float, alpha: float) -> NoLossResult | None:
    a = np.asarray(setting.a.values)
    if setting.b is None:
        dense = setting.a.dense_values()
        if dense is None:
            return None
        b, paired = np.asarray(dense), True
    else:
        b, paired = np.asarray(setting.b.values), paired_cells(setting.a, setting.b)
    equivalence = stats.tost(a, b, margin, alpha, paired=paired)
    naive = stats.paired_t_test(a, b) if paired else stats.welch_test(a, b)
    inferiority = 1.0 - equivalence.lower_pvalue if math.isfinite(equivalence.lower_pvalue) else math.nan
    return NoLossResult(setting.label, len(a), equivalence.difference, equivalence, naive, inferiority)


def _max_pvalue(pvalues: Sequence[float]) -> float:
    return max(pvalues) if pvalues and all(math.isfinite(p) for p in pvalues) else math.nan


def prepare_claims(claims: Sequence[Claim], cells: Sequence[Cell], config: AuditConfig, seed: int) -> list[ClaimTest]:
    """Find each claim's cells, run its comparisons, and Holm-correct the claims as one family."""
    index = _Index(cells)
    drafts = []
    all_pairs: list[tuple[Cell, Cell, str]] = []
    for claim in claims:
        if claim.track == ALL_TRACKS:
            drafts.append((claim, None, [], None, [], _cross_track(claim, cells, config, seed)))
            continue
        track = _claim_track(claim, cells)
        settings, stated, missing = _settings(claim, track, index)
        if claim.kind == "beats":
            all_pairs.extend((s.a, s.b, "claim") for s in settings if s.b is not None)
        drafts.append((claim, track, settings, stated, missing, None))
    comparisons = compare_pairs(all_pairs, config, seed)
    by_pair = {(c.a, c.b): c for c in comparisons}
    tests = []
    for claim, track, settings, stated, missing, aggregate in drafts:
        found = tuple(by_pair[(s.a.label, s.b.label)] for s in settings if s.b is not None and claim.kind == "beats")
        no_loss: tuple[NoLossResult, ...] = ()
        if claim.kind == "no-loss":
            margin = claim.margin or config.equivalence_margin
            results = [_no_loss(s, margin, config.alpha) for s in settings]
            no_loss = tuple(r for r in results if r is not None)
            missing = missing + [f"{s.a.label}: dense accuracy not recorded" for s, r in zip(settings, results) if r is None]
            pvalue = _max_pvalue([r.equivalence.lower_pvalue for r in no_loss])
        else:
            pvalue = _max_pvalue([c.pvalue for c in found])
        if not settings or missing:
            pvalue = math.nan
        tests.append(ClaimTest(claim, track, tuple(settings), stated, found, no_loss, pvalue, math.nan,
                               tuple(_reported_cells(claim, index)), tuple(missing), aggregate))
    defined = [i for i, t in enumerate(tests) if math.isfinite(t.pvalue)]
    if defined:
        adjusted = stats.holm([tests[i].pvalue for i in defined])
        for i, p in zip(defined, adjusted.tolist()):
            tests[i] = replace(tests[i], pvalue_adjusted=p)
    return tests


def _cross_track(claim: Claim, cells: Sequence[Cell], config: AuditConfig, seed: int) -> stats.AggregateEstimate | None:
    method_b, twin_b = claim.baseline_entry()
    if twin_b:
        raise BenchError(f"claim {claim.name!r}: a claim across tracks compares two methods; name a method as baseline")
    targets = [c for c in cells if claim.target is None or c.key.target == claim.target]
    entries = task_entries(targets, methods=[claim.method, method_b])
    pair = pair_aggregate(entries, claim.method, method_b, config, seed)
    return pair.probability_of_improvement if pair else None


@dataclass(frozen=True)
class ClaimVerdict:
    name: str
    kind: str
    statement: str
    verdict: ClaimVerdictName
    reason: str
    rules_broken: tuple[str, ...]
    cells: tuple[str, ...]
    evidence: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "statement": self.statement, "verdict": self.verdict,
                "reason": self.reason, "rules_broken": list(self.rules_broken), "cells": list(self.cells),
                "evidence": self.evidence}


def related_findings(test: ClaimTest, findings: Sequence[Finding]) -> list[Finding]:
    """Warnings and failures that name the claim, or that name no claim and touch one of its cells."""
    cells = test.cells()
    return [f for f in findings if f.severity != "info"
            and (f.claim == test.name or (f.claim is None and cells & set(f.cells)))]


def _claimed_difference(test: ClaimTest) -> float | None:
    """The claimant's own difference (method minus baseline), when both sides were reported."""
    method_side = [c for c in test.reported_cells if c.key.method == test.claim.method and not c.key.twin]
    baseline_side = [c for c in test.reported_cells if c not in method_side]
    return method_side[0].mean - baseline_side[0].mean if method_side and baseline_side else None


def _seeds_needed(test: ClaimTest, config: AuditConfig) -> int | None:
    """Seeds per entry at which the claimed (else the observed) difference becomes detectable."""
    claimed = _claimed_difference(test)
    needs = [power.seeds_needed(c.difference if claimed is None else claimed, c.noise_std, c.paired,
                                config.alpha, config.power) for c in test.comparisons]
    found = [n for n in needs if n is not None]
    return max(found) if found and len(found) == len(needs) else None


def judge(test: ClaimTest, findings: Sequence[Finding], config: AuditConfig) -> ClaimVerdict:
    """The verdict on one claim, with the reason in one sentence and the rules it breaks."""
    related = related_findings(test, findings)
    rules = tuple(sorted({f.rule for f in related}, key=lambda r: int(r[1:])))
    evidence: dict[str, Any] = {"pvalue": test.pvalue, "pvalue_holm": test.pvalue_adjusted}
    verdict, reason = _decide(test, related, config, evidence)
    return ClaimVerdict(test.name, test.claim.kind, test.claim.statement(), verdict, reason, rules,
                        tuple(sorted(test.cells())), evidence)


def _decide(test: ClaimTest, related: Sequence[Finding], config: AuditConfig,
            evidence: dict[str, Any]) -> tuple[ClaimVerdictName, str]:
    if test.claim.track == ALL_TRACKS:
        return _decide_cross_track(test, evidence)
    if test.missing or not test.settings:
        what = "; ".join(test.missing) or "no matching runs"
        return "inconclusive", f"the records lack what the claim needs ({what}); run those cells with `bench run`"
    few = [c.label for s in test.settings for c in (s.a, s.b) if c is not None and c.n < config.min_seeds]
    invalid = sorted({f.rule for f in related if f.severity == "fail" and f.rule in UNFAIR_COMPARISON})
    if invalid:
        return "not supported", f"the compared entries are not comparable ({', '.join(invalid)})"
    if few:
        return "inconclusive", f"fewer than {config.min_seeds} successful seeds in {', '.join(sorted(set(few)))}"
    stated_unfair = sorted({f.rule for f in related if f.severity == "fail" and f.rule in UNFAIR_STATEMENT
                            and f.claim == test.name})
    if test.claim.kind == "no-loss":
        return _decide_no_loss(test, stated_unfair, config, evidence)
    return _decide_beats(test, stated_unfair, config, evidence)


def _decide_beats(test: ClaimTest, stated_unfair: list[str], config: AuditConfig,
                  evidence: dict[str, Any]) -> tuple[ClaimVerdictName, str]:
    evidence["settings"] = [
        {"setting": s.label, "difference": c.difference, "ci": [c.ci_low, c.ci_high], "pvalue": c.pvalue,
         "test": c.test, "permutation_pvalue": c.permutation_pvalue, "minimum_detectable_difference":
         c.minimum_detectable_difference, "verdict": c.verdict}
        for s, c in zip([s for s in test.settings if s.b is not None], test.comparisons)
    ]
    shown = (test.pvalue_adjusted < config.alpha
             and all(c.difference > 0 and c.difference >= c.minimum_detectable_difference for c in test.comparisons))
    if shown:
        return "supported", (f"significant in every setting after Holm (p = {test.pvalue_adjusted:.3g}) "
                             "by at least the detectable difference")
    compared = zip([s.label for s in test.settings if s.b is not None], test.comparisons)
    contradicted = [(label, c) for label, c in compared if c.verdict in ("worse", "equivalent")]
    if contradicted:
        label, worst = contradicted[0]
        how = "equivalent within the margin" if worst.verdict == "equivalent" else "the baseline is better"
        return "not supported", f"the records contradict it: {how} in {label}"
    if stated_unfair:
        return "not supported", (f"the stated comparison is unfair ({', '.join(stated_unfair)}) and the fair "
                                 "comparison does not show the claim")
    needed = _seeds_needed(test, config)
    evidence["seeds_needed"] = needed
    more = f"about {needed} seeds per entry would detect it" if needed else "no practical number of seeds detects it"
    return "inconclusive", f"the difference is not significant or below the detectable difference; {more}"


def _decide_no_loss(test: ClaimTest, stated_unfair: list[str], config: AuditConfig,
                    evidence: dict[str, Any]) -> tuple[ClaimVerdictName, str]:
    margin = test.margin or config.equivalence_margin
    evidence["margin"] = margin
    evidence["margin_stated"] = test.margin is not None
    evidence["settings"] = [
        {"setting": r.setting, "n": r.n, "difference": r.difference, "tost_pvalue": r.equivalence.pvalue,
         "noninferiority_pvalue": r.equivalence.lower_pvalue, "ci": [r.equivalence.ci_low, r.equivalence.ci_high],
         "naive_pvalue": r.naive.pvalue}
        for r in test.no_loss
    ]
    if test.pvalue_adjusted < config.alpha:
        return "supported", f"non-inferior within {margin} in every setting (TOST lower test, Holm p = {test.pvalue_adjusted:.3g})"
    inferior = [r for r in test.no_loss if r.inferiority_pvalue < config.alpha]
    if inferior:
        return "not supported", f"accuracy drops by more than {margin} in {inferior[0].setting}"
    if stated_unfair:
        return "not supported", f"the stated comparison is unfair ({', '.join(stated_unfair)}) and the fair one does not show it"
    return "inconclusive", f"no loss beyond {margin} is not shown (TOST); a non-significant difference is not evidence of none"


def _decide_cross_track(test: ClaimTest, evidence: dict[str, Any]) -> tuple[ClaimVerdictName, str]:
    estimate = test.aggregate
    if estimate is None:
        return "inconclusive", ("no task (track, target, family) where both methods have runs; structured and "
                                "unstructured methods are not compared across tracks")
    evidence.update({"probability_of_improvement": estimate.estimate, "ci": [estimate.ci_low, estimate.ci_high],
                     "tasks": estimate.n_tasks})
    if estimate.ci_low > 0.5:
        return "supported", f"probability of improvement {estimate.estimate:.2f} with interval above 0.5"
    if estimate.ci_high < 0.5:
        return "not supported", f"probability of improvement {estimate.estimate:.2f} with interval below 0.5"
    return "inconclusive", f"probability of improvement {estimate.estimate:.2f}, interval [{estimate.ci_low:.2f}, {estimate.ci_high:.2f}] includes 0.5"
