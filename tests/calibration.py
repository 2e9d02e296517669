"""Calibration of the audit's statistics by simulation, through the code ``bench audit`` runs: sealed
records -> cells -> comparisons -> claims -> rules -> verdicts (``harness.audit.audit``).

Every scenario draws run records whose true difference is known, audits them and counts verdicts.
``tests/test_calibration.py`` runs small versions; ``python tests/calibration.py`` prints the full
table (2,000 replications per setting) quoted in docs/audit.md.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from audit_fixtures import record  # noqa: E402

from harness.audit import AuditConfig, Claim, audit  # noqa: E402
from harness.run.record import seal  # noqa: E402

N_TEST = 359
"""Test images of the simulated track (digits-cnn's test split): accuracies are multiples of 1/359."""
CONFIG = AuditConfig(n_resamples=999)
DENSE_ACC = {0: 341 / N_TEST, 1: 342 / N_TEST}
"""Dense checkpoints' test accuracies, on the same grid of whole test images."""


def on_grid(accuracy: np.ndarray, n_test: int = N_TEST) -> np.ndarray:
    """Accuracies as a test set of ``n_test`` images measures them: whole images, within [0, 1]."""
    return np.clip(np.round(np.asarray(accuracy) * n_test), 0, n_test) / n_test


def entry(method: str, values: Sequence[float], *, twin: bool = False, track: str = "toy",
          dense: Sequence[float] | None = None, dense_seeds: Sequence[int] | None = None) -> list:
    """Sealed records of one cell: run ``i`` has seed ``i`` on dense checkpoint ``dense_seeds[i]``."""
    seeds = dense_seeds if dense_seeds is not None else [i % 2 for i in range(len(values))]
    dense = dense if dense is not None else [DENSE_ACC[s] for s in seeds]
    return [seal(record(method=method, twin=twin, test_acc=float(value), seed=i, dense_seed=seeds[i], track=track,
                        dense_test_acc=float(dense[i])))
            for i, value in enumerate(values)]


def twin_verdicts(draw: Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]], reps: int,
                  seed: int = 0, config: AuditConfig = CONFIG) -> dict[str, float]:
    """Share of each verdict of a method against its twin (the table comparison) over ``reps`` audits."""
    rng = np.random.default_rng(seed)
    counts: dict[str, int] = {"better": 0, "worse": 0, "tie": 0, "equivalent": 0}
    for _ in range(reps):
        a, b = draw(rng)
        result = audit(entry("alpha", a) + entry("alpha", b, twin=True), config=config)
        (comparison,) = result.comparisons
        counts[comparison.verdict] += 1
    return {k: v / reps for k, v in counts.items()}


def comparison_verdicts(make_records: Callable[[np.random.Generator], list], kind: str, reps: int, seed: int = 0,
                        config: AuditConfig = CONFIG) -> dict[str, float]:
    """Share of each verdict of the one comparison of ``kind`` in audits of fresh records, with the share
    that were paired on a subset of shared runs (``partial``)."""
    rng = np.random.default_rng(seed)
    counts: dict[str, float] = {"better": 0, "worse": 0, "tie": 0, "equivalent": 0, "partial": 0}
    for _ in range(reps):
        (comparison,) = [c for c in audit(make_records(rng), config=config).comparisons if c.kind == kind]
        counts[comparison.verdict] += 1
        counts["partial"] += comparison.partial
    return {k: v / reps for k, v in counts.items()}


POWER_SD_IMAGES = 4.0
"""The sd of the per-seed differences in the power settings, in test images (well above the one-image floor)."""


def twin_pair(n: int, difference_sd: float, *, lost: int = 0, sd_images: float = POWER_SD_IMAGES,
              p: float = 0.95, n_test: int = N_TEST):
    """A method ``difference_sd`` sds of the paired differences above its twin, both sharing each seed's
    dense checkpoint effect; ``lost`` twin runs failed (the comparison pairs on the rest)."""
    sd = sd_images / n_test

    def make(rng: np.random.Generator) -> list:
        base = p + 0.004 * rng.standard_normal(n)
        a = on_grid(base + difference_sd * sd + sd / np.sqrt(2) * rng.standard_normal(n), n_test)
        b = on_grid(base + sd / np.sqrt(2) * rng.standard_normal(n), n_test)
        twin = entry("alpha", b, twin=True)
        return entry("alpha", a) + twin[lost:]
    return make


