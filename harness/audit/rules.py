"""The audit rules R1-R13 (design brief, "What the audit flags"), one pure function each.

Every rule reads the same :class:`AuditInput` -- cells, the tables' comparisons, the prepared
claims, the tuning histories -- and returns findings with a stable rule id, a severity, the cells
involved, the numbers behind it and a one-sentence fix. Thresholds come from :class:`AuditConfig`.

Severity follows one principle: a problem that makes a comparison of reproduced runs unfair, or
a headline claim unsupported, is ``fail`` (the exit status of ``bench audit`` gates on it); a
result that qualifies a comparison (few seeds, a method no better than random, a paper's number
that does not reproduce) is ``warn``; context a reader should know is ``info``. Findings about
*reported* cells are at most ``warn``: they qualify what a paper's number means, they never stop
the leaderboard.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Iterable, Sequence

from harness.audit.claims import ALL_TRACKS, ClaimTest
from harness.audit.comparisons import Comparison
from harness.audit.config import AuditConfig
from harness.audit.findings import Finding, Severity
from harness.audit.tuning import (
    TuningStudy,
    cell_study,
    expected_best,
    record_splits,
    studies_by_cell,
    trial_count,
)
from harness.run.cells import Cell, CellKey

PROTOCOL_FIELDS = ("optimizer", "momentum", "nesterov", "weight_decay", "batch_size", "crop_padding",
                   "horizontal_flip", "peak_lr", "warmup_epochs")
TUNABLE_FIELDS = ("peak_lr", "warmup_epochs")
SELECTION_SPLIT = "val"


@dataclass(frozen=True)
class AuditInput:
    cells: tuple[Cell, ...]
    comparisons: tuple[Comparison, ...]
    claims: tuple[ClaimTest, ...] = ()
    studies: tuple[TuningStudy, ...] = ()


def _severity(cell: Cell, severity: Severity) -> Severity:
    """Findings on reported cells qualify a paper's number: at most a warning."""
    return "warn" if severity == "fail" and not cell.reproduced else severity


def _mode(values: Iterable[Hashable]) -> Any:
    """The most common value; ties go to the smallest by ``repr`` (which orders any value, such as
    protocol rows holding None), so the reference never depends on the order of the cells."""
    counts = Counter(values)
    top = max(counts.values())
    return min((v for v, c in counts.items() if c == top), key=repr)


def _relative(value: float, reference: float) -> float:
    return abs(value - reference) / abs(reference) if reference else (0.0 if value == reference else math.inf)


def _reference_pool(members: Sequence[tuple[Cell, Any]]) -> list[Any]:
    """Reproduced cells set the reference; reported ones only when nothing else is there."""
    reproduced = [value for cell, value in members if cell.reproduced]
    return reproduced or [value for _, value in members]


def _claim_evidence(claim: ClaimTest, **numbers: Any) -> dict[str, Any]:
    return {"claim": claim.name, **numbers}


def r1_budget_mismatch(audit: AuditInput, config: AuditConfig) -> list[Finding]:
    """Entries compared at one budget must retrain for the same number of steps (design: >5% fails)."""
    findings = []
    groups: dict[tuple[str, int], list[tuple[Cell, float]]] = defaultdict(list)
    for cell in audit.cells:
        steps = cell.mean_of("retrain_steps")
        if steps is not None and cell.key.budget_epochs > 0:
            groups[(cell.key.track, cell.key.budget_epochs)].append((cell, steps))
    for (track, budget), members in sorted(groups.items()):
        reference = _mode(round(s) for s in _reference_pool(members))
        for cell, steps in members:
            difference = _relative(steps, reference)
            if difference > config.budget_tolerance:
                findings.append(Finding(
                    "R1", _severity(cell, "fail"),
                    f"{cell.label} retrained for {steps:g} steps where the other {budget}-epoch entries of "
                    f"{track} used {reference} ({100 * difference:.1f}% off)",
                    (cell.label,),
                    {"retrain_steps": steps, "reference_steps": reference, "relative_difference": difference,
                     "tolerance": config.budget_tolerance},
                    f"Retrain this entry for the track's {budget}-epoch budget ({reference} steps) at the track's batch size.",
                ))
    for test in audit.claims:
        if test.stated is None:
            continue
        a, b = test.stated
        steps_a, steps_b = a.mean_of("retrain_steps"), b.mean_of("retrain_steps")
        difference = (_relative(steps_a, steps_b) if steps_a is not None and steps_b is not None
                      else _relative(a.key.budget_epochs, b.key.budget_epochs))
        if difference > config.budget_tolerance:
            findings.append(Finding(
                "R1", "fail",
                f"claim '{test.name}' compares {a.key.budget_epochs} retraining epochs against {b.key.budget_epochs}",
                (a.label, b.label),
                _claim_evidence(test, budget_a=a.key.budget_epochs, budget_b=b.key.budget_epochs,
                                retrain_steps_a=steps_a, retrain_steps_b=steps_b, relative_difference=difference,
                                tolerance=config.budget_tolerance),
                "Compare both entries at the same retraining budget; the audit judges the claim at each budget in turn.",
            ))
    return findings


