"""Cells and the comparisons between them, with verdicts a reviewer can read.

A cell is every run of one entry (a method or its random twin) at one track, target, schedule
and budget, from one source. Two cells are compared with the paired t test on the runs they share
(dense checkpoint, dense seed, seed) when at least ``min_seeds`` are shared -- a method and its twin
share all of them; one failed run drops one pair, not the pairing -- else with Welch's t test on all
runs; an exact permutation test checks either, with an equivalence test (TOST), effect sizes, the
minimum detectable difference and the seeds that would detect the observed gap beside them.

Which cells are compared, and in which family, is ``harness.audit.families``. A verdict is
``better``/``worse`` when the corrected two-sided test is significant (each side at alpha / 2),
``equivalent`` when TOST shows the gap inside the margin, otherwise ``tie``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Iterable, Literal, Sequence

import numpy as np

from harness import stats
from harness.audit import vectorized
from harness.audit.config import AuditConfig
from harness.audit.reported import citation
from harness.core.errors import BenchError
from harness.core.seeding import derive_seed
from harness.run.cells import Cell, CellKey, cell_key, context, family
from harness.run.record import REPRODUCED, RunRecord
from harness.track.schedules import SCHEDULES

__all__ = [
    "REPRODUCED", "Cell", "CellKey", "Comparison", "Correction", "Verdict", "adjust", "align", "audit_key",
    "best_by_validation", "build_cells", "compare_pairs", "context", "display_order", "family", "make_cell",
    "paired_cells", "schedule_order", "verdict",
]

Verdict = Literal["better", "tie", "worse", "equivalent"]
Correction = Literal["none", "holm", "benjamini-hochberg"]
MAX_SEEDS_TO_DETECT = 1000
"""Beyond this many seeds the seeds that would detect a gap are reported as None (out of reach)."""


def audit_key(record: RunRecord) -> CellKey:
    """A record's cell; reported records are kept apart per citation, never pooled across papers."""
    key = cell_key(record)
    return replace(key, source=f"reported: {citation(record)}") if record.source == "reported" else key


def schedule_order(name: str) -> tuple[int, str]:
    """Schedules in the order of the design (none, ft, lrw, slr, clr), unknown ones after."""
    names = list(SCHEDULES)
    return (names.index(name), name) if name in names else (len(names), name)


def display_order(key: CellKey) -> tuple:
    return (key.track, key.target, key.budget_epochs, schedule_order(key.schedule), key.method, key.twin, key.twin_trains,
            key.source)


def best_by_validation(cells: Sequence[Cell]) -> Cell | None:
    """The schedule an entry does best with, chosen on validation accuracy, never on test; ties
    go to the schedule listed first in the design."""
    scored = [(cell.mean_of("val_acc"), cell) for cell in cells if cell.n]
    scored = [(score, cell) for score, cell in scored if score is not None]
    if not scored:
        return None
    return max(scored, key=lambda item: (item[0], -schedule_order(item[1].key.schedule)[0]))[1]


def _successful(record: RunRecord) -> bool:
    return record.status == "ok" and record.test_acc is not None and math.isfinite(record.test_acc)


def make_cell(key: CellKey, records: Sequence[RunRecord], config: AuditConfig, resolution: float) -> Cell:
    ok = sorted((r for r in records if _successful(r)), key=lambda r: (r.dense_hash, r.dense_seed, r.seed))
    values = tuple(float(r.test_acc) for r in ok)
    summary = stats.summarize(values, config.confidence, resolution=resolution, bounds=(0.0, 1.0)) if values else None
    return Cell(key, tuple(records), tuple(ok), values, tuple((r.dense_hash, r.dense_seed, r.seed) for r in ok),
                summary, resolution)


MIN_TEST_IMAGES = 100
"""A grid coarser than 1/100 in a track's accuracies is taken for round numbers, not for a test set."""


def track_resolutions(records: Iterable[RunRecord], config: AuditConfig) -> dict[str, float]:
    """One test image as a fraction of accuracy, per track: ``config.resolution`` when set, else read
    from the track's reproduced test accuracies and dense test accuracies (all multiples of 1/N on
    one test set), else ``config.fallback_resolution``."""
    values: dict[str, list[float]] = defaultdict(list)
    for record in records:
        if record.source == REPRODUCED and _successful(record):
            values[record.track].append(float(record.test_acc))
            if record.dense_test_acc is not None:
                values[record.track].append(float(record.dense_test_acc))
    out = {}
    for track, found in values.items():
        grid = stats.grid_resolution(found)
        usable = grid if grid is not None and grid <= 1 / MIN_TEST_IMAGES else None
        out[track] = config.resolution or usable or config.fallback_resolution
    return out


def build_cells(records: Iterable[RunRecord], config: AuditConfig) -> list[Cell]:
    """Every cell, in display order, each with its track's resolution."""
    records = list(records)
    resolutions = track_resolutions(records, config)
    grouped: dict[CellKey, list[RunRecord]] = defaultdict(list)
    for record in records:
        grouped[audit_key(record)].append(record)
    return [make_cell(key, grouped[key], config,
                      resolutions.get(key.track, config.resolution or config.fallback_resolution))
            for key in sorted(grouped, key=display_order)]


