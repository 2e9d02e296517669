"""The fairness rules: compared entries differ only in the pruning decision -- the same total budget (R1),
schedule (R2), compression (R3), dense checkpoints (R4), tuning effort on the validation split (R10) -- and
a reader learns when they split that budget differently around pruning (R15)."""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from typing import Any, Callable, Iterable, NamedTuple, Sequence

from harness.audit.config import AuditConfig
from harness.audit.findings import Finding
from harness.audit.rules.base import (
    AuditInput,
    capped,
    claim_evidence,
    mode,
    reference_pool,
    relative,
)
from harness.audit.tuning import (
    TuningStudy,
    cell_study,
    expected_best,
    record_splits,
    studies_by_cell,
    trial_count,
)
from harness.run.cells import Cell
from harness.run.record import split_name
from harness.tune.history import SELECTION_SPLIT

PROTOCOL_FIELDS = ("optimizer", "momentum", "nesterov", "weight_decay", "batch_size", "crop_padding",
                   "horizontal_flip", "peak_lr", "warmup_epochs")
TUNABLE_FIELDS = ("peak_lr", "warmup_epochs")
"""The values tuning may set, and the ones a schedule derives from the retraining after the final pruning."""
RECIPE_FIELDS = tuple(f for f in PROTOCOL_FIELDS if f not in TUNABLE_FIELDS)


def r1_budget_mismatch(audit: AuditInput, config: AuditConfig) -> list[Finding]:
    """Entries compared at one budget must train for the same number of steps in total (design: >5% fails):
    the budget is a run's whole training -- before pruning, between rounds and after -- so a method that
    trains before pruning retrains for fewer steps and is still fair."""
    findings = _deviation_findings("R1", audit.cells, _budgeted_steps, lambda c: (c.key.track, c.key.budget_epochs),
                                   relative, config.budget_tolerance, _steps_off,
                                   reference_of=lambda pool: mode(round(s) for s in pool))
    for test in audit.claims:
        if test.stated is None:
            continue
        a, b = test.stated
        steps_a, steps_b = a.mean_of("total_steps"), b.mean_of("total_steps")
        difference = (relative(steps_a, steps_b) if steps_a is not None and steps_b is not None
                      else relative(a.key.budget_epochs, b.key.budget_epochs))
        if difference > config.budget_tolerance:
            findings.append(Finding(
                "R1", "fail",
                f"claim '{test.name}' compares {_budget(a, steps_a)} against {_budget(b, steps_b)}",
                (a.label, b.label),
                claim_evidence(test, budget_a=a.key.budget_epochs, budget_b=b.key.budget_epochs,
                                total_steps_a=steps_a, total_steps_b=steps_b, relative_difference=difference,
                                tolerance=config.budget_tolerance),
                "Compare both entries at the same total budget (training before and after pruning); the audit "
                "judges the claim at each budget in turn.",
            ))
    return findings


def _budget(cell: Cell, steps: float | None) -> str:
    epochs = f"{cell.key.budget_epochs} epochs"
    return epochs if steps is None else f"{epochs} ({steps:g} total steps)"


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


def _references(rows: Sequence[tuple[Cell, tuple]], group_of: Callable[[Cell], tuple],
                fields: tuple[str, ...]) -> dict[tuple, tuple]:
    """Each group's usual values of ``fields`` (a protocol row, the other fields None): the mode of these
    fields alone, so entries that differ elsewhere do not split the vote."""
    groups: dict[tuple, list[tuple[Cell, tuple]]] = defaultdict(list)
    for cell, row in rows:
        groups[group_of(cell)].append((cell, tuple(v if f in fields else None for f, v in zip(PROTOCOL_FIELDS, row))))
    return {key: mode(reference_pool(members)) for key, members in groups.items()}


def cell_split(cell: Cell) -> tuple[int, ...]:
    """``RunRecord.budget_split`` of the cell's runs (one configuration, so one split)."""
    return mode(r.budget_split for r in (cell.ok or cell.records))


def _final_retraining(cell: Cell) -> int:
    """Epochs of retraining after the final pruning, from which a schedule sets its peak lr and warm-up."""
    return cell_split(cell)[-1]


def _setting(cell: Cell) -> tuple[str, str, int]:
    return cell.key.track, cell.key.schedule, cell.key.budget_epochs


def _final_setting(cell: Cell) -> tuple[str, str, int, int]:
    return (*_setting(cell), _final_retraining(cell))