def methods_unpaired(n: int, difference_sd: float, *, sd_images: float = POWER_SD_IMAGES, p: float = 0.95,
                     n_test: int = N_TEST):
    """Two methods on different dense checkpoints (nothing to pair: Welch), beta ``difference_sd`` per-run
    sds above alpha; each has its twin."""
    sd = sd_images / n_test

    def make(rng: np.random.Generator) -> list:
        records = []
        for method, shift, dense in (("alpha", 0.0, 0), ("beta", difference_sd * sd, 1)):
            seeds = [dense] * n
            records += entry(method, on_grid(p + shift + sd * rng.standard_normal(n), n_test), dense_seeds=seeds)
            records += entry(method, on_grid(p - 0.02 + sd * rng.standard_normal(n), n_test), twin=True,
                             dense_seeds=seeds)
        return records
    return make


def twin_at_margin(n: int, margin: float, sd_images: float = 1.5, p: float = 0.95, n_test: int = N_TEST):
    """A method exactly ``margin`` below its twin (TOST's null at its edge): the share called ``equivalent``
    is the test's size."""
    sd = sd_images / n_test

    def make(rng: np.random.Generator) -> list:
        base = p + 0.004 * rng.standard_normal(n)
        a = base - margin + sd * rng.standard_normal(n)
        b = base + sd * rng.standard_normal(n)
        return entry("alpha", np.round(a, 6)) + entry("alpha", np.round(b, 6), twin=True)
    return make


