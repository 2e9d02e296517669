"""The study behind ``harness.stats.summary``'s interval rule: coverage and width of the per-cell
interval rules considered, on every data shape of ``tests/calibration.py``, at 3 to 7 and 10 seeds.

    python scripts/interval_alternatives.py [DRAWS]

Rules, each with every sd floored at the rounding error of the resolution the audit would read off
the shape (one image of 359 on the grid, ``AuditConfig.fallback_resolution`` otherwise):

- ``t``: the Student-t interval alone (what the audit used below 10 seeds before);
- ``t+hall``: its union with Hall's skewness-corrected interval (what the audit uses from
  ``HALL_UNION_FROM`` seeds);
- ``hall-strict``: Hall's interval alone at the stricter miss rates of ``SMALL_SAMPLE_MISS_FACTORS``
  (what the audit uses below ``HALL_UNION_FROM``), the tails 0.625 / 1.25 / 1.5 % at 3 / 4 / 5
  seeds, and for comparison 1.75 % at 6 and the stated 2.5 % at 7 and 10 (Hall's interval alone).

Each row prints the coverage on every shape and the median width relative to the t-interval on
normal data. The draws are vectorised here; ``tests/calibration.py 20000 coverage`` measures the
rule the audit ships through ``audit()`` itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from calibration import DATA, N_TEST, true_mean  # noqa: E402

from harness.audit import AuditConfig  # noqa: E402
from harness.stats.samples import rounding_sd  # noqa: E402
from harness.stats.summary import hall_interval, sample_skewness  # noqa: E402

GRID_SHAPES = {"grid", "grid-0.5", "binomial"}
STRICT_MISS = {3: 0.0125, 4: 0.025, 5: 0.03, 6: 0.035, 7: 0.05, 10: 0.05}


def draw(kind: str, n: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """``draws`` cells of ``n`` seeds: the shapes draw independent runs, so one long draw reshaped."""
    return np.asarray(DATA[kind](rng, n * draws)).reshape(draws, n)


def intervals(x: np.ndarray, floor: float, rule: str) -> tuple[np.ndarray, np.ndarray]:
    n = x.shape[1]
    mean, raw_sd = x.mean(axis=1), x.std(axis=1, ddof=1)
    sd = np.maximum(raw_sd, floor)
    constant = raw_sd == 0
    skew = np.where(constant, 0.0, sample_skewness(x, sd))
    quantile = stats.t.isf(0.025, n - 1)
    t_low, t_high = mean - quantile * sd / np.sqrt(n), mean + quantile * sd / np.sqrt(n)
    if rule == "t":
        return t_low, t_high
    if rule == "t+hall":
        low, high = hall_interval(mean, sd, skew, n, quantile)
        return np.minimum(low, t_low), np.maximum(high, t_high)
    strict = np.where(constant, quantile, stats.t.isf(STRICT_MISS[n] / 2, n - 1))
    return hall_interval(mean, sd, skew, n, strict)


def main() -> None:
    draws = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    fallback = rounding_sd(AuditConfig().fallback_resolution)
    print(f"{draws} cells per setting; coverage on: {', '.join(DATA)}; then the median width / t-width on normal")
    for n in (3, 4, 5, 6, 7, 10):
        for rule in ("t", "t+hall", "hall-strict"):
            rng = np.random.default_rng(n)
            row = []
            for kind in DATA:
                floor = rounding_sd(1 / N_TEST) if kind in GRID_SHAPES else fallback
                low, high = intervals(draw(kind, n, draws, rng), floor, rule)
                mean = true_mean(kind, np.random.default_rng(12345))
                row.append(f"{np.mean((low <= mean) & (mean <= high)):.3f}")
            x = draw("normal", n, draws, rng)
            low, high = intervals(x, fallback, rule)
            t_low, t_high = intervals(x, fallback, "t")
            width = np.median((high - low) / (t_high - t_low))
            print(f"n={n} {rule:<11} {' '.join(row)}  width x{width:.2f}")


if __name__ == "__main__":
    main()