def _protocol_row(cell: Cell) -> tuple | None:
    protocols = [r.protocol for r in (cell.ok or cell.records) if r.protocol is not None]
    return tuple(getattr(protocols[0], f) for f in PROTOCOL_FIELDS) if protocols else None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)
    return a == b


def _tuned(cell: Cell) -> bool:
    return any(getattr(r, "tuning", None) for r in cell.records)


def _protocol_differences(a: tuple, b: tuple, skip: tuple[str, ...] = ()) -> dict[str, list[Any]]:
    return {f: [x, y] for f, x, y in zip(PROTOCOL_FIELDS, a, b) if f not in skip and not _same(x, y)}


def r2_schedule_mismatch(audit: AuditInput, config: AuditConfig) -> list[Finding]:
    """Entries under one schedule and budget share its type, peak lr, warm-up, optimizer, weight
    decay and augmentation; tuned entries may differ in the tuned values (R10 checks the tuning)."""
    findings = []
    groups: dict[tuple[str, str, int], list[tuple[Cell, tuple]]] = defaultdict(list)
    for cell in audit.cells:
        row = _protocol_row(cell)
        if row is not None:
            groups[(cell.key.track, cell.key.schedule, cell.key.budget_epochs)].append((cell, row))
    for (track, schedule, budget), members in sorted(groups.items()):
        reference = _mode(_reference_pool(members))
        for cell, row in members:
            differing = _protocol_differences(row, reference, TUNABLE_FIELDS if _tuned(cell) else ())
            if differing:
                findings.append(Finding(
                    "R2", _severity(cell, "fail"),
                    f"{cell.label} ran {schedule}@{budget} with a different {', '.join(differing)} than the other "
                    f"entries of {track}",
                    (cell.label,),
                    {"differences": {f: {"entry": v[0], "reference": v[1]} for f, v in differing.items()}},
                    "Retrain with the track's recipe: only the pruning decision may differ between compared entries.",
                ))
    for test in audit.claims:
        if test.stated is None:
            continue
        a, b = test.stated
        row_a, row_b = _protocol_row(a), _protocol_row(b)
        differing = _protocol_differences(row_a, row_b) if row_a and row_b else {}
        if a.key.schedule != b.key.schedule or differing:
            findings.append(Finding(
                "R2", "fail",
                f"claim '{test.name}' compares {a.key.method} under {a.key.schedule} against "
                f"{b.key.entry} under {b.key.schedule}",
                (a.label, b.label),
                _claim_evidence(test, schedule_a=a.key.schedule, schedule_b=b.key.schedule,
                                differences={f: {"a": v[0], "b": v[1]} for f, v in differing.items()}),
                "Compare both entries under the same schedule; the audit judges the claim under each in turn.",
            ))
    return findings


def _deviations(cells: Sequence[Cell], value_of: Callable[[Cell], float | None], group_of: Callable[[Cell], tuple],
                off: Callable[[float, float], float], tolerance: float) -> list[tuple[Cell, float, float, float]]:
    """(cell, value, reference, deviation) for cells whose value is off the group's median."""
    groups: dict[tuple, list[tuple[Cell, float]]] = defaultdict(list)
    for cell in cells:
        value = value_of(cell)
        if value is not None:
            groups[group_of(cell)].append((cell, value))
    out = []
    for _, members in sorted(groups.items()):
        reference = statistics.median(_reference_pool(members))
        out.extend((cell, value, reference, off(value, reference)) for cell, value in members
                   if off(value, reference) > tolerance)
    return out


