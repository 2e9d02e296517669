"""Equivalence (TOST): a 'no accuracy loss' claim is shown, not inferred from a non-significant test."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from harness.core.errors import BenchError
from harness.stats.samples import (
    as_sample,
    certain_difference,
    check_probability,
    check_resolution,
    is_constant,
    one_constant_sample_allowed,
)
from harness.stats.significance import as_pairs, floored_t_parts


@dataclass(frozen=True)
class EquivalenceResult:
    """Two one-sided tests (TOST) of ``-margin < mean(a) - mean(b) < margin``.

    ``pvalue`` is the larger one-sided p-value; ``equivalent`` is ``pvalue < alpha``, which holds
    exactly when the ``1 - 2 alpha`` interval ``[ci_low, ci_high]`` lies inside the margin.
    """

    equivalent: bool
    pvalue: float
    lower_pvalue: float
    upper_pvalue: float
    margin: float
    difference: float
    ci_low: float
    ci_high: float
    alpha: float

def tost(
    a: ArrayLike, b: ArrayLike, margin: float, alpha: float = 0.05, paired: bool = False, resolution: float = 0.0
) -> EquivalenceResult:
    """Equivalence test: two one-sided t tests that ``mean(a) - mean(b)`` exceeds ``-margin``
    and falls below ``margin`` (Welch for independent samples, t on differences when paired).

    A non-significant difference test is not evidence of "no loss"; this is. Undefined (NaN
    p-values, not equivalent) when a variance cannot be estimated (fewer than two values). With
    zero standard error the difference is exact and each one-sided p-value is 0 or 1 -- unless a
    ``resolution`` (one test image) floors every sd, as in :func:`harness.stats.welch_test`.
    """
    from scipy import stats

    if not margin > 0 or not math.isfinite(margin):
        raise BenchError(
            f"margin must be a positive finite number (got {margin}); state the equivalence margin"
        )
    check_probability(alpha, "alpha", 0.0, 0.5)
    resolution = check_resolution(resolution)
    if paired:
        x, y = as_pairs(a, b)
        differences = x - y
        difference = float(np.mean(differences))
        defined = differences.size >= 2
        exact = defined and is_constant(differences, scale=float(max(np.max(np.abs(x)), np.max(np.abs(y)))))
    else:
        x, y = as_sample(a, "a"), as_sample(b, "b")
        difference = float(np.mean(x) - np.mean(y))
        defined = x.size >= 2 and y.size >= 2
        exact = defined and is_constant(x) and is_constant(y)
    if not defined:
        nan = math.nan
        return EquivalenceResult(False, nan, nan, nan, margin, difference, nan, nan, alpha)
    if resolution > 0:
        parts = floored_t_parts(x, y, paired, resolution)
        lower = float(stats.t.sf((parts.difference + margin) / parts.std_error, parts.df))
        upper = float(stats.t.cdf((parts.difference - margin) / parts.std_error, parts.df))
        half = float(stats.t.isf(alpha, parts.df)) * parts.std_error
        low, high = parts.difference - half, parts.difference + half
    elif exact:
        difference = certain_difference(x, y)
        lower = 0.0 if difference > -margin else 1.0
        upper = 0.0 if difference < margin else 1.0
        low = high = difference
    else:
        if paired:
            lower_test = stats.ttest_1samp(differences, -margin, alternative="greater")
            upper_test = stats.ttest_1samp(differences, margin, alternative="less")
            interval = stats.ttest_1samp(differences, 0.0).confidence_interval(1 - 2 * alpha)
        else:
            with one_constant_sample_allowed():
                lower_test = stats.ttest_ind(x, y - margin, equal_var=False, alternative="greater")
                upper_test = stats.ttest_ind(x, y + margin, equal_var=False, alternative="less")
                interval = stats.ttest_ind(x, y, equal_var=False).confidence_interval(1 - 2 * alpha)
        lower, upper = float(lower_test.pvalue), float(upper_test.pvalue)
        low, high = float(interval.low), float(interval.high)
    pvalue = max(lower, upper)
    return EquivalenceResult(pvalue < alpha, pvalue, lower, upper, margin, difference, low, high, alpha)
