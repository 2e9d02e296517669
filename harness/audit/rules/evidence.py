"""The evidence rules: enough seeds (R5), significance (R6) that survives correction (R7), equivalence
for no-loss claims (R8), a method better than its random twin (R9), reported numbers that reproduce
(R11), seeds that vary the run (R12), and statements across tracks that rest on tested aggregates (R13)."""

from __future__ import annotations

import math
from collections import defaultdict

from harness.audit.claims import ALL_TRACKS
from harness.audit.comparisons import Comparison
from harness.audit.config import AuditConfig
from harness.audit.findings import Finding
from harness.audit.rules.base import AuditInput, capped, claim_evidence
from harness.run.cells import Cell


def r5_too_few_seeds(audit: AuditInput, config: AuditConfig) -> list[Finding]:
    """Fewer than ``min_seeds`` successful seeds fails, fewer than ``recommended_seeds`` warns."""
    findings = []
    for cell in audit.cells:
        if cell.n >= config.recommended_seeds:
            continue
        severity = capped(cell, "fail" if cell.n < config.min_seeds else "warn")
        failed = f" ({cell.n_failed} failed or diverged)" if cell.n_failed else ""
        reported_n = next((r.env.get("reported_n") for r in cell.records if r.env.get("reported_n")), None)
        findings.append(Finding(
            "R5", severity,
            f"{cell.label} has {cell.n} successful seed{'s' * (cell.n != 1)}{failed}",
            (cell.label,),
            {"n": cell.n, "n_failed": cell.n_failed, "min_seeds": config.min_seeds,
             "recommended_seeds": config.recommended_seeds, "reported_n": reported_n},
            (f"Run at least {config.recommended_seeds} seeds (`bench run --seeds ...`); diverged runs count "
             "against the entry, not as missing." if cell.reproduced else
             "Ask the authors for per-seed results, or reproduce the entry here."),
        ))
    return findings


def r6_not_significant(audit: AuditInput, config: AuditConfig) -> list[Finding]:
    """A claimed difference must be significant in the claimed direction; the exact permutation
    test checks the t test wherever it can reach the significance level."""
    findings = []
    for test in audit.claims:
        settings = [s for s in test.settings if s.b is not None]
        for setting, c in zip(settings, test.comparisons):
            evidence = claim_evidence(test, setting=setting.label, difference=c.difference,
                                       ci=[c.ci_low, c.ci_high], test=c.test, pvalue=c.pvalue,
                                       permutation_pvalue=c.permutation_pvalue,
                                       minimum_detectable_difference=c.minimum_detectable_difference, n_a=c.n_a,
                                       n_b=c.n_b)
            if not (c.pvalue < config.alpha) or c.difference <= 0:
                direction = "the baseline is ahead" if c.difference <= 0 else "not significant"
                findings.append(Finding(
                    "R6", "fail",
                    f"claim '{test.name}': {direction} in {setting.label} (difference {100 * c.difference:+.2f} pp, "
                    f"{c.test} p = {c.pvalue:.3g}, detectable {100 * c.minimum_detectable_difference:.2f} pp)",
                    (c.a, c.b), evidence,
                    "Do not claim the difference; run more seeds if it matters (see the detectable difference).",
                ))
            elif c.permutation_can_confirm(config.alpha) and not c.permutation_pvalue < config.alpha:
                findings.append(Finding(
                    "R6", "warn",
                    f"claim '{test.name}': the {c.test} test is significant in {setting.label} but the exact "
                    f"permutation test is not (p = {c.permutation_pvalue:.3g})",
                    (c.a, c.b), evidence,
                    "Treat the difference as fragile: the t test's normality assumption carries it; add seeds.",
                ))
    return findings


def r7_multiple_comparisons(audit: AuditInput, config: AuditConfig) -> list[Finding]:
    """Significance must survive Holm across a file's claims, and Holm within each method's family in the tables."""
    findings = []
    for test in audit.claims:
        if test.pvalue < config.claim_level <= test.pvalue_adjusted:
            findings.append(Finding(
                "R7", "fail",
                f"claim '{test.name}' is significant alone (one-sided p = {test.pvalue:.3g}) but not after Holm over "
                f"{sum(math.isfinite(t.pvalue) for t in audit.claims)} claims (p = {test.pvalue_adjusted:.3g})",
                tuple(sorted(test.cells())),
                claim_evidence(test, pvalue=test.pvalue, pvalue_holm=test.pvalue_adjusted, level=config.claim_level),
                "Make fewer headline claims, or run enough seeds that each survives the correction.",
            ))
    by_track: dict[str, list[Comparison]] = defaultdict(list)
    for c in audit.comparisons:
        by_track[c.track].append(c)
    for track, comparisons in sorted(by_track.items()):
        lost = [c for c in comparisons if c.pvalue < config.alpha <= c.pvalue_adjusted]
        if lost:
            findings.append(Finding(
                "R7", "info",
                f"{len(lost)} of {len(comparisons)} comparisons in {track} are significant uncorrected but not "
                "after Holm within their method's family; the tables show them as ties",
                tuple(sorted({label for c in lost for label in (c.a, c.b)})),
                {"comparisons": len(comparisons), "significant_uncorrected": sum(c.pvalue < config.alpha for c in comparisons),
                 "significant_corrected": sum(c.pvalue_adjusted < config.alpha for c in comparisons)},
                "Read the corrected column; quoting an uncorrected p-value from these tables overstates the evidence.",
            ))
    return findings