def _target(cell: Cell) -> tuple[str, str, str]:
    return cell.key.track, cell.key.target, cell.family


def r3_compression_mismatch(audit: AuditInput, config: AuditConfig) -> list[Finding]:
    """Entries at one target reach the same MACs (design: >2% relative fails) and sparsity (>0.5 pp);
    structured and unstructured (masked) entries are checked within their own family, and a claim
    that compares across families, or across compressions, fails."""
    findings = []
    for cell, macs, reference, off in _deviations(audit.cells, lambda c: c.mean_of("macs_after"), _target,
                                                 _relative, config.macs_tolerance):
        findings.append(Finding(
            "R3", _severity(cell, "fail"),
            f"{cell.label} keeps {macs:,.0f} MACs where the other {cell.key.target} entries keep {reference:,.0f} "
            f"({100 * off:.1f}% off)",
            (cell.label,),
            {"macs_after": macs, "reference_macs_after": reference, "relative_difference": off,
             "tolerance": config.macs_tolerance},
            "Prune this entry to the target's compression (equal MACs), or compare it at a target it matches.",
        ))
    for cell, sparsity, reference, off in _deviations(audit.cells, lambda c: c.mean_of("sparsity"), _target,
                                                     lambda v, r: abs(v - r), config.sparsity_tolerance):
        findings.append(Finding(
            "R3", _severity(cell, "fail"),
            f"{cell.label} has sparsity {100 * sparsity:.2f}% where the other {cell.key.target} entries have "
            f"{100 * reference:.2f}% ({100 * off:.2f} pp off)",
            (cell.label,),
            {"sparsity": sparsity, "reference_sparsity": reference, "difference": off,
             "tolerance": config.sparsity_tolerance},
            "Prune this entry to the target's sparsity, or compare it at a target it matches.",
        ))
    for test in audit.claims:
        for a, b in test.pairs():
            macs_a, macs_b = a.mean_of("macs_after"), b.mean_of("macs_after")
            sparsity_a, sparsity_b = a.mean_of("sparsity"), b.mean_of("sparsity")
            macs_off = _relative(macs_a, macs_b) if macs_a is not None and macs_b is not None else 0.0
            sparsity_off = (abs(sparsity_a - sparsity_b) if sparsity_a is not None and sparsity_b is not None
                            else 0.0)
            if a.family != b.family or macs_off > config.macs_tolerance or sparsity_off > config.sparsity_tolerance:
                findings.append(Finding(
                    "R3", "fail",
                    f"claim '{test.name}' compares {a.family} {a.key.entry} ({macs_a or 0:,.0f} MACs) with "
                    f"{b.family} {b.key.entry} ({macs_b or 0:,.0f} MACs)",
                    (a.label, b.label),
                    _claim_evidence(test, family_a=a.family, family_b=b.family, macs_after_a=macs_a,
                                    macs_after_b=macs_b, sparsity_a=sparsity_a, sparsity_b=sparsity_b),
                    "Compare entries at equal compression: equal MACs for structured pruning, equal sparsity for masks.",
                ))
    return findings


def _dense_seeds(cell: Cell) -> frozenset[int]:
    return frozenset(r.dense_seed for r in cell.ok)


