"""Power of Welch's test: the smallest difference a comparison could detect, and the seeds a given
difference needs."""

from __future__ import annotations

import math

from scipy import optimize, stats

from harness.core.errors import BenchError
from harness.stats.samples import check_probability


def _check_power_inputs(alpha: float, power: float) -> None:
    check_probability(alpha, "alpha")
    check_probability(power, "power", alpha, 1.0)

def two_sample_power(difference: float, std: float, n: int, alpha: float = 0.05) -> float:
    """Power of the two-sided two-sample t test with ``n`` seeds per group and common ``std``.

    Exact: the statistic follows a noncentral t with ``2n - 2`` degrees of freedom and
    noncentrality ``difference / (std * sqrt(2 / n))``; both rejection tails count.
    """
    check_probability(alpha, "alpha")
    if n < 2:
        raise BenchError(f"a two-sample t test needs at least 2 seeds per group (got n={n})")
    if std < 0:
        raise BenchError(f"std must be non-negative (got {std})")
    if std == 0:
        return 1.0 if difference != 0 else alpha
    df = 2 * n - 2
    noncentrality = abs(difference) / std * math.sqrt(n / 2)
    critical = stats.t.isf(alpha / 2, df)
    # The lower tail P(T < -c) is written as sf(c; -noncentrality): nct.cdf returns NaN where it underflows.
    return float(stats.nct.sf(critical, df, noncentrality) + stats.nct.sf(critical, df, -noncentrality))

def minimum_detectable_difference(std: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest true difference in means the two-sided two-sample t test detects with the
    given power, for ``n`` seeds per group and common ``std``; smaller observed gaps are ties.

    Solved exactly on the noncentral t power curve (no normal approximation). ``inf`` for
    ``n < 2`` (no test is possible); 0.0 for zero ``std``.
    """
    _check_power_inputs(alpha, power)
    if std < 0:
        raise BenchError(f"std must be non-negative (got {std})")
    if n < 2:
        return math.inf
    if std == 0:
        return 0.0

    def shortfall(effect_size: float) -> float:
        return two_sample_power(effect_size, 1.0, n, alpha) - power

    upper = 1.0
    while shortfall(upper) < 0:
        upper *= 2
    effect_size = optimize.brentq(shortfall, 0.0, upper, xtol=1e-12, rtol=1e-12)
    return float(effect_size * std)

def seeds_needed(
    difference: float, std: float, alpha: float = 0.05, power: float = 0.8, max_n: int = 10_000
) -> int:
    """Smallest number of seeds per group at which the two-sided two-sample t test detects
    ``difference`` with the given power (exact noncentral-t power; at least 2)."""
    _check_power_inputs(alpha, power)
    if difference == 0:
        raise BenchError("a zero difference is never detectable; pass the smallest difference that matters")
    if std < 0:
        raise BenchError(f"std must be non-negative (got {std})")
    if max_n < 2:
        raise BenchError(f"max_n must be at least 2 (got {max_n})")
    if two_sample_power(difference, std, max_n, alpha) < power:
        raise BenchError(
            f"detecting a difference of {difference} with std {std} needs more than {max_n} seeds "
            "per group; accept a larger minimum difference or raise max_n"
        )
    low, high = 1, max_n  # n = low is too few (below the minimum or underpowered); n = high suffices
    while high - low > 1:
        middle = (low + high) // 2
        if two_sample_power(difference, std, middle, alpha) >= power:
            high = middle
        else:
            low = middle
    return high
