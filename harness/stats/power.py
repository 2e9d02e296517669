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

from scipy import optimize, stats

from harness.core.errors import BenchError
from harness.stats.samples import check_probability


def _check_power_inputs(alpha: float, power: float) -> None:
    check_probability(alpha, "alpha")
    check_probability(power, "power", alpha, 1.0)


def _check_std(std: float) -> None:
    if not std >= 0 or not math.isfinite(std):
        raise BenchError(f"std must be a non-negative finite number (got {std})")


def _power(noncentrality: float, df: int, alpha: float) -> float:
    critical = stats.t.isf(alpha / 2, df)
    # The lower tail P(T < -c) is written as sf(c; -noncentrality): nct.cdf returns NaN where it underflows.
    return float(stats.nct.sf(critical, df, noncentrality) + stats.nct.sf(critical, df, -noncentrality))


def two_sample_power(difference: float, std: float, n: int, alpha: float = 0.05) -> float:
    """Power of the two-sided two-sample t test with ``n`` seeds per group and common ``std``."""
    check_probability(alpha, "alpha")
    if n < 2:
        raise BenchError(f"a two-sample t test needs at least 2 seeds per group (got n={n})")
    if std < 0:
        raise BenchError(f"std must be non-negative (got {std})")
    if std == 0:
        return 1.0 if difference != 0 else alpha
    return _power(abs(difference) / std * math.sqrt(n / 2), 2 * n - 2, alpha)


def paired_power(difference: float, std: float, n: int, alpha: float = 0.05) -> float:
    """Power of the two-sided paired t test with ``n`` pairs whose differences have sd ``std``;
    NaN below two pairs (no test is possible)."""
    check_probability(alpha, "alpha")
    if n < 2:
        return math.nan
    if std == 0:
        return 1.0 if difference != 0 else alpha
    return _power(abs(difference) / std * math.sqrt(n), n - 1, alpha)


def t_test_power(difference: float, std: float, n: int, alpha: float = 0.05, paired: bool = False) -> float:
    """Power of the paired (``paired``) or two-sample t test."""
    return paired_power(difference, std, n, alpha) if paired else two_sample_power(difference, std, n, alpha)


@lru_cache(maxsize=256)
def _unit_detectable_difference(n: int, paired: bool, alpha: float, target: float) -> float:
    def shortfall(effect_size: float) -> float:
        return t_test_power(effect_size, 1.0, n, alpha, paired) - target

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

    def enough(n: int) -> bool:
        return t_test_power(difference, std, n, alpha, paired) >= power

    if not enough(max_n):
        raise BenchError(
            f"detecting a difference of {difference} with std {std} needs more than {max_n} seeds "
            "per group; accept a larger minimum difference or raise max_n"
        )
    low, high = 1, max_n  # n = low is too few (below the minimum or underpowered); n = high suffices
    while high - low > 1:
        middle = (low + high) // 2
        if enough(middle):
            high = middle
        else:
            low = middle
    return high
