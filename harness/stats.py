"""Statistics for auditing pruning results: intervals, tests, corrections, effect sizes,
equivalence, power, cross-track aggregation and tuning-budget curves.

Everything is a pure function of numpy arrays (one value per seed: accuracy as a fraction or a
percentage, the scale does not matter) returning a frozen dataclass or an array. scipy does the
numerics; these functions fix the conventions an audit relies on (two-sided tests, explicit
seeds for every random draw, exact computations where affordable) and give degenerate samples
(one seed, zero variance) a defined answer instead of scipy's NaN and warnings.
"""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Callable, Iterator, Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize, special, stats

from harness.errors import BenchError

BOOTSTRAP_THRESHOLD = 10
"""Samples at least this large get a BCa bootstrap interval; smaller ones a Student-t interval
(the bootstrap distribution of a handful of seeds is too coarse to trust)."""

PAIR_COMPARISONS_PER_BATCH = 2**22
"""Bootstrap replicates of P(a > b) are batched so one batch compares at most this many pairs
per task (a few MiB), whatever the number of seeds."""

ROUNDING_TOLERANCE = 10 * np.finfo(float).eps
"""Relative spread below which values count as equal: scipy's threshold for catastrophic
cancellation, where its t statistics stop being meaningful."""



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


@dataclass(frozen=True)
class AggregateEstimate:
    """A statistic aggregated over tasks (tracks) with a stratified-bootstrap interval.

    ``ci_method`` is ``"stratified-percentile-bootstrap"``, or ``"none"`` when every task has a
    single run and there is nothing to resample.
    """

    estimate: float
    ci_low: float
    ci_high: float
    ci_method: str
    confidence: float
    n_tasks: int
    n_runs: int


