"""Judging claims: the comparisons a claim rests on, Holm across a claims file, and the verdict.

Judging. The claimant's comparison is checked for fairness as stated (a different budget or
schedule for the two sides breaks R1/R2); the claim itself is judged on *fair* comparisons: both
entries under the same schedule and budget (each stated setting in turn), or, when no schedule is
stated, each entry under its best schedule chosen on validation accuracy at every shared budget.
A claim must hold in every setting (intersection-union test: its p-value is the largest), and
the claims of one file are one family, Holm-corrected.

* ``supported`` -- significant after Holm in the claimed direction (the detectable difference is
  reported beside it, not required of it), on comparisons no fail-level fairness rule invalidates; a no-loss claim needs TOST
  non-inferiority at the margin (the lower one-sided test) in every setting.
* ``not supported`` -- the records contradict it (the baseline is better, or the two are
  equivalent), the compared entries differ in compression, dense baseline or tuning (R3, R4, R10),
  or the stated comparison was unfair (R1, R2) and the fair one does not show the claim.
* ``inconclusive`` -- the records cannot decide: entries missing, too few seeds, or a difference
  that is not significant at the seeds at hand (the seeds that would detect it are given).

Cross-track claims are judged by the probability of improvement averaged over tasks, with a
stratified-bootstrap interval: supported above 0.5, not supported below, inconclusive across it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Literal, Sequence

import numpy as np

from harness import stats
from harness.audit.aggregate import pair_aggregate, task_entries
from harness.audit.claims.matching import (
    CellIndex,
    Setting,
    claim_settings,
    claim_track,
    reported_cells,
)
from harness.audit.claims.schema import ALL_TRACKS, Claim
from harness.audit.comparisons import Comparison, align, compare_pairs
from harness.audit.config import AuditConfig
from harness.audit.findings import Finding, rule_ids, touching
from harness.core.errors import BenchError
from harness.core.seeding import derive_seed
from harness.run.cells import Cell

ClaimVerdictName = Literal["supported", "not supported", "inconclusive"]
UNFAIR_COMPARISON = ("R3", "R4", "R10")
UNFAIR_STATEMENT = ("R1", "R2")


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



def _no_loss(setting: Setting, margin: float, level: float, min_seeds: int = 3) -> NoLossResult | None:
    """TOST at the claims' one-sided ``level`` (its interval is the two-sided ``1 - 2 level`` one)."""
    a = np.asarray(setting.a.values)
    resolution = max(setting.a.resolution, setting.b.resolution if setting.b else 0.0)
    if setting.b is None:
        dense = setting.a.dense_values()
        if dense is None:
            return None
        b, paired = np.asarray(dense), True
    else:
        x, y, paired, _ = align(setting.a, setting.b, min_seeds)
        a, b = np.asarray(x), np.asarray(y)
    equivalence = stats.tost(a, b, margin, level, paired=paired, resolution=resolution)
    naive = (stats.paired_t_test(a, b, resolution) if paired else stats.welch_test(a, b, resolution))
    inferiority = 1.0 - equivalence.lower_pvalue if math.isfinite(equivalence.lower_pvalue) else math.nan
    return NoLossResult(setting.label, len(a), equivalence.difference, equivalence, naive, inferiority)


def _max_pvalue(pvalues: Sequence[float]) -> float:
    return max(pvalues) if pvalues and all(math.isfinite(p) for p in pvalues) else math.nan


def one_sided(comparison: Comparison) -> float:
    """The one-sided p-value that ``a`` beats ``b``, from the comparison's two-sided t test."""
    p = comparison.pvalue
    return p / 2 if comparison.difference > 0 else 1 - p / 2