def r2_schedule_mismatch(audit: AuditInput, config: AuditConfig) -> list[Finding]:
    """Entries under one schedule and budget share its type, peak lr, warm-up, optimizer, weight
    decay and augmentation; tuned entries may differ in the tuned values (R10 checks the tuning).
    A schedule sets the peak lr and warm-up from the retraining after the final pruning, so those are
    compared only among entries that retrain as long after it (how the budget is split is R15's)."""
    findings = []
    rows = [(cell, row) for cell in audit.cells if (row := _protocol_row(cell)) is not None]
    recipes = _references(rows, _setting, RECIPE_FIELDS)
    rates = _references(rows, _final_setting, TUNABLE_FIELDS)
    for cell, row in rows:
        differing = _protocol_differences(row, recipes[_setting(cell)], TUNABLE_FIELDS)
        if not _tuned(cell):
            differing |= _protocol_differences(row, rates[_final_setting(cell)], RECIPE_FIELDS)
        if differing:
            track, schedule, budget = _setting(cell)
            findings.append(Finding(
                "R2", capped(cell, "fail"),
                f"{cell.label} ran {schedule}@{budget} with a different {', '.join(differing)} than the other "
                f"entries of {track}",
                (cell.label,),
                {"differences": {f: {"entry": v[0], "reference": v[1]} for f, v in differing.items()},
                 "final_retraining_epochs": _final_retraining(cell)},
                "Retrain with the track's recipe: only the pruning decision may differ between compared entries.",
            ))
    for test in audit.claims:
        if test.stated is None:
            continue
        a, b = test.stated
        row_a, row_b = _protocol_row(a), _protocol_row(b)
        skip = () if _final_retraining(a) == _final_retraining(b) else TUNABLE_FIELDS
        differing = _protocol_differences(row_a, row_b, skip) if row_a and row_b else {}
        if a.key.schedule != b.key.schedule or differing:
            findings.append(Finding(
                "R2", "fail",
                f"claim '{test.name}' compares {a.key.method} under {a.key.schedule} against "
                f"{b.key.entry} under {b.key.schedule}",
                (a.label, b.label),
                claim_evidence(test, schedule_a=a.key.schedule, schedule_b=b.key.schedule,
                                differences={f: {"a": v[0], "b": v[1]} for f, v in differing.items()}),
                "Compare both entries under the same schedule; the audit judges the claim under each in turn.",
            ))
    return findings


class Deviation(NamedTuple):
    """What a finding on one entry off its reference says (the tolerance is added to the evidence)."""

    message: str
    evidence: dict[str, Any]
    fix: str


def _deviation_findings(rule: str, cells: Sequence[Cell], value_of: Callable[[Cell], float | None],
                        group_of: Callable[[Cell], tuple], off: Callable[[float, float], float], tolerance: float,
                        describe: Callable[[Cell, float, Any, float], Deviation],
                        reference_of: Callable[[list[float]], Any] = statistics.median) -> list[Finding]:
    """One finding (a failure, a warning on a paper's cell) for each cell whose value is off its group's
    reference by more than ``tolerance``: the per-entry check that R1 and R3 share."""
    groups: dict[tuple, list[tuple[Cell, float]]] = defaultdict(list)
    for cell in cells:
        value = value_of(cell)
        if value is not None:
            groups[group_of(cell)].append((cell, value))
    findings = []
    for _, members in sorted(groups.items()):
        reference = reference_of(reference_pool(members))
        for cell, value in members:
            deviation = off(value, reference)
            if deviation > tolerance:
                said = describe(cell, value, reference, deviation)
                findings.append(Finding(rule, capped(cell, "fail"), said.message, (cell.label,),
                                        {**said.evidence, "tolerance": tolerance}, said.fix))
    return findings


def _budgeted_steps(cell: Cell) -> float | None:
    """Total training steps of an entry that trains (budget 0 has none to compare); a reported number, which
    has no phases, trained for its retraining steps."""
    return cell.mean_of("total_steps") if cell.key.budget_epochs > 0 else None


def _steps_off(cell: Cell, steps: float, reference: int, off: float) -> Deviation:
    budget = cell.key.budget_epochs
    return Deviation(f"{cell.label} trained for {steps:g} total steps where the other {budget}-epoch entries of "
                     f"{cell.key.track} used {reference} ({100 * off:.1f}% off)",
                     {"total_steps": steps, "reference_steps": reference, "relative_difference": off},
                     f"Train this entry for the track's {budget}-epoch budget in total ({reference} steps, before "
                     "and after pruning) at the track's batch size.")


def _target(cell: Cell) -> tuple[str, str, str]:
    return cell.key.track, cell.key.target, cell.family


def _macs_off(cell: Cell, macs: float, reference: float, off: float) -> Deviation:
    return Deviation(f"{cell.label} keeps {macs:,.0f} MACs where the other {cell.key.target} entries keep "
                     f"{reference:,.0f} ({100 * off:.1f}% off)",
                     {"macs_after": macs, "reference_macs_after": reference, "relative_difference": off},
                     "Prune this entry to the target's compression (equal MACs), or compare it at a target it matches.")


def _sparsity_off(cell: Cell, sparsity: float, reference: float, off: float) -> Deviation:
    return Deviation(f"{cell.label} has sparsity {100 * sparsity:.2f}% where the other {cell.key.target} entries "
                     f"have {100 * reference:.2f}% ({100 * off:.2f} pp off)",
                     {"sparsity": sparsity, "reference_sparsity": reference, "difference": off},
                     "Prune this entry to the target's sparsity, or compare it at a target it matches.")


