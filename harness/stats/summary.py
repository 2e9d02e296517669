"""Per-cell summaries: mean, spread and a confidence interval for the mean that holds its level on
skewed accuracies (Hall's skewness-corrected t), the spread floored at the grid's rounding error."""

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

SMALL_SAMPLE_MISS_FACTORS = {3: 0.25, 4: 0.5, 5: 0.6}
"""Below six values the sample skewness is too noisy to correct the interval at the stated level
(at three values it cannot exceed 1.73 in size, where an exponential's is 2), so Hall's
interval is built at this fraction of the stated miss rate: at 95 % its tails are 0.625 % for 3
values, 1.25 % for 4 and 1.5 % for 5. They are the largest factors that keep simulated coverage at
93 % or more on every data shape of ``tests/calibration.py``; the price is width, 1.6-1.8 times the
t-interval's on normal data (``scripts/interval_alternatives.py``, docs/audit.md, Calibration)."""

HALL_UNION_FROM = max(SMALL_SAMPLE_MISS_FACTORS) + 1
"""From this many values (six: the first without a stricter level) the interval is the union of
Student's t and Hall's at the stated level: Hall's corrects the skew, and the t-interval's width
keeps a rare bad seed, which few seeds show as skew, covered (93.7 % at 10 seeds where Hall's alone
covers 91.6 %); 1.17 times the t-interval's width at 6 seeds on normal data, 1.07 at 10."""


@dataclass(frozen=True)
class Summary:
    """Mean of a sample with its spread and a confidence interval for the mean.

    ``ci_method`` is ``"hall-t"`` (Hall's skewness-corrected t-interval at the stricter level of
    ``SMALL_SAMPLE_MISS_FACTORS``, 3 to 5 values), ``"student-t+hall"`` (the union of the Student-t
    interval and Hall's, from ``HALL_UNION_FROM`` values on), ``"student-t"`` (two values, or values
    that agree to the image: no skewness to estimate),
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


def summarize(values: ArrayLike, confidence: float = 0.95, resolution: float = 0.0,
              bounds: tuple[float, float] = (-math.inf, math.inf)) -> Summary:
    """Mean, sample std (ddof=1) and a confidence interval for the mean, within ``bounds``: the range
    the values can take (accuracies: [0, 1]), which Hall's lopsided interval can otherwise leave.

    The interval is Hall's (1992) transformation of the t statistic, which removes the sample's
    skewness: accuracies near their ceiling and one-shot accuracies are skewed, and under an
    exponential's skew Student's t alone covers 88-90 % at every n below 10. Every sd is floored at
    the rounding error of ``resolution`` (one test image / sqrt(12): a floor of a whole image made the
    interval cover 99.8 % at 3 seeds on the grid). Simulated coverage of the 95 % interval is in
    docs/audit.md (Calibration).
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
    if n == 2 or constant:
        low, high, method = mean - half, mean + half, "student-t"
    elif n in SMALL_SAMPLE_MISS_FACTORS:
        strict = _t_quantile(n - 1, (1 - confidence) * SMALL_SAMPLE_MISS_FACTORS[n])
        (low, high), method = hall_interval(mean, sd, sample_skewness(sample, sd), n, strict), "hall-t"
    else:
        low, high = hall_interval(mean, sd, sample_skewness(sample, sd), n, quantile)
        low, high, method = min(low, mean - half), max(high, mean + half), "student-t+hall"
    return Summary(mean, std, n, float(max(low, bounds[0])), float(min(high, bounds[1])), method, confidence)


def _t_quantile(df: int, miss: float) -> float:
    from scipy import special

    return float(-special.stdtrit(df, miss / 2))  # scipy.stats.t.isf(miss / 2, df), bit for bit


def sample_skewness(samples: np.ndarray, sd: ArrayLike) -> np.ndarray:
    """The skewness of each sample along the last axis, the third central moment with its unbiased
    factor n / ((n - 1)(n - 2)) over the (floored) sd cubed: the estimate Hall's interval is defined with.
    Vectorised, so ``scripts/interval_alternatives.py`` simulates with the audit's own formula."""
    n = samples.shape[-1]
    centred = samples - np.mean(samples, axis=-1, keepdims=True)
    return np.sum(centred**3, axis=-1) * n / ((n - 1) * (n - 2)) / np.asarray(sd) ** 3


def hall_interval(mean: ArrayLike, sd: ArrayLike, skewness: ArrayLike, n: int, quantile: ArrayLike
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Hall's interval: the t statistic's quantiles mapped back through the inverse of
    g(w) = w + γw²/3 + γ²w³/27 + γ/(6n), monotone in w, so the interval is skewed like the data.
    Element-wise over arrays of cells.

    The inverse, 3((1 + γu)^(1/3) - 1)/γ with u = t/sqrt(n) - γ/(6n), is written as 3u/(c² + c + 1)
    with c = (1 + γu)^(1/3), exact at γ = 0 (the Student-t interval) and free of cancellation near it."""

    def centred(t):
        u = t / math.sqrt(n) - skewness / (6 * n)
        c = np.cbrt(1 + skewness * u)
        return 3 * u / (c * c + c + 1)

    return mean - sd * centred(quantile), mean - sd * centred(-np.asarray(quantile))