@dataclass(frozen=True)
class Comparison:
    """Cell ``a`` against cell ``b``: ``difference`` is mean(a) - mean(b) in accuracy (fraction)."""

    track: str
    a: str
    b: str
    kind: str
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    difference: float
    ci_low: float
    ci_high: float
    paired: bool
    test: str
    statistic: float
    df: float
    pvalue: float
    pvalue_adjusted: float
    correction: Correction
    permutation_pvalue: float
    permutation_exact: bool
    n_permutations: int
    equivalence_margin: float
    equivalence_pvalue: float
    noise_std: float
    minimum_detectable_difference: float
    hedges_g: float
    cliffs_delta: float
    probability_of_improvement: float
    verdict: Verdict
    n_pairs: int = 0
    """Runs paired on (dense checkpoint, dense seed, seed): all of them, the shared ones (``partial``), or 0
    (Welch on every run)."""
    partial: bool = False
    """Paired on the shared runs only: ``difference`` and the test are those of the ``n_pairs`` pairs."""
    seeds_to_detect: int | None = None
    """Seeds per entry (pairs when paired) at which the test detects the observed difference with
    ``power``; None when the difference is 0 or needs more than MAX_SEEDS_TO_DETECT."""
    family: str = ""
    """The method whose pre-declared family the comparison belongs to (cell ``a``'s label), corrected with Holm."""
    family_size: int = 1
    """Comparisons in that family."""

    @property
    def pairing(self) -> str:
        """How the runs were matched, as the report says it."""
        if not self.paired:
            return "unpaired"
        return f"paired on {self.n_pairs} of {self.n_a}/{self.n_b} runs" if self.partial else "paired"

    def permutation_can_confirm(self, alpha: float) -> bool:
        """Whether the permutation test could reach ``alpha`` at all: with few seeds its
        smallest attainable p-value (two of all splits or sign flips) is above it."""
        return self.n_permutations > 0 and 2 / self.n_permutations < alpha


def align(a: Cell, b: Cell, min_seeds: int = 3) -> tuple[tuple[float, ...], tuple[float, ...], bool, bool]:
    """The values to compare and how: ``(x, y, paired, partial)``. Reproduced cells that share every
    (dense checkpoint, dense seed, seed) pair run by run (at least 2); ones that share at least
    ``min_seeds`` of them pair on those (``partial``); otherwise every run, unpaired."""
    if a.reproduced and b.reproduced:
        if a.pairing == b.pairing and a.n >= 2:
            return a.values, b.values, True, False
        shared = set(a.pairing) & set(b.pairing)
        if len(shared) >= max(2, min_seeds):
            x = tuple(v for key, v in zip(a.pairing, a.values) if key in shared)
            y = tuple(v for key, v in zip(b.pairing, b.values) if key in shared)
            return x, y, True, True
    return a.values, b.values, False, False


def paired_cells(a: Cell, b: Cell, min_seeds: int = 3) -> bool:
    """Whether the comparison of ``a`` and ``b`` is paired (on every run or on the shared ones)."""
    return align(a, b, min_seeds)[2]


def verdict(difference: float, pvalue_adjusted: float, detectable: float, equivalence_pvalue: float,
            alpha: float) -> Verdict:
    """``better``/``worse`` from the corrected two-sided test alone (each side at ``alpha`` / 2), and
    ``equivalent`` from TOST with each of its one-sided tests at ``alpha`` / 2 too: every one-sided
    decision of the audit, in tables and claims alike, is at the same level. The detectable
    difference is reported beside it, never a second gate."""
    del detectable
    if pvalue_adjusted < alpha and difference != 0:
        return "better" if difference > 0 else "worse"
    if equivalence_pvalue < alpha / 2:
        return "equivalent"
    return "tie"


def _noise_std(x: np.ndarray, y: np.ndarray, paired: bool) -> np.ndarray:
    """The sd the detectable difference scales with: of the differences (paired) or pooled."""
    if paired:
        return (x - y).std(axis=1, ddof=1) if x.shape[1] >= 2 else np.full(len(x), math.nan)
    df = x.shape[1] + y.shape[1] - 2
    if x.shape[1] < 2 or y.shape[1] < 2:
        return np.full(len(x), math.nan)
    sum_of_squares = (x.shape[1] - 1) * x.var(axis=1, ddof=1) + (y.shape[1] - 1) * y.var(axis=1, ddof=1)
    return np.sqrt(sum_of_squares / df)


def _interval(difference: float, std_error: float, df: float, confidence: float) -> tuple[float, float]:
    if std_error == 0:
        return difference, difference
    if not (math.isfinite(std_error) and math.isfinite(df)):
        return math.nan, math.nan
    from scipy import special

    half = float(special.stdtrit(df, (1 + confidence) / 2)) * std_error
    return difference - half, difference + half


