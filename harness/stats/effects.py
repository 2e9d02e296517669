"""Effect sizes that say how large a difference is, beside whether it is significant."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from harness.stats.samples import (
    as_sample,
    certain_difference,
    check_resolution,
    floored,
    is_constant,
)


def hedges_correction(df: int) -> float:
    """Hedges' (1981) exact small-sample factor J = Gamma(df/2) / (sqrt(df/2) Gamma((df-1)/2))."""
    from scipy import special

    return math.exp(special.gammaln(df / 2) - 0.5 * math.log(df / 2) - special.gammaln((df - 1) / 2))

def hedges_g(a: ArrayLike, b: ArrayLike, resolution: float = 0.0) -> float:
    """Bias-corrected standardized mean difference ``(mean(a) - mean(b)) / pooled sd * J``.

    NaN for fewer than 4 values in all: the correction J is 0 at one pooled degree of freedom
    (the uncorrected d has no finite mean there) and the pooled sd is undefined at zero. With
    zero pooled sd the difference is certain: 0.0 for equal means, +-inf otherwise -- unless the
    pooled sd is floored at a ``resolution`` (one test image).
    """
    x, y = as_sample(a, "a"), as_sample(b, "b")
    resolution = check_resolution(resolution)
    df = x.size + y.size - 2
    difference = float(np.mean(x) - np.mean(y))
    if df < 2:
        return math.nan
    if resolution == 0 and is_constant(x) and is_constant(y):
        certain = certain_difference(x, y)
        return 0.0 if certain == 0.0 else math.copysign(math.inf, certain)
    sum_of_squares = np.sum((x - np.mean(x)) ** 2) + np.sum((y - np.mean(y)) ** 2)
    pooled_sd = floored(math.sqrt(sum_of_squares / df), resolution)
    return difference / pooled_sd * hedges_correction(df)

def pairwise_improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Over all cross pairs, along the last axes (leading axes are bootstrap replicates)."""
    pairs_x, pairs_y = x[..., :, None], y[..., None, :]
    return np.mean(pairs_x > pairs_y, axis=(-2, -1)) + 0.5 * np.mean(pairs_x == pairs_y, axis=(-2, -1))

def cliffs_delta(a: ArrayLike, b: ArrayLike) -> float:
    """Cliff's delta ``P(X > Y) - P(X < Y)`` over all cross-sample pairs, in [-1, 1]."""
    x, y = as_sample(a, "a"), as_sample(b, "b")
    return float(2 * pairwise_improvement(x, y) - 1)

def probability_of_improvement(a: ArrayLike, b: ArrayLike) -> float:
    """``P(X > Y) + P(X = Y) / 2`` for X from ``a`` and Y from ``b`` (rliable's definition;
    the Mann-Whitney U statistic divided by ``len(a) * len(b)``)."""
    x, y = as_sample(a, "a"), as_sample(b, "b")
    return float(pairwise_improvement(x, y))