def r8_no_loss_without_equivalence(audit: AuditInput, config: AuditConfig) -> list[Finding]:
    """'No accuracy loss' needs TOST with a stated margin, never just p > 0.05."""
    findings = []
    for test in audit.claims:
        if test.claim.kind != "no-loss":
            continue
        margin = test.margin or config.equivalence_margin
        if test.margin is None:
            findings.append(Finding(
                "R8", "warn", f"claim '{test.name}' states no margin; judged at the default {margin}",
                tuple(sorted(test.cells())), claim_evidence(test, margin=margin),
                "State the accuracy drop that still counts as no loss (margin = ...).",
            ))
        for result in test.no_loss:
            if result.equivalence.lower_pvalue < config.claim_level:
                continue
            naive = (f"; a plain test finds no difference (p = {result.naive.pvalue:.3g}), which is not evidence of none"
                     if result.naive.pvalue >= config.alpha else "")
            findings.append(Finding(
                "R8", "fail",
                f"claim '{test.name}': no loss beyond {margin} is not shown in {result.setting} "
                f"(difference {100 * result.difference:+.2f} pp, TOST p = {result.equivalence.lower_pvalue:.3g}){naive}",
                tuple(sorted(test.cells())),
                claim_evidence(test, setting=result.setting, margin=margin, difference=result.difference,
                                noninferiority_pvalue=result.equivalence.lower_pvalue,
                                tost_pvalue=result.equivalence.pvalue,
                                ci=[result.equivalence.ci_low, result.equivalence.ci_high],
                                naive_pvalue=result.naive.pvalue, n=result.n),
                "Claim no loss only when the TOST interval lies above -margin; otherwise report the drop with its interval.",
            ))
        if not test.no_loss and not test.missing:
            findings.append(Finding(
                "R8", "fail", f"claim '{test.name}': the records hold nothing to test no loss with",
                tuple(sorted(test.cells())), claim_evidence(test, margin=margin),
                "Record dense accuracies with the runs (every `bench run` record has them).",
            ))
    return findings


def r9_no_better_than_twin(audit: AuditInput, config: AuditConfig) -> list[Finding]:
    """A method must beat its random twin (same layer sizes, random choice) under the same
    schedule and budget; a method without twin runs has no control at all."""
    findings = []
    twins = {(c.a, c.b): c for c in audit.comparisons if c.kind == "twin"}
    reproduced = {cell.key: cell for cell in audit.cells if cell.reproduced}
    for cell in audit.cells:
        key = cell.key
        if not cell.reproduced or key.twin or key.method.startswith(config.random_method_prefix) or not cell.n:
            continue
        twin = reproduced.get(key.as_twin())
        if twin is None or not twin.n:
            findings.append(Finding(
                "R9", "fail", f"{cell.label} has no random-twin runs to compare with",
                (cell.label,), {"twin_runs": 0 if twin is None else len(twin.records)},
                "Run the twins too (leave out --no-twins): without them no one can tell the criterion from the retraining.",
            ))
            continue
        c = twins.get((cell.label, twin.label))
        if c is None or c.verdict == "better" or not math.isfinite(c.pvalue):
            continue  # an undefined test (a single seed) is R5's to report
        findings.append(Finding(
            "R9", "warn",
            f"{cell.label} is {'worse than' if c.verdict == 'worse' else 'no better than'} its random twin "
            f"({100 * c.difference:+.2f} pp, {c.test} p = {c.pvalue_adjusted:.3g} corrected, verdict {c.verdict})",
            (cell.label, twin.label),
            {"difference": c.difference, "ci": [c.ci_low, c.ci_high], "pvalue": c.pvalue,
             "pvalue_adjusted": c.pvalue_adjusted, "minimum_detectable_difference": c.minimum_detectable_difference,
             "verdict": c.verdict},
            "Credit the retraining, not the criterion, for this entry's accuracy; state the twin's result alongside it.",
        ))
    return findings