def _seeds_to_detect(differences: np.ndarray, noise: np.ndarray, paired: bool, config: AuditConfig
                     ) -> list[int | None]:
    """The seeds that would detect each observed gap: None for a zero or undefined one, or one out of reach."""
    detectable = np.isfinite(differences) & np.isfinite(noise) & (differences != 0)
    seeds: list[int | None] = [None] * len(differences)
    try:
        needed = stats.seeds_needed_each(np.abs(differences[detectable]), noise[detectable], config.alpha,
                                         config.power, max_n=MAX_SEEDS_TO_DETECT, paired=paired)
    except BenchError:
        return seeds
    for index, n in zip(np.flatnonzero(detectable), needed):
        seeds[index] = n
    return seeds


def compare_pairs(pairs: Sequence[tuple[Cell, Cell, str]], config: AuditConfig) -> list[Comparison]:
    """Compare each ``(a, b, kind)``; uncorrected (``pvalue_adjusted`` is the raw p-value)."""
    shapes: dict[tuple[bool, int, int], list[int]] = defaultdict(list)
    aligned = []
    for index, (a, b, _) in enumerate(pairs):
        if a.n == 0 or b.n == 0:
            raise ValueError(f"cannot compare {a.label} with {b.label}: a cell without successful runs")
        x, y, paired, partial = align(a, b, config.min_seeds)
        aligned.append((x, y, partial))
        shapes[(paired, len(x), len(y))].append(index)
    results: list[Comparison | None] = [None] * len(pairs)
    for (paired, n_a, n_b), indices in shapes.items():
        x = np.array([aligned[i][0] for i in indices])
        y = np.array([aligned[i][1] for i in indices])
        seeds = [derive_seed(config.seed, f"{pairs[i][0].label}|{pairs[i][1].label}") for i in indices]
        floor = np.array([max(pairs[i][0].resolution, pairs[i][1].resolution) for i in indices])
        test = vectorized.paired if paired else vectorized.independent
        batch = test(x, y, margin=config.equivalence_margin, alpha=config.claim_level, seeds=seeds,
                     n_resamples=config.n_resamples, resolution=floor)
        noise = np.maximum(_noise_std(x, y, paired), floor)
        seeds_to_detect = _seeds_to_detect(batch.difference, noise, paired, config)
        n = n_a if paired else min(n_a, n_b)
        for row, index in enumerate(indices):
            a, b, kind = pairs[index]
            difference = float(batch.difference[row])
            detectable = stats.minimum_detectable_difference(float(noise[row]), n, config.alpha, config.power,
                                                             paired=paired)
            low, high = _interval(difference, float(batch.std_error[row]), float(batch.df[row]), config.confidence)
            pvalue = float(batch.pvalue[row])
            equivalence = float(batch.equivalence_pvalue[row])
            results[index] = Comparison(
                track=a.key.track, a=a.label, b=b.label, kind=kind, n_a=a.n, n_b=b.n, mean_a=a.mean, mean_b=b.mean,
                difference=difference, ci_low=low, ci_high=high, paired=paired, test=batch.test,
                statistic=float(batch.statistic[row]), df=float(batch.df[row]), pvalue=pvalue,
                pvalue_adjusted=pvalue, correction="none",
                permutation_pvalue=float(batch.permutation_pvalue[row]),
                permutation_exact=bool(batch.permutation_exact[row]),
                n_permutations=int(batch.n_permutations[row]),
                equivalence_margin=config.equivalence_margin, equivalence_pvalue=equivalence,
                noise_std=float(noise[row]), minimum_detectable_difference=detectable,
                hedges_g=float(batch.hedges_g[row]), cliffs_delta=float(batch.cliffs_delta[row]),
                probability_of_improvement=float(batch.probability_of_improvement[row]),
                verdict=verdict(difference, pvalue, detectable, equivalence, config.alpha),
                n_pairs=n_a if paired else 0, partial=bool(aligned[index][2]),
                seeds_to_detect=seeds_to_detect[row],
                family=a.label,
            )
    return [c for c in results if c is not None]


def adjust(comparisons: Sequence[Comparison], correction: Correction, alpha: float) -> list[Comparison]:
    """Correct the family's p-values (undefined tests stay undefined) and redo the verdicts."""
    defined = [i for i, c in enumerate(comparisons) if math.isfinite(c.pvalue)]
    pvalues = np.array([comparisons[i].pvalue for i in defined])
    corrected = {"holm": stats.holm, "benjamini-hochberg": stats.benjamini_hochberg}[correction](pvalues) \
        if defined else np.array([])
    adjusted = dict(zip(defined, corrected.tolist()))
    out = []
    for index, c in enumerate(comparisons):
        p = adjusted.get(index, math.nan)
        out.append(replace(c, pvalue_adjusted=p, correction=correction, family_size=len(comparisons),
                           verdict=verdict(c.difference, p, c.minimum_detectable_difference, c.equivalence_pvalue,
                                           alpha)))
    return out