def r4_dense_mismatch(audit: AuditInput, config: AuditConfig) -> list[Finding]:
    """Entries compared at one target start from the same dense checkpoints: every dense seed
    names one checkpoint per track, and no entry's dense seeds are disjoint from the others'
    (a subset is missing runs, which R5 counts); a paper's dense accuracy matches the
    reproduced one (within the dense tolerance)."""
    findings = []
    hashes: dict[tuple[str, int], Counter] = defaultdict(Counter)
    dense_accuracy: dict[str, dict[str, float]] = defaultdict(dict)
    by_target: dict[tuple[str, str], list[Cell]] = defaultdict(list)
    for cell in audit.cells:
        if cell.reproduced and cell.ok:
            by_target[(cell.key.track, cell.key.target)].append(cell)
            for r in cell.ok:
                hashes[(cell.key.track, r.dense_seed)][r.dense_hash] += 1
                if r.dense_test_acc is not None:
                    dense_accuracy[cell.key.track][r.dense_hash] = r.dense_test_acc
    reference = {key: _mode(counts.elements()) for key, counts in hashes.items()}
    for (track, target), cells in sorted(by_target.items()):
        usual = _mode(_dense_seeds(c) for c in cells)
        for cell in cells:
            foreign = sorted({(r.dense_seed, r.dense_hash) for r in cell.ok
                              if r.dense_hash != reference[(track, r.dense_seed)]})
            disjoint = not _dense_seeds(cell) & usual
            if foreign or disjoint:
                expected = sorted({(s, reference[(track, s)]) for s in usual})
                findings.append(Finding(
                    "R4", "fail",
                    f"{cell.label} starts from dense checkpoints {_names(_checkpoints(cell))} where the other "
                    f"{target} entries start from {_names(expected)}",
                    (cell.label,),
                    {"dense_checkpoints": _names(_checkpoints(cell)), "reference_checkpoints": _names(expected)},
                    "Prune every compared entry from the same dense checkpoints (same dense seeds and recipe).",
                ))
    for cell in audit.cells:
        reported = cell.mean_of("dense_test_acc")
        reproduced = dense_accuracy.get(cell.key.track)
        if cell.reproduced or reported is None or not reproduced:
            continue
        reference_accuracy = statistics.fmean(reproduced.values())
        if abs(reported - reference_accuracy) > config.dense_tolerance:
            findings.append(Finding(
                "R4", "warn",
                f"{cell.label} starts from a dense model at {100 * reported:.2f}% where the reproduced dense "
                f"models reach {100 * reference_accuracy:.2f}%",
                (cell.label,),
                {"reported_dense_test_acc": reported, "reproduced_dense_test_acc": reference_accuracy,
                 "difference": reported - reference_accuracy, "tolerance": config.dense_tolerance},
                "Compare accuracy changes against the matching dense baseline, not accuracies from different baselines.",
            ))
    return findings


def _checkpoints(cell: Cell) -> list[tuple[int, str]]:
    return sorted({(r.dense_seed, r.dense_hash) for r in cell.ok})


def _names(checkpoints: Iterable[tuple[int, str]]) -> list[str]:
    return [f"seed {seed}: {digest}" for seed, digest in sorted(checkpoints)]