def prepare_claims(claims: Sequence[Claim], cells: Sequence[Cell], config: AuditConfig) -> list[ClaimTest]:
    """Find each claim's cells, run its comparisons, and Holm-correct the claims as one family."""
    index = CellIndex(cells)
    drafts = []
    all_pairs: list[tuple[Cell, Cell, str]] = []
    for claim in claims:
        if claim.track == ALL_TRACKS:
            drafts.append((claim, None, [], None, [], _cross_track(claim, cells, config)))
            continue
        track = claim_track(claim, cells)
        settings, stated, missing = claim_settings(claim, track, index)
        if claim.kind == "beats":
            all_pairs.extend((s.a, s.b, "claim") for s in settings if s.b is not None)
        drafts.append((claim, track, settings, stated, missing, None))
    comparisons = compare_pairs(all_pairs, config)
    by_pair = {(c.a, c.b): c for c in comparisons}
    tests = []
    for claim, track, settings, stated, missing, cross in drafts:
        if cross is not None:
            aggregate, pvalue, short = cross
            tests.append(ClaimTest(claim, track, (), None, (), (), pvalue, math.nan, (), tuple(short), aggregate))
            continue
        found = tuple(by_pair[(s.a.label, s.b.label)] for s in settings if s.b is not None and claim.kind == "beats")
        no_loss: tuple[NoLossResult, ...] = ()
        if claim.kind == "no-loss":
            margin = claim.margin or config.equivalence_margin
            results = [_no_loss(s, margin, config.claim_level, config.min_seeds) for s in settings]
            no_loss = tuple(r for r in results if r is not None)
            missing = missing + [f"{s.a.label}: dense accuracy not recorded" for s, r in zip(settings, results) if r is None]
            pvalue = _max_pvalue([r.equivalence.lower_pvalue for r in no_loss])
        else:
            pvalue = _max_pvalue([one_sided(c) for c in found])
        if not settings or missing:
            pvalue = math.nan
        tests.append(ClaimTest(claim, track, tuple(settings), stated, found, no_loss, pvalue, math.nan,
                               tuple(reported_cells(claim, index)), tuple(missing), None))
    defined = [i for i, t in enumerate(tests) if math.isfinite(t.pvalue)]
    if defined:
        adjusted = stats.holm([tests[i].pvalue for i in defined])
        for i, p in zip(defined, adjusted.tolist()):
            tests[i] = replace(tests[i], pvalue_adjusted=p)
    return tests


def _cross_track(claim: Claim, cells: Sequence[Cell], config: AuditConfig
                 ) -> tuple[stats.AggregateEstimate | None, float, list[str]]:
    """The probability of improvement across tasks, the one-sided p-value of the stratified
    permutation test (nan when a task has fewer than ``min_seeds`` runs of either method: with one
    run per task nothing within a task can be resampled or permuted), and the tasks short of runs."""
    method_b, twin_b = claim.baseline_entry()
    if twin_b:
        raise BenchError(f"claim {claim.name!r}: a claim across tracks compares two methods; name a method as baseline")
    targets = [c for c in cells if claim.target is None or c.key.target == claim.target]
    entries = task_entries(targets, methods=[claim.method, method_b])
    pair = pair_aggregate(entries, claim.method, method_b, config)
    if pair is None:
        return None, math.nan, []
    short = [f"{entries[m][t].cell.label} has {len(entries[m][t].scores)}" for t in pair.tasks
             for m in (claim.method, method_b) if len(entries[m][t].scores) < config.min_seeds]
    if short:
        return pair.probability_of_improvement, math.nan, [
            f"fewer than {config.min_seeds} runs per task: {', '.join(short)}"]
    pvalue = stats.improvement_permutation_test(
        [entries[claim.method][t].scores for t in pair.tasks], [entries[method_b][t].scores for t in pair.tasks],
        seed=derive_seed(config.seed, f"claim|{claim.name}"), n_resamples=config.n_resamples)
    return pair.probability_of_improvement, pvalue, []


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
    touched = {id(f) for f in touching(findings, test.cells(), ("fail", "warn"))}
    return [f for f in findings if f.severity != "info"
            and (f.claim == test.name or (f.claim is None and id(f) in touched))]


def _claimed_difference(test: ClaimTest) -> float | None:
    """The claimant's own difference (method minus baseline), when both sides were reported."""
    method_side = [c for c in test.reported_cells if c.key.method == test.claim.method and not c.key.twin]
    baseline_side = [c for c in test.reported_cells if c not in method_side]
    return method_side[0].mean - baseline_side[0].mean if method_side and baseline_side else None