def r3_compression_mismatch(audit: AuditInput, config: AuditConfig) -> list[Finding]:
    """Entries at one target reach the same MACs (design: >2% relative fails) and sparsity (>0.5 pp);
    structured and unstructured (masked) entries are checked within their own family, and a claim
    that compares across families, or across compressions, fails."""
    findings = _deviation_findings("R3", audit.cells, lambda c: c.mean_of("macs_after"), _target, relative,
                                   config.macs_tolerance, _macs_off)
    findings += _deviation_findings("R3", audit.cells, lambda c: c.mean_of("sparsity"), _target,
                                    lambda v, r: abs(v - r), config.sparsity_tolerance, _sparsity_off)
    for test in audit.claims:
        for a, b in test.pairs():
            macs_a, macs_b = a.mean_of("macs_after"), b.mean_of("macs_after")
            sparsity_a, sparsity_b = a.mean_of("sparsity"), b.mean_of("sparsity")
            macs_off = relative(macs_a, macs_b) if macs_a is not None and macs_b is not None else 0.0
            sparsity_off = (abs(sparsity_a - sparsity_b) if sparsity_a is not None and sparsity_b is not None
                            else 0.0)
            if a.family != b.family or macs_off > config.macs_tolerance or sparsity_off > config.sparsity_tolerance:
                findings.append(Finding(
                    "R3", "fail",
                    f"claim '{test.name}' compares {a.family} {a.key.entry} ({macs_a or 0:,.0f} MACs) with "
                    f"{b.family} {b.key.entry} ({macs_b or 0:,.0f} MACs)",
                    (a.label, b.label),
                    claim_evidence(test, family_a=a.family, family_b=b.family, macs_after_a=macs_a,
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
    reference = {key: mode(counts.elements()) for key, counts in hashes.items()}
    for (track, target), cells in sorted(by_target.items()):
        usual = mode(_dense_seeds(c) for c in cells)
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
            cell = labels.get(study.cell.without_source())
            findings.append(Finding(
                "R10", "fail", f"tuning study {study.study} selected on the {study.split!r} split",
                (cell,) if cell else (), {"study": study.study, "path": study.path, "split": study.split},
                "Retune on the validation split; a test-selected configuration overstates test accuracy.",
            ))
    for cell in audit.cells:
        splits = record_splits(cell.records) - {SELECTION_SPLIT}
        if splits:
            findings.append(Finding(
                "R10", capped(cell, "fail"), f"{cell.label} was tuned on the {', '.join(sorted(splits))} split",
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
            claim_evidence(test, **evidence) if test else evidence,
            f"Tune every compared entry with the same number of trials (or compare expected best validation "
            f"accuracy at {equal} trials, as shown).",
        ))
    return findings


def r15_phase_split(audit: AuditInput, config: AuditConfig) -> list[Finding]:
    """Entries of one table (track, target, schedule, budget and family) that split the same total budget
    differently -- epochs before pruning, rounds of retraining -- retrain differently after pruning, so a
    difference between them may come from the split, not the criterion: each entry off its table's usual
    split warns. Random twins are left out: a twin prunes once and retrains the whole budget by design."""
    tables: dict[tuple, list[tuple[Cell, tuple[int, ...]]]] = defaultdict(list)
    for cell in audit.cells:
        if cell.reproduced and cell.n and not cell.key.twin and cell.key.budget_epochs > 0:
            tables[(*cell.key.context, cell.family)].append((cell, cell_split(cell)))
    findings = []
    for _, members in sorted(tables.items()):
        usual = mode(split for _, split in members)
        alike = [cell for cell, split in members if split == usual]
        for cell, split in members:
            if split == usual:
                continue
            budget = cell.key.budget_epochs
            findings.append(Finding(
                "R15", "warn",
                f"{cell.label} {_spends(split, budget)} (split {split_name(split)}) where "
                f"{_and(c.key.entry for c in alike)} {_spends(usual, budget, len(alike) > 1)} "
                f"(split {split_name(usual)})",
                (cell.label,),
                {"split": split_name(split), "pre_pruning_epochs": split[0], "round_epochs": list(split[1:]),
                 "reference_split": split_name(usual), "reference_pre_pruning_epochs": usual[0],
                 "reference_round_epochs": list(usual[1:]), "reference_entries": [c.label for c in alike]},
                "Read these comparisons as ones of whole methods at equal total budget: their retraining after "
                "pruning differs, so a difference may come from the split, not the criterion.",
            ))
    return findings


def _spends(split: tuple[int, ...], budget: int, plural: bool = False) -> str:
    """How an entry (or several) spends its budget, in words."""
    s, its = ("", "their") if plural else ("s", "its")
    said = [f"spend{s} {split[0]} of {its} {budget} epochs before pruning"] if split[0] else []
    if len(split) > 2:
        said.append(f"prune{s} in {len(split) - 1} rounds")
    return " and ".join(said) or f"retrain{s} all {budget} after one pruning"


def _and(names: Iterable[str]) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
