"""The two-sample statistics of :mod:`harness.stats`, vectorized across many comparisons of one shape.

Auditing a large leaderboard means thousands of comparisons, and one scipy call per test costs
about a millisecond. Comparisons with the same group sizes are stacked into matrices and tested
at once with the formulas and conventions of ``harness.stats`` (Welch and paired t via the same
Student-t tail function scipy uses, exact permutation tests by enumerating every split or sign
flip, the same tie tolerance). Rows that ``harness.stats`` treats as special cases -- a group
with one value, samples without variance, permutation spaces too large to enumerate -- are handed
to ``harness.stats`` itself, so every number equals the one-at-a-time answer (the tests check it).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np

from harness import stats

MAX_NULL_ELEMENTS = 2**22
"""Rows are processed in chunks so a null-distribution matrix holds at most this many values."""

PERMUTATION_TIE_TOLERANCE = 100 * np.finfo(float).eps
"""scipy.stats.permutation_test's relative tolerance for theoretically equal statistics."""


@dataclass(frozen=True)
class TwoSampleBatch:
    """Results for ``m`` comparisons, one array entry per comparison (row)."""

    difference: np.ndarray
    std_error: np.ndarray
    df: np.ndarray
    statistic: np.ndarray
    pvalue: np.ndarray
    test: str
    permutation_pvalue: np.ndarray
    permutation_exact: np.ndarray
    n_permutations: np.ndarray
    equivalence_pvalue: np.ndarray
    hedges_g: np.ndarray
    cliffs_delta: np.ndarray
    probability_of_improvement: np.ndarray


def _constant_rows(values: np.ndarray, scale: np.ndarray | None = None) -> np.ndarray:
    """Row-wise ``harness.stats.samples.is_constant``: zero variance up to floating-point rounding,
    relative to ``scale`` (per row; default the values' own size)."""
    mean = values.mean(axis=1)
    if scale is None:
        scale = np.maximum(np.abs(mean), np.max(np.abs(values), axis=1))
    return np.max(np.abs(values - mean[:, None]), axis=1) <= stats.ROUNDING_TOLERANCE * scale


def _rows(resolution: np.ndarray | float, m: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(resolution, dtype=float), (m,)).copy()


def _two_sided_t_pvalue(statistic: np.ndarray, df: np.ndarray | float) -> np.ndarray:
    from scipy import special

    return 2 * special.stdtr(df, -np.abs(statistic))


@lru_cache(maxsize=64)
def _splits(n_a: int, n_b: int) -> tuple[np.ndarray, np.ndarray]:
    """Every split of ``n_a + n_b`` pooled values into groups of the original sizes, as index
    arrays in scipy's order (each group's indices ascending), so sums round exactly as scipy's."""
    everything = set(range(n_a + n_b))
    combos = list(itertools.combinations(range(n_a + n_b), n_a))
    rest = [sorted(everything.difference(combo)) for combo in combos]
    return np.array(combos, dtype=int), np.array(rest, dtype=int).reshape(len(combos), n_b)


@lru_cache(maxsize=64)
def _sign_flips(n: int) -> np.ndarray:
    """Every assignment of signs to ``n`` paired differences."""
    return np.array(list(itertools.product((1.0, -1.0), repeat=n)))


def _independent_null(pooled: np.ndarray, n_a: int, n_b: int) -> np.ndarray:
    in_a, in_b = _splits(n_a, n_b)
    return pooled[:, in_a].mean(axis=-1) - pooled[:, in_b].mean(axis=-1)


def _paired_null(differences: np.ndarray) -> np.ndarray:
    return (differences[:, None, :] * _sign_flips(differences.shape[1])[None]).mean(axis=-1)