def r11_reported_gap(audit: AuditInput, config: AuditConfig) -> list[Finding]:
    """A number quoted from a paper must match the reproduced runs of the same configuration:
    outside their interval and further than the tolerance, it warns; with nothing to match, info."""
    findings = []
    reproduced = {c.key.without_source(): c for c in audit.cells if c.reproduced and c.n}
    for cell in audit.cells:
        if cell.reproduced or not cell.n:
            continue
        k = cell.key
        match = reproduced.get(k.without_source())
        if match is None:
            findings.append(Finding(
                "R11", "info", f"{cell.label} has no reproduced runs to check it against",
                (cell.label,), {"reported_mean": cell.mean},
                f"Reproduce it: bench run --track {k.track} --methods {k.method} --targets {k.target} "
                f"--schedules {k.schedule} --budgets {k.budget_epochs}.",
            ))
            continue
        gap = cell.mean - match.mean
        summary = match.summary
        outside = summary is not None and not summary.ci_low <= cell.mean <= summary.ci_high
        if outside and abs(gap) > config.reported_gap_tolerance:
            findings.append(Finding(
                "R11", "warn",
                f"{cell.label} reports {100 * cell.mean:.2f}% where {match.n} reproduced seeds give "
                f"{100 * match.mean:.2f}% [{100 * summary.ci_low:.2f}, {100 * summary.ci_high:.2f}] ({100 * gap:+.2f} pp)",
                (cell.label, match.label),
                {"reported_mean": cell.mean, "reproduced_mean": match.mean, "gap": gap,
                 "reproduced_ci": [summary.ci_low, summary.ci_high], "reproduced_n": match.n,
                 "tolerance": config.reported_gap_tolerance},
                "Quote the reproduced number, or find the protocol difference (R1-R4 findings on the reported cell) "
                "that explains the gap.",
            ))
    return findings


def r12_one_source_of_randomness(audit: AuditInput, config: AuditConfig) -> list[Finding]:
    """Seeds should vary both the dense checkpoint and the run (pruning draws, data order); runs
    with different seeds that come out identical mean the seed does not reach the run."""
    findings = []
    single: dict[str, list[Cell]] = defaultdict(list)
    for cell in audit.cells:
        if not cell.reproduced or cell.n < 2:
            continue
        seeds = {(r.dense_seed, r.seed) for r in cell.ok}
        outcomes = {(r.test_acc, tuple(r.curves.val_acc)) for r in cell.ok}
        if len(seeds) > 1 and len(outcomes) == 1 and cell.ok[0].curves.val_acc:
            findings.append(Finding(
                "R12", "warn", f"{cell.label}: {len(seeds)} different seeds gave identical runs",
                (cell.label,), {"seeds": sorted(seeds), "test_acc": cell.values[0]},
                "Check that the seed reaches data order, augmentation and the pruning draw; until then n is 1, not "
                f"{len(seeds)}.",
            ))
        elif len({r.dense_seed for r in cell.ok}) == 1 or len({r.seed for r in cell.ok}) == 1:
            single[cell.key.track].append(cell)
    for track, cells in sorted(single.items()):
        one_run_seed = sum(len({r.seed for r in c.ok}) == 1 for c in cells)
        findings.append(Finding(
            "R12", "info",
            f"{len(cells)} cells of {track} draw their runs from a single dense checkpoint or a single run seed: "
            "their intervals cover one source of randomness only",
            tuple(c.label for c in cells),
            {"cells": len(cells), "cells_with_one_dense_seed": len(cells) - one_run_seed,
             "cells_with_one_run_seed": one_run_seed,
             "dense_seeds": sorted({r.dense_seed for c in cells for r in c.ok})},
            "Add dense seeds to the track (seeds.dense) and run several seeds per dense checkpoint.",
        ))
    return findings


def r13_aggregation(audit: AuditInput, config: AuditConfig) -> list[Finding]:
    """Statements across tracks rest on IQM and probability of improvement with stratified
    bootstrap intervals, over methods that cover the same tracks."""
    findings = []
    methods: dict[str, set[str]] = defaultdict(set)
    for cell in audit.cells:
        if cell.reproduced and not cell.key.twin and cell.n:
            methods[cell.key.method].add(cell.key.track)
    tracks = set().union(*methods.values()) if methods else set()
    if len(tracks) > 1:
        for method, covered in sorted(methods.items()):
            if covered != tracks:
                findings.append(Finding(
                    "R13", "warn",
                    f"{method} has runs on {len(covered)} of {len(tracks)} tracks; aggregates and cross-track "
                    f"comparisons with it cover only {', '.join(sorted(covered))}",
                    (), {"method": method, "tracks": sorted(covered), "missing_tracks": sorted(tracks - covered)},
                    f"Run {method} on {', '.join(sorted(tracks - covered))} before comparing it across tracks.",
                ))
    for test in audit.claims:
        estimate = test.aggregate
        if test.claim.track != ALL_TRACKS or estimate is None or test.pvalue_adjusted < config.claim_level:
            continue
        why = "; ".join(test.missing) or (f"the stratified permutation test gives Holm one-sided p = "
                                          f"{test.pvalue_adjusted:.3g}, not below {config.claim_level:g}")
        findings.append(Finding(
            "R13", "fail",
            f"claim '{test.name}': across {estimate.n_tasks} tasks the probability of improvement is "
            f"{estimate.estimate:.2f} [{estimate.ci_low:.2f}, {estimate.ci_high:.2f}] and not shown above 0.5 ({why})",
            (), claim_evidence(test, probability_of_improvement=estimate.estimate,
                                ci=[estimate.ci_low, estimate.ci_high], tasks=estimate.n_tasks,
                                pvalue=test.pvalue, pvalue_holm=test.pvalue_adjusted, min_seeds=config.min_seeds),
            f"Claim an advantage across tracks only with at least {config.min_seeds} seeds of both methods in every "
            "task and a significant stratified permutation test.",
        ))
    return findings
