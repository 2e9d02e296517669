"""Two-sample significance tests: Welch's t, the exact permutation test, and their paired versions for
seeds that share a dense model."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from harness.core.errors import BenchError
from harness.stats.samples import (
    as_sample,
    certain_difference,
    check_positive_integer,
    check_resolution,
    floored,
    is_constant,
    one_constant_sample_allowed,
    seeded_rng,
)


@dataclass(frozen=True)
class TestResult:
    """Outcome of a two-sided test of equal means; ``pvalue`` is NaN where the test is undefined.

    ``df`` is the t test's degrees of freedom (NaN for permutation tests). For permutation tests
    ``exact`` says whether every distinct permutation was enumerated, and ``n_permutations`` how
    many permutations the p-value is based on.
    """

    __test__ = False  # a result type, not a pytest test class

    statistic: float
    pvalue: float
    df: float
    test: str
    exact: bool | None = None
    n_permutations: int | None = None

def _constant_samples_result(difference: float, test: str) -> TestResult:
    """Without variance the means are known exactly, so the difference is certain."""
    if difference == 0.0:
        return TestResult(0.0, 1.0, math.nan, test)
    return TestResult(math.copysign(math.inf, difference), 0.0, math.nan, test)

@dataclass(frozen=True)
class TParts:
    """What a t statistic is made of: the mean difference, its standard error and degrees of freedom."""

    difference: float
    std_error: float
    df: float


def floored_t_parts(x: np.ndarray, y: np.ndarray, paired: bool, resolution: float) -> TParts:
    """Welch's (or, ``paired``, the paired t test's) standard error with every sample's sd floored at
    ``resolution``: a spread below one test image is not measured, so it is taken to be one image.
    Needs two values per sample."""
    if paired:
        differences = x - y
        std = floored(float(np.std(differences, ddof=1)), resolution)
        return TParts(float(np.mean(differences)), std / math.sqrt(x.size), float(x.size - 1))
    var_x = floored(float(np.std(x, ddof=1)), resolution) ** 2 / x.size
    var_y = floored(float(np.std(y, ddof=1)), resolution) ** 2 / y.size
    total = var_x + var_y
    df = total**2 / (var_x**2 / (x.size - 1) + var_y**2 / (y.size - 1)) if total > 0 else math.nan
    return TParts(float(np.mean(x) - np.mean(y)), math.sqrt(total), df)


def _floored_result(parts: TParts, test: str) -> TestResult:
    from scipy import stats

    statistic = parts.difference / parts.std_error
    return TestResult(statistic, float(2 * stats.t.sf(abs(statistic), parts.df)), parts.df, test)


def welch_test(a: ArrayLike, b: ArrayLike, resolution: float = 0.0) -> TestResult:
    """Two-sided Welch t test (``scipy.stats.ttest_ind(equal_var=False)``).

    ``resolution`` is the smallest difference the measurement resolves (one test image: 1/N of
    accuracy); each sample's sd is floored at it, so runs that agree to the image are not exact.
    Undefined (NaN statistic, p-value and df) when either sample has a single value: its
    variance cannot be estimated. Without a resolution, when both samples have zero variance the
    means are exact, so the p-value is 1.0 if they are equal and 0.0 otherwise (statistic 0 or
    +-inf, df NaN).
    """
    from scipy import stats

    x, y = as_sample(a, "a"), as_sample(b, "b")
    resolution = check_resolution(resolution)
    if x.size < 2 or y.size < 2:
        return TestResult(math.nan, math.nan, math.nan, "welch")
    if resolution > 0:
        return _floored_result(floored_t_parts(x, y, False, resolution), "welch")
    if is_constant(x) and is_constant(y):
        return _constant_samples_result(certain_difference(x, y), "welch")
    with one_constant_sample_allowed():
        result = stats.ttest_ind(x, y, equal_var=False)
    return TestResult(float(result.statistic), float(result.pvalue), float(result.df), "welch")

def _mean_difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)

def _mean_paired_difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x - y, axis=axis)

def permutation_test(a: ArrayLike, b: ArrayLike, seed: int, n_resamples: int = 9999) -> TestResult:
    """Two-sided permutation test of ``mean(a) - mean(b)`` (``scipy.stats.permutation_test``).

    Exact -- every distinct split of the pooled values into groups of the original sizes -- when
    there are at most ``n_resamples`` such splits, otherwise ``n_resamples`` random ones drawn with
    ``seed`` (p-value then counts the observed split, so it is never 0); always exact when a
    group has a single value. Two-sided p is scipy's: twice the smaller one-sided p, capped at 1;
    identical constant samples give 1.0.
    """
    x, y = as_sample(a, "a"), as_sample(b, "b")
    check_positive_integer(n_resamples, "n_resamples")
    rng = seeded_rng(seed)
    if min(x.size, y.size) == 1:
        return _permutation_test_with_a_single_value(x, y)
    return _scipy_permutation_test(x, y, "independent", math.comb(x.size + y.size, x.size), n_resamples, rng)


def _scipy_permutation_test(x: np.ndarray, y: np.ndarray, permutation_type: str, n_space: int, n_resamples: int,
                            rng: np.random.Generator) -> TestResult:
    """scipy's two-sided permutation test of the mean (paired: ``samples``, sign flips) difference;
    exact when the ``n_space`` distinct permutations number at most ``n_resamples``."""
    from scipy import stats

    paired = permutation_type == "samples"
    result = stats.permutation_test(
        (x, y), _mean_paired_difference if paired else _mean_difference, permutation_type=permutation_type,
        vectorized=True, n_resamples=n_resamples, alternative="two-sided", rng=rng,
    )
    exact = n_space <= n_resamples
    return TestResult(
        float(result.statistic), float(result.pvalue), math.nan, "paired-permutation" if paired else "permutation",
        exact=exact, n_permutations=n_space if exact else n_resamples,
    )

def _permutation_test_with_a_single_value(x: np.ndarray, y: np.ndarray) -> TestResult:
    """scipy needs two values per group. With one, the N splits (each pooled value in turn
    alone) are enumerated here, always exactly, under scipy's two-sided convention."""
    pooled = np.concatenate([x, y])
    rest_means = (pooled.sum() - pooled) / (pooled.size - 1)
    null = pooled - rest_means if x.size == 1 else rest_means - pooled
    observed = null[0] if x.size == 1 else null[-1]
    tie = abs(observed) * 100 * np.finfo(float).eps
    tail = min(np.mean(null <= observed + tie), np.mean(null >= observed - tie))
    return TestResult(
        float(observed), float(min(1.0, 2 * tail)), math.nan, "permutation",
        exact=True, n_permutations=pooled.size,
    )

