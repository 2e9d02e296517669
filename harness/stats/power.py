"""Power of the audit's two tests -- Welch's (two-sample) t test and the paired t test -- the smallest
difference a comparison could detect, and the seeds a given difference needs.

Both are exact (noncentral t, no normal approximation). The two-sample statistic follows a noncentral
t with ``2n - 2`` degrees of freedom and noncentrality ``difference / (std * sqrt(2 / n))``; the paired
one ``n - 1`` degrees of freedom and noncentrality ``difference / (std of differences / sqrt(n))``.
Detectable differences are solved once for a unit standard deviation per sample size and scaled.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Sequence

import numpy as np

from harness.core.errors import BenchError
from harness.stats.samples import check_probability


def _check_power_inputs(alpha: float, power: float) -> None:
    check_probability(alpha, "alpha")
    check_probability(power, "power", alpha, 1.0)


def _check_std(std: float) -> None:
    if not std >= 0 or not math.isfinite(std):
        raise BenchError(f"std must be a non-negative finite number (got {std})")


def _power(noncentrality: np.ndarray, df: np.ndarray, alpha: float) -> np.ndarray:
    """Two-sided power at each noncentrality and degrees of freedom, elementwise (scipy's ufuncs give each
    element the value a scalar call would)."""
    from scipy import stats

    critical = stats.t.isf(alpha / 2, df)
    # The lower tail P(T < -c) is written as sf(c; -noncentrality): nct.cdf returns NaN where it underflows.
    return stats.nct.sf(critical, df, noncentrality) + stats.nct.sf(critical, df, -noncentrality)


def _powers(differences: np.ndarray, stds: np.ndarray, n: np.ndarray, alpha: float, paired: bool) -> np.ndarray:
    """Power of the paired or two-sample test for each difference, sd and n (n >= 2); a zero sd detects any
    non-zero difference."""
    powers = np.where(differences != 0, 1.0, alpha)
    spread = stds != 0
    d, s, n = differences[spread], stds[spread], n[spread]
    if paired:
        powers[spread] = _power(np.abs(d) / s * np.sqrt(n), n - 1, alpha)
    else:
        powers[spread] = _power(np.abs(d) / s * np.sqrt(n / 2), 2 * n - 2, alpha)
    return powers


def two_sample_power(difference: float, std: float, n: int, alpha: float = 0.05) -> float:
    """Power of the two-sided two-sample t test with ``n`` seeds per group and common ``std``."""
    check_probability(alpha, "alpha")
    if n < 2:
        raise BenchError(f"a two-sample t test needs at least 2 seeds per group (got n={n})")
    if std < 0:
        raise BenchError(f"std must be non-negative (got {std})")
    return float(_powers(np.array([difference]), np.array([std]), np.array([n]), alpha, paired=False)[0])


def paired_power(difference: float, std: float, n: int, alpha: float = 0.05) -> float:
    """Power of the two-sided paired t test with ``n`` pairs whose differences have sd ``std``;
    NaN below two pairs (no test is possible)."""
    check_probability(alpha, "alpha")
    if n < 2:
        return math.nan
    return float(_powers(np.array([difference]), np.array([std]), np.array([n]), alpha, paired=True)[0])


def t_test_power(difference: float, std: float, n: int, alpha: float = 0.05, paired: bool = False) -> float:
    """Power of the paired (``paired``) or two-sample t test."""
    return paired_power(difference, std, n, alpha) if paired else two_sample_power(difference, std, n, alpha)


@lru_cache(maxsize=256)
def _unit_detectable_difference(n: int, paired: bool, alpha: float, target: float) -> float:
    def shortfall(effect_size: float) -> float:
        return t_test_power(effect_size, 1.0, n, alpha, paired) - target

    from scipy import optimize

    upper = 1.0
    while shortfall(upper) < 0:
        upper *= 2
    return float(optimize.brentq(shortfall, 0.0, upper, xtol=1e-12, rtol=1e-12))


def minimum_detectable_difference(std: float, n: int, alpha: float = 0.05, power: float = 0.8,
                                  paired: bool = False) -> float:
    """Smallest true difference in means the two-sided t test detects with the given power; smaller
    observed gaps are ties.

    ``std`` is the common per-group sd (two-sample test, ``n`` seeds per group) or the sd of the
    paired differences (``n`` pairs). ``inf`` for ``n < 2`` or an undefined ``std`` (no test is
    possible); 0.0 for zero ``std``.
    """
    _check_power_inputs(alpha, power)
    if n < 2 or not math.isfinite(std):
        return math.inf
    if std < 0:
        raise BenchError(f"std must be non-negative (got {std})")
    if std == 0:
        return 0.0
    return _unit_detectable_difference(n, paired, alpha, power) * std


def seeds_needed(
    difference: float, std: float, alpha: float = 0.05, power: float = 0.8, max_n: int = 10_000,
    paired: bool = False,
) -> int:
    """Smallest number of seeds per group (pairs when ``paired``) at which the two-sided t test detects
    ``difference`` with the given power (exact noncentral-t power; at least 2)."""
    _check_power_inputs(alpha, power)
    if difference == 0:
        raise BenchError("a zero difference is never detectable; pass the smallest difference that matters")
    _check_std(std)
    if max_n < 2:
        raise BenchError(f"max_n must be at least 2 (got {max_n})")
    [needed] = seeds_needed_each([difference], [std], alpha, power, max_n, paired)
    if needed is None:
        raise BenchError(
            f"detecting a difference of {difference} with std {std} needs more than {max_n} seeds "
            "per group; accept a larger minimum difference or raise max_n"
        )
    return needed


def seeds_needed_each(
    differences: Sequence[float], stds: Sequence[float], alpha: float = 0.05, power: float = 0.8,
    max_n: int = 10_000, paired: bool = False,
) -> list[int | None]:
    """:func:`seeds_needed` for each (non-zero difference, finite sd) pair, None where more than ``max_n``
    seeds would be needed. One bisection for all of them: each probes the same seed counts it would alone,
    with one scipy call per step for the whole batch instead of one per pair and step."""
    _check_power_inputs(alpha, power)
    differences, stds = np.asarray(differences, dtype=float), np.asarray(stds, dtype=float)
    reachable = _powers(differences, stds, np.full(len(differences), max_n), alpha, paired) >= power
    low, high = np.ones(len(differences), dtype=np.int64), np.full(len(differences), max_n, dtype=np.int64)
    # n = low is too few (below the minimum or underpowered); n = high suffices
    searching = reachable & (high - low > 1)
    while searching.any():
        middle = (low[searching] + high[searching]) // 2
        enough = _powers(differences[searching], stds[searching], middle, alpha, paired) >= power
        high[np.flatnonzero(searching)[enough]] = middle[enough]
        low[np.flatnonzero(searching)[~enough]] = middle[~enough]
        searching = reachable & (high - low > 1)
    return [int(n) if ok else None for n, ok in zip(high, reachable)]
