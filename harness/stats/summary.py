"""Per-cell summaries: mean, spread and a confidence interval for the mean (Student t for few seeds, BCa
bootstrap for many)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from harness.stats.samples import (
    as_sample,
    check_positive_integer,
    check_probability,
    is_constant,
    seeded_rng,
)

BOOTSTRAP_THRESHOLD = 10
"""Samples at least this large get a BCa bootstrap interval; smaller ones a Student-t interval
(the bootstrap distribution of a handful of seeds is too coarse to trust)."""

@dataclass(frozen=True)
class Summary:
    """Mean of a sample with its spread and a confidence interval for the mean.

    ``ci_method`` is ``"student-t"``, ``"bca-bootstrap"``, ``"percentile-bootstrap"`` (when BCa is
    undefined for the sample), ``"none"`` (one value: the interval is that value) or
    ``"zero-variance"`` (all values equal: the interval is that value).
    """

    mean: float
    std: float
    n: int
    ci_low: float
    ci_high: float
    ci_method: str
    confidence: float

def summarize(
    values: ArrayLike, confidence: float = 0.95, seed: int = 0, n_resamples: int = 9999
) -> Summary:
    """Mean, sample std (ddof=1) and a confidence interval for the mean.

    Fewer than ``BOOTSTRAP_THRESHOLD`` values get a Student-t interval, more a BCa bootstrap
    drawn with ``seed``. When BCa is undefined (its acceleration or bias terms degenerate, e.g.
    nearly all values tied) the percentile bootstrap from the same draws is used instead.
    """
    sample = as_sample(values, "values")
    check_probability(confidence, "confidence")
    check_positive_integer(n_resamples, "n_resamples")
    rng = seeded_rng(seed)
    n = sample.size
    mean = float(np.mean(sample))
    if n == 1:
        return Summary(mean, 0.0, 1, mean, mean, "none", confidence)
    if is_constant(sample):
        return Summary(mean, 0.0, n, mean, mean, "zero-variance", confidence)
    std = float(np.std(sample, ddof=1))
    if n < BOOTSTRAP_THRESHOLD:
        low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=std / math.sqrt(n))
        return Summary(mean, std, n, float(low), float(high), "student-t", confidence)
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        result = stats.bootstrap(
            (sample,), np.mean, n_resamples=n_resamples, confidence_level=confidence,
            method="BCa", vectorized=True, rng=rng,
        )
    low, high = result.confidence_interval
    method = "bca-bootstrap"
    if not (np.isfinite(low) and np.isfinite(high)):
        result = stats.bootstrap(
            (sample,), np.mean, n_resamples=0, confidence_level=confidence,
            method="percentile", vectorized=True, bootstrap_result=result,
        )
        low, high = result.confidence_interval
        method = "percentile-bootstrap"
    return Summary(mean, std, n, float(low), float(high), method, confidence)
