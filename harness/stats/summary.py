"""Per-cell summaries: mean, spread and a confidence interval for the mean (Student t, widened to
Hall's skewness-corrected t from six seeds), the spread floored at the grid's rounding error."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from harness.stats.samples import (
    as_sample,
    check_probability,
    check_resolution,
    floored,
    is_constant,
    rounding_sd,
)

HALL_FROM = 6
"""From this many values the Student-t interval is widened to cover Hall's skewness-corrected
interval as well, which holds 94-96 % under an exponential's skew where the t-interval alone covers
88-90 %. Below it the sample skewness is too noisy to use: covering that skew at 3-5 seeds took
intervals 1.3-1.8 times the t-interval's width on every cell, skewed or not (docs/audit.md,
Calibration), and at 5 seeds the union already over-covers grid-valued cells (97.7 %)."""


@dataclass(frozen=True)
class Summary:
    """Mean of a sample with its spread and a confidence interval for the mean.

    ``ci_method`` is ``"student-t"`` (fewer than ``HALL_FROM`` values, or values that agree to the
    image: no skewness to estimate), ``"student-t+hall"`` (the union of the Student-t interval and
    Hall's skewness-corrected one, from ``HALL_FROM`` values on),
    ``"none"`` (one value: the interval is that value) or ``"zero-variance"`` (all values equal and no
    resolution given: the interval is that value). ``std`` is the observed spread; the interval uses it
    floored at the rounding error of the resolution (``rounding_sd``).
    """

    mean: float
    std: float
    n: int
    ci_low: float
    ci_high: float
    ci_method: str
    confidence: float


def summarize(values: ArrayLike, confidence: float = 0.95, resolution: float = 0.0) -> Summary:
    """Mean, sample std (ddof=1) and a confidence interval for the mean.

    The interval is Student's t, from ``HALL_FROM`` values on widened to cover Hall's (1992)
    transformation of the t statistic that removes the sample's skewness, which accuracies near their
    ceiling and one-shot accuracies have. Every sd is floored at the rounding error of ``resolution``
    (one test image / sqrt(12): a floor of a whole image made the interval cover 99.8 % at 3 seeds on
    the grid). Simulated coverage of the 95 % interval is in docs/audit.md (Calibration).
    """
    sample = as_sample(values, "values")
    check_probability(confidence, "confidence")
    resolution = check_resolution(resolution)
    n = sample.size
    mean = float(np.mean(sample))
    if n == 1:
        return Summary(mean, 0.0, 1, mean, mean, "none", confidence)
    constant = is_constant(sample)
    if constant and resolution == 0:
        return Summary(mean, 0.0, n, mean, mean, "zero-variance", confidence)
    std = 0.0 if constant else float(np.std(sample, ddof=1))
    sd = floored(std, rounding_sd(resolution))
    quantile = _t_quantile(n - 1, 1 - confidence)
    half = quantile * (sd / math.sqrt(n))
    if n < HALL_FROM or constant:
        return Summary(mean, std, n, mean - half, mean + half, "student-t", confidence)
    low, high = _hall(mean, sd, _skewness(sample, sd), n, quantile)
    return Summary(mean, std, n, min(low, mean - half), max(high, mean + half), "student-t+hall", confidence)


def _t_quantile(df: int, miss: float) -> float:
    from scipy import special

    return float(-special.stdtrit(df, miss / 2))  # scipy.stats.t.isf(miss / 2, df), bit for bit


def _skewness(sample: np.ndarray, sd: float) -> float:
    """The sample skewness with the third central moment's unbiased factor n / ((n - 1)(n - 2)),
    over the (floored) sd cubed: the estimate Hall's interval is defined with."""
    n = sample.size
    third = float(np.sum((sample - np.mean(sample)) ** 3)) * n / ((n - 1) * (n - 2))
    return third / sd**3


def _hall(mean: float, sd: float, skewness: float, n: int, quantile: float) -> tuple[float, float]:
    """Hall's interval: the t statistic's quantiles mapped back through the inverse of
    g(w) = w + γw²/3 + γ²w³/27 + γ/(6n), monotone in w, so the interval is skewed like the data.

    The inverse, 3((1 + γu)^(1/3) - 1)/γ with u = t/sqrt(n) - γ/(6n), is written as 3u/(c² + c + 1)
    with c = (1 + γu)^(1/3), exact at γ = 0 (the Student-t interval) and free of cancellation near it."""

    def centred(t: float) -> float:
        u = t / math.sqrt(n) - skewness / (6 * n)
        c = float(np.cbrt(1 + skewness * u))
        return 3 * u / (c * c + c + 1)

    return mean - sd * centred(quantile), mean - sd * centred(-quantile)