def _sample(values: ArrayLike, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0 or not np.all(np.isfinite(array)):
        raise BenchError(
            f"{name} must be a non-empty 1-D sequence of finite numbers (got shape {array.shape}); "
            "pass one score per seed and drop missing runs"
        )
    return array


def _tasks(scores_by_task: Sequence[ArrayLike], name: str) -> list[np.ndarray]:
    if len(scores_by_task) == 0:
        raise BenchError(f"{name} is empty; pass one array of per-seed scores for every task")
    return [_sample(scores, f"{name}[{index}]") for index, scores in enumerate(scores_by_task)]


def _rng(seed: int) -> np.random.Generator:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise BenchError(f"seed must be an integer (got {seed!r}); pass the seed explicitly")
    return np.random.default_rng(seed)


def _check_probability(value: float, name: str, low_open: float = 0.0, high_open: float = 1.0) -> None:
    if not low_open < value < high_open:
        raise BenchError(f"{name} must lie strictly between {low_open} and {high_open} (got {value})")


def _check_positive_integer(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise BenchError(f"{name} must be a positive integer (got {value!r})")


def _is_constant(values: np.ndarray) -> bool:
    """Zero variance up to floating-point rounding (0.7 - 0.45 and 0.6 - 0.35 differ by an ulp)."""
    mean = np.mean(values)
    return bool(np.max(np.abs(values - mean)) <= ROUNDING_TOLERANCE * abs(mean))


def _certain_difference(x: np.ndarray, y: np.ndarray) -> float:
    """Difference of means of zero-variance samples, 0.0 when they are equal up to rounding."""
    mean_x, mean_y = float(np.mean(x)), float(np.mean(y))
    difference = mean_x - mean_y
    return 0.0 if abs(difference) <= ROUNDING_TOLERANCE * max(abs(mean_x), abs(mean_y)) else difference


def summarize(
    values: ArrayLike, confidence: float = 0.95, seed: int = 0, n_resamples: int = 9999
) -> Summary:
    """Mean, sample std (ddof=1) and a confidence interval for the mean.

    Fewer than ``BOOTSTRAP_THRESHOLD`` values get a Student-t interval, more a BCa bootstrap
    drawn with ``seed``. When BCa is undefined (its acceleration or bias terms degenerate, e.g.
    nearly all values tied) the percentile bootstrap from the same draws is used instead.
    """
    sample = _sample(values, "values")
    _check_probability(confidence, "confidence")
    _check_positive_integer(n_resamples, "n_resamples")
    rng = _rng(seed)
    n = sample.size
    mean = float(np.mean(sample))
    if n == 1:
        return Summary(mean, 0.0, 1, mean, mean, "none", confidence)
    if _is_constant(sample):
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


@contextmanager
def _one_constant_sample_allowed() -> Iterator[None]:
    """scipy warns of catastrophic cancellation whenever a sample is constant, yet its variance
    of 0 is right and the other sample's variance carries the standard error."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Precision loss occurred", RuntimeWarning)
        yield


def _constant_samples_result(difference: float, test: str) -> TestResult:
    """Without variance the means are known exactly, so the difference is certain."""
    if difference == 0.0:
        return TestResult(0.0, 1.0, math.nan, test)
    return TestResult(math.copysign(math.inf, difference), 0.0, math.nan, test)


def welch_test(a: ArrayLike, b: ArrayLike) -> TestResult:
    """Two-sided Welch t test (``scipy.stats.ttest_ind(equal_var=False)``).

    Undefined (NaN statistic, p-value and df) when either sample has a single value: its
    variance cannot be estimated. When both samples have zero variance the means are exact,
    so the p-value is 1.0 if they are equal and 0.0 otherwise (statistic 0 or +-inf, df NaN).
    """
    x, y = _sample(a, "a"), _sample(b, "b")
    if x.size < 2 or y.size < 2:
        return TestResult(math.nan, math.nan, math.nan, "welch")
    if _is_constant(x) and _is_constant(y):
        return _constant_samples_result(_certain_difference(x, y), "welch")
    with _one_constant_sample_allowed():
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
    x, y = _sample(a, "a"), _sample(b, "b")
    _check_positive_integer(n_resamples, "n_resamples")
    rng = _rng(seed)
    if min(x.size, y.size) == 1:
        return _permutation_test_with_a_single_value(x, y)
    n_splits = math.comb(x.size + y.size, x.size)
    result = stats.permutation_test(
        (x, y), _mean_difference, permutation_type="independent", vectorized=True,
        n_resamples=n_resamples, alternative="two-sided", rng=rng,
    )
    exact = n_splits <= n_resamples
    return TestResult(
        float(result.statistic), float(result.pvalue), math.nan, "permutation",
        exact=exact, n_permutations=n_splits if exact else n_resamples,
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


def _paired(a: ArrayLike, b: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    x, y = _sample(a, "a"), _sample(b, "b")
    if x.size != y.size:
        raise BenchError(
            f"paired tests need one value per shared seed in each sample (got {x.size} and {y.size}); "
            "align both samples on the same seeds or use the unpaired test"
        )
    return x, y


def paired_t_test(a: ArrayLike, b: ArrayLike) -> TestResult:
    """Two-sided paired t test (``scipy.stats.ttest_rel``) for runs that share seeds.

    Undefined (NaN) for a single pair. When every pair differs by the same amount the mean
    difference is exact: p-value 1.0 if that amount is 0, else 0.0 (statistic 0 or +-inf).
    """
    x, y = _paired(a, b)
    if x.size < 2:
        return TestResult(math.nan, math.nan, math.nan, "paired-t")
    differences = x - y
    if _is_constant(differences):
        return _constant_samples_result(_certain_difference(x, y), "paired-t")
    result = stats.ttest_rel(x, y)
    return TestResult(float(result.statistic), float(result.pvalue), float(result.df), "paired-t")


def paired_permutation_test(a: ArrayLike, b: ArrayLike, seed: int, n_resamples: int = 9999) -> TestResult:
    """Two-sided sign-flip test of the mean paired difference, for runs that share seeds.

    Exact over all ``2**n`` sign assignments when that is at most ``n_resamples``, otherwise
    ``n_resamples`` random ones drawn with ``seed``; same p-value conventions as
    :func:`permutation_test`.
    """
    x, y = _paired(a, b)
    _check_positive_integer(n_resamples, "n_resamples")
    rng = _rng(seed)
    n_flips = 2**x.size
    if x.size == 1:  # the two flips +d and -d are mirror images: nothing is ever significant
        difference = float(x[0] - y[0])
        return TestResult(difference, 1.0, math.nan, "paired-permutation", exact=True, n_permutations=2)
    result = stats.permutation_test(
        (x, y), _mean_paired_difference, permutation_type="samples", vectorized=True,
        n_resamples=n_resamples, alternative="two-sided", rng=rng,
    )
    exact = n_flips <= n_resamples
    return TestResult(
        float(result.statistic), float(result.pvalue), math.nan, "paired-permutation",
        exact=exact, n_permutations=n_flips if exact else n_resamples,
    )


def _pvalues(pvalues: ArrayLike) -> np.ndarray:
    array = np.asarray(pvalues, dtype=float)
    if array.ndim != 1 or np.any(np.isnan(array)) or np.any((array < 0) | (array > 1)):
        raise BenchError(
            "p-values must be a 1-D sequence of numbers in [0, 1]; drop undefined (NaN) tests "
            "before correcting for multiple comparisons"
        )
    return array


def holm(pvalues: ArrayLike) -> np.ndarray:
    """Holm-Bonferroni step-down adjusted p-values (controls the family-wise error rate).

    The k-th smallest p-value is multiplied by ``m - k + 1``; a running maximum keeps the
    adjusted values in the order of the raw ones, and they are capped at 1.
    """
    p = _pvalues(pvalues)
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = p[order] * (m - np.arange(m))
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted


def benjamini_hochberg(pvalues: ArrayLike) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (controls the false discovery rate), via
    ``scipy.stats.false_discovery_control``."""
    p = _pvalues(pvalues)
    if p.size == 0:
        return p
    return np.asarray(stats.false_discovery_control(p, method="bh"), dtype=float)


def hedges_correction(df: int) -> float:
    """Hedges' (1981) exact small-sample factor J = Gamma(df/2) / (sqrt(df/2) Gamma((df-1)/2))."""
    return math.exp(special.gammaln(df / 2) - 0.5 * math.log(df / 2) - special.gammaln((df - 1) / 2))


def hedges_g(a: ArrayLike, b: ArrayLike) -> float:
    """Bias-corrected standardized mean difference ``(mean(a) - mean(b)) / pooled sd * J``.

    NaN for fewer than 4 values in all: the correction J is 0 at one pooled degree of freedom
    (the uncorrected d has no finite mean there) and the pooled sd is undefined at zero. With
    zero pooled sd the difference is certain: 0.0 for equal means, +-inf otherwise.
    """
    x, y = _sample(a, "a"), _sample(b, "b")
    df = x.size + y.size - 2
    difference = float(np.mean(x) - np.mean(y))
    if df < 2:
        return math.nan
    if _is_constant(x) and _is_constant(y):
        certain = _certain_difference(x, y)
        return 0.0 if certain == 0.0 else math.copysign(math.inf, certain)
    sum_of_squares = np.sum((x - np.mean(x)) ** 2) + np.sum((y - np.mean(y)) ** 2)
    pooled_sd = math.sqrt(sum_of_squares / df)
    return difference / pooled_sd * hedges_correction(df)


def _probability_of_improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Over all cross pairs, along the last axes (leading axes are bootstrap replicates)."""
    pairs_x, pairs_y = x[..., :, None], y[..., None, :]
    return np.mean(pairs_x > pairs_y, axis=(-2, -1)) + 0.5 * np.mean(pairs_x == pairs_y, axis=(-2, -1))


def cliffs_delta(a: ArrayLike, b: ArrayLike) -> float:
    """Cliff's delta ``P(X > Y) - P(X < Y)`` over all cross-sample pairs, in [-1, 1]."""
    x, y = _sample(a, "a"), _sample(b, "b")
    return float(2 * _probability_of_improvement(x, y) - 1)


def probability_of_improvement(a: ArrayLike, b: ArrayLike) -> float:
    """``P(X > Y) + P(X = Y) / 2`` for X from ``a`` and Y from ``b`` (rliable's definition;
    the Mann-Whitney U statistic divided by ``len(a) * len(b)``)."""
    x, y = _sample(a, "a"), _sample(b, "b")
    return float(_probability_of_improvement(x, y))


def tost(
    a: ArrayLike, b: ArrayLike, margin: float, alpha: float = 0.05, paired: bool = False
) -> EquivalenceResult:
    """Equivalence test: two one-sided t tests that ``mean(a) - mean(b)`` exceeds ``-margin``
    and falls below ``margin`` (Welch for independent samples, t on differences when paired).

    A non-significant difference test is not evidence of "no loss"; this is. Undefined (NaN
    p-values, not equivalent) when a variance cannot be estimated (fewer than two values). With
    zero standard error the difference is exact and each one-sided p-value is 0 or 1.
    """
    if not margin > 0 or not math.isfinite(margin):
        raise BenchError(
            f"margin must be a positive finite number (got {margin}); state the equivalence margin"
        )
    _check_probability(alpha, "alpha", 0.0, 0.5)
    if paired:
        x, y = _paired(a, b)
        differences = x - y
        difference = float(np.mean(differences))
        defined = differences.size >= 2
        exact = defined and _is_constant(differences)
    else:
        x, y = _sample(a, "a"), _sample(b, "b")
        difference = float(np.mean(x) - np.mean(y))
        defined = x.size >= 2 and y.size >= 2
        exact = defined and _is_constant(x) and _is_constant(y)
    if not defined:
        nan = math.nan
        return EquivalenceResult(False, nan, nan, nan, margin, difference, nan, nan, alpha)
    if exact:
        difference = _certain_difference(x, y)
        lower = 0.0 if difference > -margin else 1.0
        upper = 0.0 if difference < margin else 1.0
        low = high = difference
    else:
        if paired:
            lower_test = stats.ttest_1samp(differences, -margin, alternative="greater")
            upper_test = stats.ttest_1samp(differences, margin, alternative="less")
            interval = stats.ttest_1samp(differences, 0.0).confidence_interval(1 - 2 * alpha)
        else:
            with _one_constant_sample_allowed():
                lower_test = stats.ttest_ind(x, y - margin, equal_var=False, alternative="greater")
                upper_test = stats.ttest_ind(x, y + margin, equal_var=False, alternative="less")
                interval = stats.ttest_ind(x, y, equal_var=False).confidence_interval(1 - 2 * alpha)
        lower, upper = float(lower_test.pvalue), float(upper_test.pvalue)
        low, high = float(interval.low), float(interval.high)
    pvalue = max(lower, upper)
    return EquivalenceResult(pvalue < alpha, pvalue, lower, upper, margin, difference, low, high, alpha)


def _check_power_inputs(alpha: float, power: float) -> None:
    _check_probability(alpha, "alpha")
    _check_probability(power, "power", alpha, 1.0)


def two_sample_power(difference: float, std: float, n: int, alpha: float = 0.05) -> float:
    """Power of the two-sided two-sample t test with ``n`` seeds per group and common ``std``.

    Exact: the statistic follows a noncentral t with ``2n - 2`` degrees of freedom and
    noncentrality ``difference / (std * sqrt(2 / n))``; both rejection tails count.
    """
    _check_probability(alpha, "alpha")
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


def iqm(values: ArrayLike) -> float:
    """Interquartile mean: the mean of the middle 50% of values (rliable's robust aggregate)."""
    return float(stats.trim_mean(_sample(values, "values"), 0.25))


def _stratified_bootstrap(
    samples: list[np.ndarray],
    statistic: Callable[[list[np.ndarray]], np.ndarray],
    seed: int,
    confidence: float,
    n_resamples: int,
    batch: int | None = None,
) -> AggregateEstimate:
    """Percentile bootstrap that resamples runs within each sample independently.

    ``statistic`` maps a list of arrays (observations on the last axis) to values over the
    leading axes; ``batch`` caps how many replicates it sees at once. Samples with a single run
    cannot vary under resampling and are held fixed.
    """
    _check_probability(confidence, "confidence")
    _check_positive_integer(n_resamples, "n_resamples")
    rng = _rng(seed)
    estimate = float(statistic(samples))
    n_runs = sum(sample.size for sample in samples)
    varying = [index for index, sample in enumerate(samples) if sample.size > 1]
    if not varying:
        return AggregateEstimate(estimate, estimate, estimate, "none", confidence, len(samples), n_runs)

    def resampled_statistic(*resampled: np.ndarray, axis: int = -1) -> np.ndarray:
        batch_shape = resampled[0].shape[:-1]
        full = [np.broadcast_to(sample, batch_shape + sample.shape) for sample in samples]
        for index, sample in zip(varying, resampled):
            full[index] = sample
        return statistic(full)

    result = stats.bootstrap(
        tuple(samples[index] for index in varying), resampled_statistic, n_resamples=n_resamples,
        confidence_level=confidence, method="percentile", vectorized=True, batch=batch, rng=rng,
    )
    low, high = result.confidence_interval
    method = "stratified-percentile-bootstrap"
    return AggregateEstimate(estimate, float(low), float(high), method, confidence, len(samples), n_runs)


def _pooled_iqm(samples: list[np.ndarray]) -> np.ndarray:
    return stats.trim_mean(np.concatenate(samples, axis=-1), 0.25, axis=-1)


def aggregate_iqm(
    scores_by_task: Sequence[ArrayLike], seed: int, confidence: float = 0.95, n_resamples: int = 9999
) -> AggregateEstimate:
    """IQM of all runs pooled across tasks, with a stratified bootstrap interval (rliable).

    Scores must already be normalized to a common scale across tasks. Seeds are resampled
    within each task, so every bootstrap replicate keeps each task's number of runs.
    """
    tasks = _tasks(scores_by_task, "scores_by_task")
    return _stratified_bootstrap(tasks, _pooled_iqm, seed, confidence, n_resamples)


def aggregate_probability_of_improvement(
    a_by_task: Sequence[ArrayLike],
    b_by_task: Sequence[ArrayLike],
    seed: int,
    confidence: float = 0.95,
    n_resamples: int = 9999,
) -> AggregateEstimate:
    """Mean over tasks of ``P(a > b)`` (ties count half), with a stratified bootstrap interval
    that resamples the runs of ``a`` and of ``b`` independently within each task (rliable)."""
    a_tasks, b_tasks = _tasks(a_by_task, "a_by_task"), _tasks(b_by_task, "b_by_task")
    if len(a_tasks) != len(b_tasks):
        raise BenchError(
            f"a_by_task has {len(a_tasks)} tasks but b_by_task has {len(b_tasks)}; pass both "
            "methods' scores for the same tasks in the same order"
        )
    n_tasks = len(a_tasks)

    def mean_probability(samples: list[np.ndarray]) -> np.ndarray:
        per_task = [_probability_of_improvement(samples[t], samples[n_tasks + t]) for t in range(n_tasks)]
        return np.mean(per_task, axis=0)

    largest_pair_count = max(x.size * y.size for x, y in zip(a_tasks, b_tasks))
    batch = max(1, PAIR_COMPARISONS_PER_BATCH // largest_pair_count)
    samples = a_tasks + b_tasks
    result = _stratified_bootstrap(samples, mean_probability, seed, confidence, n_resamples, batch)
    return replace(result, n_tasks=n_tasks)


def _expected_max_weights(n_values: int, trials: np.ndarray) -> np.ndarray:
    """P(max of n draws with replacement is the i-th smallest value) = (i/N)^n - ((i-1)/N)^n."""
    cdf = np.arange(n_values + 1) / n_values
    powered = cdf[None, :] ** trials[:, None]
    return np.diff(powered, axis=1)


def expected_max_curve(values: ArrayLike, max_trials: int) -> np.ndarray:
    """Expected best validation score after 1..``max_trials`` tuning trials (Dodge et al. 2019).

    Exact under the empirical distribution of the observed trial scores (trials drawn with
    replacement), so methods tuned with different budgets can be compared at equal budgets.
    """
    ordered = np.sort(_sample(values, "values"))
    _check_positive_integer(max_trials, "max_trials")
    weights = _expected_max_weights(ordered.size, np.arange(1, max_trials + 1))
    return weights @ ordered


def expected_max(values: ArrayLike, n_trials: int) -> float:
    """Expected best validation score after ``n_trials`` tuning trials; see :func:`expected_max_curve`."""
    ordered = np.sort(_sample(values, "values"))
    _check_positive_integer(n_trials, "n_trials")
    return float(_expected_max_weights(ordered.size, np.array([n_trials]))[0] @ ordered)