def as_pairs(a: ArrayLike, b: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    x, y = as_sample(a, "a"), as_sample(b, "b")
    if x.size != y.size:
        raise BenchError(
            f"paired tests need one value per shared seed in each sample (got {x.size} and {y.size}); "
            "align both samples on the same seeds or use the unpaired test"
        )
    return x, y

def paired_t_test(a: ArrayLike, b: ArrayLike, resolution: float = 0.0) -> TestResult:
    """Two-sided paired t test (``scipy.stats.ttest_rel``) for runs that share seeds.

    The sd of the differences is floored at ``resolution`` (see :func:`welch_test`). Undefined
    (NaN) for a single pair. Without a resolution, when every pair differs by the same amount (up
    to the rounding of the accuracies) the mean difference is exact: p-value 1.0 if that amount is
    0, else 0.0 (statistic 0 or +-inf).
    """
    from scipy import stats

    x, y = as_pairs(a, b)
    resolution = check_resolution(resolution)
    if x.size < 2:
        return TestResult(math.nan, math.nan, math.nan, "paired-t")
    if resolution > 0:
        return _floored_result(floored_t_parts(x, y, True, resolution), "paired-t")
    differences = x - y
    if is_constant(differences, scale=float(max(np.max(np.abs(x)), np.max(np.abs(y))))):
        return _constant_samples_result(certain_difference(x, y), "paired-t")
    result = stats.ttest_rel(x, y)
    return TestResult(float(result.statistic), float(result.pvalue), float(result.df), "paired-t")

def paired_permutation_test(a: ArrayLike, b: ArrayLike, seed: int, n_resamples: int = 9999) -> TestResult:
    """Two-sided sign-flip test of the mean paired difference, for runs that share seeds.

    Exact over all ``2**n`` sign assignments when that is at most ``n_resamples``, otherwise
    ``n_resamples`` random ones drawn with ``seed``; same p-value conventions as
    :func:`permutation_test`.
    """
    x, y = as_pairs(a, b)
    check_positive_integer(n_resamples, "n_resamples")
    rng = seeded_rng(seed)
    if x.size == 1:  # the two flips +d and -d are mirror images: nothing is ever significant
        difference = float(x[0] - y[0])
        return TestResult(difference, 1.0, math.nan, "paired-permutation", exact=True, n_permutations=2)
    return _scipy_permutation_test(x, y, "samples", 2**x.size, n_resamples, rng)