def _exact_permutation_pvalues(
    data: np.ndarray, null_of: Callable[[np.ndarray], np.ndarray], n_null: int, observed: np.ndarray
) -> np.ndarray:
    """scipy's exact two-sided p-value: twice the smaller tail of the enumerated null, capped at 1."""
    pvalues = np.empty(len(data))
    chunk = max(1, MAX_NULL_ELEMENTS // (n_null * data.shape[1]))
    for start in range(0, len(data), chunk):
        null = null_of(data[start:start + chunk])
        obs = observed[start:start + chunk, None]
        gamma = np.abs(PERMUTATION_TIE_TOLERANCE * obs)
        less = np.mean(null <= obs + gamma, axis=1)
        greater = np.mean(null >= obs - gamma, axis=1)
        pvalues[start:start + chunk] = np.clip(2 * np.minimum(less, greater), 0.0, 1.0)
    return pvalues


def _effect_sizes(x: np.ndarray, y: np.ndarray, resolution: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hedges' g (pooled sd floored at the row's resolution), Cliff's delta and P(X > Y) per row, as
    ``harness.stats`` defines them."""
    n_a, n_b = x.shape[1], y.shape[1]
    greater = np.mean(x[:, :, None] > y[:, None, :], axis=(1, 2))
    equal = np.mean(x[:, :, None] == y[:, None, :], axis=(1, 2))
    improvement = greater + 0.5 * equal
    df = n_a + n_b - 2
    if df < 2:
        return np.full(len(x), math.nan), 2 * improvement - 1, improvement
    sum_of_squares = np.sum((x - x.mean(axis=1, keepdims=True)) ** 2, axis=1) + np.sum(
        (y - y.mean(axis=1, keepdims=True)) ** 2, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = np.maximum(np.sqrt(sum_of_squares / df), resolution)
        g = (x.mean(axis=1) - y.mean(axis=1)) / pooled * stats.hedges_correction(df)
    both_constant = _constant_rows(x) & _constant_rows(y) & (resolution == 0)
    for row in np.flatnonzero(both_constant):
        g[row] = stats.hedges_g(x[row], y[row])
    return g, 2 * improvement - 1, improvement


def _permutation_fallback(
    rows: np.ndarray, x: np.ndarray, y: np.ndarray, seeds: Sequence[int], n_resamples: int, paired: bool,
    result: dict[str, np.ndarray],
) -> None:
    test = stats.paired_permutation_test if paired else stats.permutation_test
    for row in rows:
        outcome = test(x[row], y[row], seed=seeds[row], n_resamples=n_resamples)
        result["permutation_pvalue"][row] = outcome.pvalue
        result["permutation_exact"][row] = bool(outcome.exact)
        result["n_permutations"][row] = outcome.n_permutations


def _empty(m: int) -> dict[str, np.ndarray]:
    nan = np.full(m, math.nan)
    return {
        "std_error": nan.copy(), "df": nan.copy(), "statistic": nan.copy(), "pvalue": nan.copy(),
        "permutation_pvalue": nan.copy(), "permutation_exact": np.zeros(m, dtype=bool),
        "n_permutations": np.zeros(m, dtype=int), "equivalence_pvalue": nan.copy(),
    }


def independent(
    x: np.ndarray, y: np.ndarray, *, margin: float, alpha: float, seeds: Sequence[int], n_resamples: int,
    resolution: np.ndarray | float = 0.0,
) -> TwoSampleBatch:
    """Welch t test, permutation test, TOST (Welch) and effect sizes for each row of ``x`` vs ``y``;
    every sd floored at the row's ``resolution`` (one test image; 0: none)."""
    m, n_a = x.shape
    n_b = y.shape[1]
    result = _empty(m)
    floor = _rows(resolution, m)
    difference = x.mean(axis=1) - y.mean(axis=1)
    if min(n_a, n_b) < 2:
        regular = np.zeros(m, dtype=bool)
    else:
        regular = ~(_constant_rows(x) & _constant_rows(y)) | (floor > 0)
        var_a = np.maximum(x.var(axis=1, ddof=1), floor**2) / n_a
        var_b = np.maximum(y.var(axis=1, ddof=1), floor**2) / n_b
        std_error = np.sqrt(var_a + var_b)
        result["std_error"] = std_error
        from scipy import special

        with np.errstate(divide="ignore", invalid="ignore"):
            df = (var_a + var_b) ** 2 / (var_a**2 / (n_a - 1) + var_b**2 / (n_b - 1))
            statistic = difference / std_error
            lower = special.stdtr(df, -(difference + margin) / std_error)
            upper = special.stdtr(df, (difference - margin) / std_error)
        result["df"] = np.where(regular, df, math.nan)
        result["statistic"] = np.where(regular, statistic, math.nan)
        result["pvalue"] = np.where(regular, _two_sided_t_pvalue(statistic, df), math.nan)
        result["equivalence_pvalue"] = np.where(regular, np.maximum(lower, upper), math.nan)
    for row in np.flatnonzero(~regular):
        welch = stats.welch_test(x[row], y[row])
        result["statistic"][row], result["pvalue"][row], result["df"][row] = welch.statistic, welch.pvalue, welch.df
        result["equivalence_pvalue"][row] = stats.tost(x[row], y[row], margin, alpha).pvalue
    n_splits = math.comb(n_a + n_b, n_a)
    if min(n_a, n_b) >= 2 and n_splits <= n_resamples:
        pooled = np.concatenate([x, y], axis=1)
        result["permutation_pvalue"] = _exact_permutation_pvalues(
            pooled, lambda chunk: _independent_null(chunk, n_a, n_b), n_splits, difference)
        result["permutation_exact"][:] = True
        result["n_permutations"][:] = n_splits
    else:
        _permutation_fallback(np.arange(m), x, y, seeds, n_resamples, False, result)
    g, delta, improvement = _effect_sizes(x, y, floor)
    return TwoSampleBatch(difference=difference, test="welch", hedges_g=g, cliffs_delta=delta,
                          probability_of_improvement=improvement, **result)


def paired(
    x: np.ndarray, y: np.ndarray, *, margin: float, alpha: float, seeds: Sequence[int], n_resamples: int,
    resolution: np.ndarray | float = 0.0,
) -> TwoSampleBatch:
    """Paired t test, sign-flip permutation test, paired TOST and effect sizes per row (rows of
    ``x`` and ``y`` aligned on shared seeds); the sd of the differences floored at ``resolution``."""
    m, n = x.shape
    result = _empty(m)
    floor = _rows(resolution, m)
    differences = x - y
    difference = x.mean(axis=1) - y.mean(axis=1)
    mean_difference = differences.mean(axis=1)
    if n < 2:
        regular = np.zeros(m, dtype=bool)
    else:
        scale = np.maximum(np.max(np.abs(x), axis=1), np.max(np.abs(y), axis=1))
        regular = ~_constant_rows(differences, scale) | (floor > 0)
        std_error = np.maximum(differences.std(axis=1, ddof=1), floor) / math.sqrt(n)
        result["std_error"] = std_error
        result["df"][:] = n - 1
        from scipy import special

        with np.errstate(divide="ignore", invalid="ignore"):
            statistic = mean_difference / std_error
            lower = special.stdtr(n - 1, -(mean_difference + margin) / std_error)
            upper = special.stdtr(n - 1, (mean_difference - margin) / std_error)
        result["statistic"] = np.where(regular, statistic, math.nan)
        result["pvalue"] = np.where(regular, _two_sided_t_pvalue(statistic, n - 1), math.nan)
        result["equivalence_pvalue"] = np.where(regular, np.maximum(lower, upper), math.nan)
    for row in np.flatnonzero(~regular):
        test = stats.paired_t_test(x[row], y[row])
        result["statistic"][row], result["pvalue"][row], result["df"][row] = test.statistic, test.pvalue, test.df
        result["std_error"][row] = 0.0 if n >= 2 else math.nan
        result["equivalence_pvalue"][row] = stats.tost(x[row], y[row], margin, alpha, paired=True).pvalue
    if 2 <= n and 2**n <= n_resamples:
        result["permutation_pvalue"] = _exact_permutation_pvalues(differences, _paired_null, 2**n, mean_difference)
        result["permutation_exact"][:] = True
        result["n_permutations"][:] = 2**n
    else:
        _permutation_fallback(np.arange(m), x, y, seeds, n_resamples, True, result)
    g, delta, improvement = _effect_sizes(x, y, floor)
    return TwoSampleBatch(difference=difference, test="paired-t", hedges_g=g, cliffs_delta=delta,
                          probability_of_improvement=improvement, **result)
