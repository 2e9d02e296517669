"""Power of the tests the audit runs: the detectable difference and the seeds a difference needs.

``harness.stats`` solves the two-sample t test; runs that share dense checkpoint and seed are
compared with the paired t test, whose power follows a noncentral t with ``n - 1`` degrees of
freedom and noncentrality ``difference / (std of differences / sqrt(n))``. Both are exact
(noncentral t, no normal approximation). Results are scaled from a unit standard deviation,
so one root-finding per sample size serves every comparison.
"""

from __future__ import annotations

import math
from functools import lru_cache

from scipy import optimize
from scipy import stats as distributions

from harness import stats
from harness.core.errors import BenchError


def paired_power(difference: float, std: float, n: int, alpha: float) -> float:
    """Power of the two-sided paired t test with ``n`` pairs whose differences have sd ``std``."""
    if n < 2:
        return math.nan
    if std == 0:
        return 1.0 if difference != 0 else alpha
    df = n - 1
    noncentrality = abs(difference) / std * math.sqrt(n)
    critical = distributions.t.isf(alpha / 2, df)
    return float(distributions.nct.sf(critical, df, noncentrality) + distributions.nct.sf(critical, df, -noncentrality))


@lru_cache(maxsize=256)
def _unit_detectable_difference(n: int, paired: bool, alpha: float, power: float) -> float:
    if not paired:
        return stats.minimum_detectable_difference(1.0, n, alpha, power)

    def shortfall(effect_size: float) -> float:
        return paired_power(effect_size, 1.0, n, alpha) - power

    upper = 1.0
    while shortfall(upper) < 0:
        upper *= 2
    return float(optimize.brentq(shortfall, 0.0, upper, xtol=1e-12, rtol=1e-12))


def minimum_detectable_difference(std: float, n: int, paired: bool, alpha: float, power: float) -> float:
    """Smallest true difference the audit's test detects with ``power``; smaller gaps are ties.

    ``std`` is the common per-group sd (independent samples, ``n`` seeds per group) or the sd of
    the paired differences (``n`` pairs). ``inf`` below two seeds, 0.0 without variance.
    """
    if n < 2 or not math.isfinite(std):
        return math.inf
    if std == 0:
        return 0.0
    return _unit_detectable_difference(n, paired, alpha, power) * std


def seeds_needed(difference: float, std: float, paired: bool, alpha: float, power: float,
                 max_n: int = 1000) -> int | None:
    """Seeds per group (or pairs) needed to detect ``difference``; None when above ``max_n``
    or when the difference is zero (never detectable)."""
    if difference == 0 or not math.isfinite(std):
        return None
    if not paired:
        try:
            return stats.seeds_needed(difference, std, alpha, power, max_n)
        except BenchError:
            return None
    if paired_power(difference, std, max_n, alpha) < power:
        return None
    low, high = 1, max_n
    while high - low > 1:
        middle = (low + high) // 2
        if paired_power(difference, std, middle, alpha) >= power:
            high = middle
        else:
            low = middle
    return high