def _seeds_to_detect(difference: float, std: float, paired: bool, config: AuditConfig) -> int | None:
    """Seeds per entry (pairs when paired) that detect ``difference``; None when none up to 1000 would."""
    try:
        return stats.seeds_needed(difference, std, config.alpha, config.power, max_n=1000, paired=paired)
    except BenchError:
        return None


def _seeds_needed(test: ClaimTest, config: AuditConfig) -> int | None:
    """Seeds per entry at which the claimed (else the observed) difference becomes detectable."""
    claimed = _claimed_difference(test)
    needs = [_seeds_to_detect(c.difference if claimed is None else claimed, c.noise_std, c.paired, config)
             for c in test.comparisons]
    found = [n for n in needs if n is not None]
    return max(found) if found and len(found) == len(needs) else None


def judge(test: ClaimTest, findings: Sequence[Finding], config: AuditConfig) -> ClaimVerdict:
    """The verdict on one claim, with the reason in one sentence and the rules it breaks."""
    related = related_findings(test, findings)
    rules = rule_ids(related)
    evidence: dict[str, Any] = {"pvalue": test.pvalue, "pvalue_holm": test.pvalue_adjusted}
    verdict, reason = _decide(test, related, config, evidence)
    return ClaimVerdict(test.name, test.claim.kind, test.claim.statement(), verdict, reason, rules,
                        tuple(sorted(test.cells())), evidence)


def _decide(test: ClaimTest, related: Sequence[Finding], config: AuditConfig,
            evidence: dict[str, Any]) -> tuple[ClaimVerdictName, str]:
    if test.claim.track == ALL_TRACKS:
        return _decide_cross_track(test, config, evidence)
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
    shown = test.pvalue_adjusted < config.claim_level and all(c.difference > 0 for c in test.comparisons)
    if shown:
        return "supported", (f"significant in every setting after Holm (one-sided p = {test.pvalue_adjusted:.3g} "
                             f"< {config.claim_level:g})")
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
    return "inconclusive", f"the difference is not significant; {more}"


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
    if test.pvalue_adjusted < config.claim_level:
        return "supported", (f"non-inferior within {margin} in every setting (TOST lower test, Holm p = "
                             f"{test.pvalue_adjusted:.3g} < {config.claim_level:g})")
    inferior = [r for r in test.no_loss if r.inferiority_pvalue < config.claim_level]
    if inferior:
        return "not supported", f"accuracy drops by more than {margin} in {inferior[0].setting}"
    if stated_unfair:
        return "not supported", f"the stated comparison is unfair ({', '.join(stated_unfair)}) and the fair one does not show it"
    return "inconclusive", f"no loss beyond {margin} is not shown (TOST); a non-significant difference is not evidence of none"


def _decide_cross_track(test: ClaimTest, config: AuditConfig,
                        evidence: dict[str, Any]) -> tuple[ClaimVerdictName, str]:
    estimate = test.aggregate
    if estimate is None:
        return "inconclusive", ("no task (track, target, family) where both methods have runs; structured and "
                                "unstructured methods are not compared across tracks")
    evidence.update({"probability_of_improvement": estimate.estimate, "ci": [estimate.ci_low, estimate.ci_high],
                     "tasks": estimate.n_tasks, "test": "stratified-permutation"})
    summary = f"probability of improvement {estimate.estimate:.2f} [{estimate.ci_low:.2f}, {estimate.ci_high:.2f}]"
    if test.missing:
        return "inconclusive", (f"{summary}, but {'; '.join(test.missing)}: run at least {config.min_seeds} seeds "
                                "of both methods in every task")
    if test.pvalue_adjusted < config.claim_level:
        return "supported", (f"{summary} over {estimate.n_tasks} tasks; stratified permutation test, Holm "
                             f"one-sided p = {test.pvalue_adjusted:.3g} < {config.claim_level:g}")
    if estimate.ci_high < 0.5:
        return "not supported", f"{summary}: the interval lies below 0.5"
    return "inconclusive", (f"{summary} over {estimate.n_tasks} tasks is not significant (stratified permutation "
                            f"test, Holm one-sided p = {test.pvalue_adjusted:.3g})")