def grid_aa(n: int, spread_images: float, p: float = 0.97, n_test: int = N_TEST):
    """A/A on the accuracy grid: both entries draw ``p`` plus normal noise of ``spread_images``
    test images, measured in whole images."""
    def draw(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        scale = spread_images / n_test
        return (on_grid(p + scale * rng.standard_normal(n), n_test),
                on_grid(p + scale * rng.standard_normal(n), n_test))
    return draw


def claim_rate(make_records: Callable[[np.random.Generator], list], claim: Claim, reps: int, seed: int = 0,
               config: AuditConfig = CONFIG) -> dict[str, float]:
    """Share of each claim verdict over ``reps`` audits of fresh records."""
    rng = np.random.default_rng(seed)
    counts = {"supported": 0, "not supported": 0, "inconclusive": 0}
    for _ in range(reps):
        (verdict,) = audit(make_records(rng), claims=[claim], config=config).claims
        counts[verdict.verdict] += 1
    return {k: v / reps for k, v in counts.items()}


def beats_aa(n: int, std: float = 0.004, n_test: int = N_TEST):
    """Two methods (and their twins) with the same accuracy distribution on one track."""
    def make(rng: np.random.Generator) -> list:
        records = []
        for method in ("alpha", "beta"):
            for twin in (False, True):
                records += entry(method, on_grid(0.95 - 0.02 * twin + std * rng.standard_normal(n), n_test),
                                 twin=twin)
        return records
    return make


def no_loss_at_margin(n: int, margin: float, std: float = 0.004, n_test: int = N_TEST):
    """A method that loses exactly ``margin`` against its dense checkpoints (the null of TOST's lower test)."""
    def make(rng: np.random.Generator) -> list:
        dense = np.array([DENSE_ACC[i % 2] for i in range(n)])
        values = on_grid(dense - margin + std * rng.standard_normal(n), n_test)
        twin = on_grid(dense - 0.05 + std * rng.standard_normal(n), n_test)
        return entry("alpha", values, dense=dense) + entry("alpha", twin, twin=True, dense=dense)
    return make


def cross_track_aa(tracks: int, seeds: int, std: float = 0.004):
    """Two methods with the same accuracy distribution on every track."""
    def make(rng: np.random.Generator) -> list:
        records = []
        for t in range(tracks):
            for method in ("alpha", "beta"):
                for twin in (False, True):
                    values = 0.95 - 0.02 * twin + std * rng.standard_normal(seeds)
                    records += entry(method, np.round(values, 6), twin=twin, track=f"track-{t}",
                                     dense_seeds=[i % 2 for i in range(seeds)])
        return records
    return make


DATA = {
    "normal": lambda rng, n: 0.93 + 0.004 * rng.standard_normal(n),
    "grid": lambda rng, n: on_grid(0.97 + 1.5 / N_TEST * rng.standard_normal(n)),
    "grid-0.5": lambda rng, n: on_grid(0.97 + 0.5 / N_TEST * rng.standard_normal(n)),
    "skewed": lambda rng, n: 0.995 - 0.004 * rng.gamma(1.0, size=n),
    "accuracy-skewed": lambda rng, n: 0.995 - 0.002 * rng.gamma(4.0, size=n),
    "binomial": lambda rng, n: 1 - rng.binomial(N_TEST, 0.03 * np.exp(0.3 * rng.standard_normal(n))) / N_TEST,
    "bad-seed": lambda rng, n: 0.93 + 0.004 * rng.standard_normal(n) - 0.016 * (rng.random(n) < 0.1),
    "beta": lambda rng, n: 1 - rng.beta(2.0, 150.0, size=n),
}
"""Per-run accuracies. ``skewed`` is an exponential below a ceiling (skewness -2, the stress case, as
skewed as the committed one-shot cells); ``accuracy-skewed`` a gamma of shape 4 (skewness -1), more
than the committed retrained cells (mean per-cell sample skewness -0.16 at 5 seeds, which a
population skewness of about -0.6 gives; the one-shot cells' +0.43 matches about +1.6); ``binomial`` counts test errors among 359 images at a per-seed error rate that varies
log-normally (grid-valued and skewed); ``bad-seed`` loses 4 sd on one seed in ten (skewness -1.2,
bimodal); ``beta`` is one minus a Beta(2, 150) error rate (skewness 1.4)."""
TRUE_MEAN = {"normal": 0.93, "skewed": 0.995 - 0.004, "accuracy-skewed": 0.995 - 0.008,
             "binomial": 1 - 0.03 * math.exp(0.3**2 / 2), "bad-seed": 0.93 - 0.0016, "beta": 1 - 2.0 / 152.0}
COVERAGE_SEEDS = (3, 4, 5, 6, 7, 8, 10, 15, 20, 30, 50)
"""The seed counts the coverage rows simulate: every n where the interval changes rule, and beyond."""


def true_mean(kind: str, rng: np.random.Generator) -> float:
    if kind in TRUE_MEAN:
        return TRUE_MEAN[kind]
    return float(np.mean(DATA[kind](rng, 2_000_000)))


def coverage(kind: str, n: int, reps: int, seed: int = 0, config: AuditConfig = CONFIG) -> float:
    """Share of cells whose 95 % interval (the one R11 judges published numbers against) covers the
    true mean, for ``n`` seeds of the given data."""
    rng = np.random.default_rng(seed)
    mean = true_mean(kind, np.random.default_rng(12345))
    covered = 0
    for _ in range(reps):
        result = audit(entry("alpha", DATA[kind](rng, n)), config=config)
        summary = result.cells[0].summary
        covered += summary.ci_low <= mean <= summary.ci_high
    return covered / reps


def verdicts_and_power(reps: int) -> None:
    """The comparison verdicts' A/A rates (paired, partially paired, unpaired), TOST's size at the margin
    and power at 1 and 2 sds, for n = 3, 5, 10."""
    for n in (3, 5, 10):
        for spread in (0.5, 1.5):
            rates = twin_verdicts(grid_aa(n, spread), reps)
            print(f"A/A twin on the 1/{N_TEST} grid, n={n}, spread {spread} images: "
                  f"false better {rates['better']:.4f}, false worse {rates['worse']:.4f}")
        rates = comparison_verdicts(twin_pair(n, 0.0, lost=1), "twin", reps) if n > 3 else None
        if rates:
            print(f"A/A twin, one twin run lost (paired on {n - 1}), n={n}: false better {rates['better']:.4f}, "
                  f"false worse {rates['worse']:.4f}, partial {rates['partial']:.2f}")
        rates = comparison_verdicts(methods_unpaired(n, 0.0), "methods", reps)
        print(f"A/A two methods, unpaired (Welch), n={n}: false better {rates['better']:.4f}, "
              f"false worse {rates['worse']:.4f}")
        margin = CONFIG.equivalence_margin
        rates = comparison_verdicts(twin_at_margin(n, margin), "twin", reps)
        print(f"TOST at the margin ({margin}), paired, n={n}: equivalent {rates['equivalent']:.4f}")
        for k in (1.0, 2.0):
            paired = comparison_verdicts(twin_pair(n, k), "twin", reps)
            partial = comparison_verdicts(twin_pair(n, k, lost=1), "twin", reps) if n > 3 else None
            unpaired = comparison_verdicts(methods_unpaired(n, k), "methods", reps)
            print(f"power at {k:g} sd, n={n}: paired {paired['better']:.4f}, "
                  + (f"one twin run lost {partial['better']:.4f}, " if partial else "")
                  + f"unpaired (Welch; beta above alpha: 'worse' for alpha) {unpaired['better'] + unpaired['worse']:.4f}")


def verdict_rows(reps: int) -> None:
    verdicts_and_power(reps)
    beats = Claim(name="c", method="alpha", baseline="beta", schedule="ft", budget=10)
    for n in (3, 5, 10):
        rates = claim_rate(beats_aa(n), beats, reps)
        print(f"A/A 'beats' claim, n={n}: supported {rates['supported']:.4f}")


def claim_rows(reps: int) -> None:
    for n in (3, 5, 10):
        for spread in (0.0, 0.5, 1.5):
            rates = twin_verdicts(grid_aa(n, spread), reps)
            print(f"A/A twin on the 1/{N_TEST} grid, n={n}, spread {spread} images: "
                  f"false better {rates['better']:.4f}, false worse {rates['worse']:.4f}")
    beats = Claim(name="c", method="alpha", baseline="beta", schedule="ft", budget=10)
    for n in (3, 5, 10):
        rates = claim_rate(beats_aa(n), beats, reps)
        print(f"A/A 'beats' claim, n={n}: supported {rates['supported']:.4f}")
    margin = 0.01
    no_loss = Claim(name="c", kind="no-loss", method="alpha", baseline="dense", schedule="ft", budget=10, margin=margin)
    for n in (3, 5, 10):
        rates = claim_rate(no_loss_at_margin(n, margin), no_loss, reps)
        print(f"no-loss claim at the margin ({margin}), n={n}: supported {rates['supported']:.4f}")
    cross = Claim(name="c", method="alpha", baseline="beta", track="*")
    for seeds in (1, 2, 3, 5):
        rates = claim_rate(cross_track_aa(4, seeds), cross, max(200, reps // 4))
        print(f"A/A cross-track claim, 4 tracks, {seeds} seed(s) per task: supported {rates['supported']:.4f}")


def coverage_rows(reps: int) -> None:
    for kind in DATA:
        for n in COVERAGE_SEEDS:
            print(f"coverage of the per-cell 95% interval, {kind}, n={n}: {coverage(kind, n, reps):.4f}", flush=True)


MODES = {"verdicts": (verdict_rows,), "coverage": (coverage_rows,), "all": (claim_rows, coverage_rows)}
"""``python tests/calibration.py [REPS] [MODE]``: which rows to print (``all`` leaves out the verdicts,
which take longest)."""


def main() -> None:
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    mode = sys.argv[2] if len(sys.argv) > 2 else "all"
    if mode not in MODES:
        sys.exit(f"unknown mode {mode!r}; pass one of {', '.join(MODES)}")
    started = time.time()
    print(f"replications per setting: {reps}")
    for rows in MODES[mode]:
        rows(reps)
    print(f"({time.time() - started:.0f} s)")


if __name__ == "__main__":
    main()