def r5_too_few_seeds(audit: AuditInput, config: AuditConfig) -> list[Finding]:
    """Fewer than ``min_seeds`` successful seeds fails, fewer than ``recommended_seeds`` warns."""
    findings = []
    for cell in audit.cells:
        if cell.n >= config.recommended_seeds:
            continue
        severity = _severity(cell, "fail" if cell.n < config.min_seeds else "warn")
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
            evidence = _claim_evidence(test, setting=setting.label, difference=c.difference,
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
    """Significance must survive Holm across a file's claims and Benjamini-Hochberg across a table."""
    findings = []
    for test in audit.claims:
        if test.pvalue < config.claim_level <= test.pvalue_adjusted:
            findings.append(Finding(
                "R7", "fail",
                f"claim '{test.name}' is significant alone (one-sided p = {test.pvalue:.3g}) but not after Holm over "
                f"{sum(math.isfinite(t.pvalue) for t in audit.claims)} claims (p = {test.pvalue_adjusted:.3g})",
                tuple(sorted(test.cells())),
                _claim_evidence(test, pvalue=test.pvalue, pvalue_holm=test.pvalue_adjusted, level=config.claim_level),
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
                "after Benjamini-Hochberg; the tables show them as ties",
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
                tuple(sorted(test.cells())), _claim_evidence(test, margin=margin),
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
                _claim_evidence(test, setting=result.setting, margin=margin, difference=result.difference,
                                noninferiority_pvalue=result.equivalence.lower_pvalue,
                                tost_pvalue=result.equivalence.pvalue,
                                ci=[result.equivalence.ci_low, result.equivalence.ci_high],
                                naive_pvalue=result.naive.pvalue, n=result.n),
                "Claim no loss only when the TOST interval lies above -margin; otherwise report the drop with its interval.",
            ))
        if not test.no_loss and not test.missing:
            findings.append(Finding(
                "R8", "fail", f"claim '{test.name}': the records hold nothing to test no loss with",
                tuple(sorted(test.cells())), _claim_evidence(test, margin=margin),
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


def _trials(cell: Cell, studies: dict, by_name: dict) -> tuple[int, float | None, TuningStudy | None]:
    study = cell_study(cell.key, cell.records, studies, by_name)
    return trial_count(study, cell.records), cell.mean_of("val_acc"), study


def r10_unequal_tuning(audit: AuditInput, config: AuditConfig) -> list[Finding]:
    """Compared entries get equal tuning trials (compare expected best validation accuracy at
    equal trial counts, Dodge et al. 2019); anything selected on the test split fails.

    Unequal trials between the reproduced entries of a claim fail (more tuning buys accuracy, so
    the claim would credit the criterion with it); across a table's entries, or where a paper's
    number is involved, they warn."""
    findings = []
    studies = studies_by_cell(list(audit.studies))
    by_name = {s.study: s for s in audit.studies}
    labels = {c.key.without_source(): c.label for c in audit.cells if c.reproduced}
    for study in audit.studies:
        if study.split != SELECTION_SPLIT:
            cell = labels.get(CellKey(*study.cell).without_source())
            findings.append(Finding(
                "R10", "fail", f"tuning study {study.study} selected on the {study.split!r} split",
                (cell,) if cell else (), {"study": study.study, "path": study.path, "split": study.split},
                "Retune on the validation split; a test-selected configuration overstates test accuracy.",
            ))
    for cell in audit.cells:
        splits = record_splits(cell.records) - {SELECTION_SPLIT}
        if splits:
            findings.append(Finding(
                "R10", _severity(cell, "fail"), f"{cell.label} was tuned on the {', '.join(sorted(splits))} split",
                (cell.label,), {"splits": sorted(splits)},
                "Retune on the validation split; a test-selected configuration overstates test accuracy.",
            ))
    groups: dict[tuple, list[Cell]] = defaultdict(list)
    for cell in audit.cells:
        if cell.reproduced and cell.n:
            groups[cell.key.context].append(cell)
    pairs = [(members, None) for _, members in sorted(groups.items())]
    pairs += [([a, b], test) for test in audit.claims for a, b in test.pairs()]
    for members, test in pairs:
        counted = [(cell, *_trials(cell, studies, by_name)) for cell in members]
        counts = {n for _, n, _, _ in counted}
        if len(counts) < 2:
            continue
        equal = min(counts)
        at_equal = {cell.label: expected_best(study, val, equal) for cell, _, val, study in counted}
        evidence = {"trials": {cell.label: n for cell, n, _, _ in counted}, "equal_trials": equal,
                    "expected_best_val_acc_at_equal_trials": at_equal}
        where = f"claim '{test.name}'" if test else "/".join(map(str, members[0].key.context[:3])) + \
            f"@{members[0].key.budget_epochs}"
        claimed = test is not None and all(cell.reproduced for cell, *_ in counted)
        findings.append(Finding(
            "R10", "fail" if claimed else "warn",
            f"{where}: entries were tuned with unequal trial counts ({', '.join(str(n) for n in sorted(counts))})",
            tuple(sorted(cell.label for cell, *_ in counted)),
            _claim_evidence(test, **evidence) if test else evidence,
            f"Tune every compared entry with the same number of trials (or compare expected best validation "
            f"accuracy at {equal} trials, as shown).",
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
            (), _claim_evidence(test, probability_of_improvement=estimate.estimate,
                                ci=[estimate.ci_low, estimate.ci_high], tasks=estimate.n_tasks,
                                pvalue=test.pvalue, pvalue_holm=test.pvalue_adjusted, min_seeds=config.min_seeds),
            f"Claim an advantage across tracks only with at least {config.min_seeds} seeds of both methods in every "
            "task and a significant stratified permutation test.",
        ))
    return findings


RULE_FUNCTIONS: tuple[Callable[[AuditInput, AuditConfig], list[Finding]], ...] = (
    r1_budget_mismatch, r2_schedule_mismatch, r3_compression_mismatch, r4_dense_mismatch, r5_too_few_seeds,
    r6_not_significant, r7_multiple_comparisons, r8_no_loss_without_equivalence, r9_no_better_than_twin,
    r10_unequal_tuning, r11_reported_gap, r12_one_source_of_randomness, r13_aggregation,
)
