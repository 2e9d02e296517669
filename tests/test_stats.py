"""harness.stats against scipy, brute-force enumerations, hand-worked and published values."""

import itertools
import math
import warnings

import numpy as np
import pytest
from scipy import stats

from harness.core.errors import BenchError
from harness.stats import (
    HALL_UNION_FROM,
    SMALL_SAMPLE_MISS_FACTORS,
    aggregate_iqm,
    aggregate_probability_of_improvement,
    benjamini_hochberg,
    cliffs_delta,
    expected_max,
    expected_max_curve,
    hedges_g,
    holm,
    iqm,
    minimum_detectable_difference,
    paired_permutation_test,
    paired_t_test,
    permutation_test,
    probability_of_improvement,
    seeds_needed,
    summarize,
    tost,
    two_sample_power,
    welch_test,
)

ACCURACY_A = np.array([0.912, 0.905, 0.918, 0.909, 0.915, 0.907])
ACCURACY_B = np.array([0.901, 0.897, 0.906, 0.899, 0.903])

# Lakens (2013), "Calculating and reporting effect sizes", Frontiers in Psychology 4:863, movie ratings.
LAKENS_MOVIE_1 = [9, 7, 8, 9, 8, 9, 9, 10, 9, 9]
LAKENS_MOVIE_2 = [9, 6, 7, 8, 7, 9, 8, 8, 8, 7]

# Benjamini & Hochberg (1995), JRSS-B 57:289, the 15 p-values of their worked example.
BH_1995_PVALUES = [
    0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344,
    0.0459, 0.3240, 0.4262, 0.5719, 0.6528, 0.7590, 1.0000,
]


def brute_force_two_sided(null_distribution, observed):
    """scipy's two-sided convention: twice the smaller tail, ties counted in both, capped at 1."""
    null = np.asarray(null_distribution)
    tolerance = 1e-12
    lower = np.mean(null <= observed + tolerance)
    upper = np.mean(null >= observed - tolerance)
    return min(1.0, 2 * min(lower, upper))


def brute_force_permutation_pvalue(a, b):
    pooled = np.concatenate([a, b])
    null = []
    for chosen in itertools.combinations(range(pooled.size), len(a)):
        mask = np.zeros(pooled.size, dtype=bool)
        mask[list(chosen)] = True
        null.append(pooled[mask].mean() - pooled[~mask].mean())
    return brute_force_two_sided(null, np.mean(a) - np.mean(b)), len(null)


def brute_force_sign_flip_pvalue(a, b):
    differences = np.asarray(a) - np.asarray(b)
    null = [np.mean(differences * signs) for signs in itertools.product([1, -1], repeat=differences.size)]
    return brute_force_two_sided(null, differences.mean()), len(null)


def noncentral_t_power(effect_size, n, alpha=0.05):
    df = 2 * n - 2
    noncentrality = effect_size * math.sqrt(n / 2)
    critical = stats.t.ppf(1 - alpha / 2, df)
    return stats.nct.sf(critical, df, noncentrality) + stats.nct.cdf(-critical, df, noncentrality)


# --- summarize ---------------------------------------------------------------------------------


def hall_reference(values, miss):
    """Hall's (1992) interval as Zhou & Dinh (2005) write it: W = (3/g)((1 + g(t/sqrt n - g/(6n)))^(1/3) - 1)."""
    x = np.asarray(values)
    n, mean, sd = x.size, x.mean(), np.std(x, ddof=1)
    g = n / ((n - 1) * (n - 2)) * np.sum((x - mean) ** 3) / sd**3
    q = stats.t.isf(miss / 2, n - 1)
    w = [(3 / g) * (np.cbrt(1 + g * (t / math.sqrt(n) - g / (6 * n))) - 1) for t in (q, -q)]
    return mean - sd * w[0], mean - sd * w[1]


def test_a_handful_of_seeds_gets_hall_interval_at_the_stricter_level():
    sample = ACCURACY_A[:5]
    summary = summarize(sample)
    assert summary.ci_method == "hall-t"
    assert summary.n == 5
    assert summary.mean == pytest.approx(sample.mean(), abs=1e-15)
    assert summary.std == pytest.approx(np.std(sample, ddof=1), rel=1e-12)
    low, high = hall_reference(sample, 0.05 * SMALL_SAMPLE_MISS_FACTORS[5])
    assert (summary.ci_low, summary.ci_high) == pytest.approx((low, high), rel=1e-12)


def test_a_symmetric_sample_gets_the_student_t_interval_at_the_stricter_level():
    summary = summarize([0.90, 0.91, 0.92])  # no skewness: Hall's interval is Student's
    half = stats.t.isf(0.05 * SMALL_SAMPLE_MISS_FACTORS[3] / 2, 2) * 0.01 / math.sqrt(3)
    assert (summary.ci_low, summary.ci_high) == pytest.approx((0.91 - half, 0.91 + half), rel=1e-9)


def test_from_six_seeds_the_interval_covers_both_student_t_and_hall():
    values = np.random.default_rng(7).normal(0.9, 0.01, 12)
    summary = summarize(values, confidence=0.9)
    n, mean, std = values.size, values.mean(), np.std(values, ddof=1)
    half = stats.t.isf(0.05, n - 1) * std / math.sqrt(n)
    low, high = hall_reference(values, 0.1)
    assert summary.ci_method == "student-t+hall"
    assert summary.ci_low == pytest.approx(min(mean - half, low), rel=1e-12)
    assert summary.ci_high == pytest.approx(max(mean + half, high), rel=1e-12)
    assert [summarize(values[:k]).ci_method for k in (2, 3, HALL_UNION_FROM - 1, HALL_UNION_FROM)] == [
        "student-t", "hall-t", "hall-t", "student-t+hall"]


def test_a_long_lower_tail_stretches_the_interval_downwards():
    values = np.array([0.95, 0.951, 0.949, 0.95, 0.952, 0.95, 0.93])  # one bad seed in seven
    summary = summarize(values)
    half = stats.t.isf(0.025, 6) * np.std(values, ddof=1) / math.sqrt(7)
    hall_low, hall_high = hall_reference(values, 0.05)
    assert hall_high - summary.mean < half < summary.mean - hall_low  # Hall's interval leans towards the tail
    assert (summary.ci_low, summary.ci_high) == pytest.approx((hall_low, summary.mean + half), rel=1e-12)
    mirrored = summarize(2 * values.mean() - values)
    assert (mirrored.ci_low, mirrored.ci_high) == pytest.approx(
        (2 * values.mean() - summary.ci_high, 2 * values.mean() - summary.ci_low), rel=1e-12)


def test_the_interval_stays_within_the_range_the_values_can_take():
    near_ceiling = [0.99, 0.996, 1.0]
    assert summarize(near_ceiling).ci_high > 1.0
    bounded, free = summarize(near_ceiling, bounds=(0.0, 1.0)), summarize(near_ceiling)
    assert (bounded.ci_low, bounded.ci_high) == (free.ci_low, 1.0)


def test_the_interval_is_a_pure_function_of_the_values():
    values = np.random.default_rng(0).normal(0.9, 0.01, 15)
    assert summarize(values) == summarize(values.copy())


def test_single_value_and_zero_variance_give_point_intervals():
    single = summarize([0.91])
    assert (single.mean, single.std, single.n, single.ci_low, single.ci_high) == (0.91, 0.0, 1, 0.91, 0.91)
    assert single.ci_method == "none"
    for n in (3, 12):
        constant = summarize([0.9] * n)
        assert constant.std == 0.0
        assert constant.ci_low == constant.ci_high == constant.mean == pytest.approx(0.9)
        assert constant.ci_method == "zero-variance"


def test_the_resolution_floors_the_interval_of_runs_that_agree_to_the_image():
    floored = summarize([0.9] * 3, resolution=1 / 359)
    half = stats.t.ppf(0.975, 2) * (1 / 359 / math.sqrt(12)) / math.sqrt(3)  # the sd of rounding to whole images
    assert floored.std == 0.0 and floored.ci_method == "student-t"
    assert (floored.ci_low, floored.ci_high) == pytest.approx((0.9 - half, 0.9 + half))
    ties = summarize([0.0] * 9 + [1.0])  # the largest skewness ten values can show
    assert ties.ci_low < 0.1 < ties.ci_high


@pytest.mark.parametrize("bad", [[], [0.9, float("nan")], [[0.9, 0.8]]])
def test_invalid_samples_are_user_errors(bad):
    with pytest.raises(BenchError, match="one score per seed"):
        summarize(bad)


def test_seed_must_be_explicit_integer():
    with pytest.raises(BenchError, match="seed"):
        permutation_test(ACCURACY_A, ACCURACY_B, seed=None)


# --- two-sample tests --------------------------------------------------------------------------


def test_welch_matches_scipy_and_satterthwaite_df():
    result = welch_test(ACCURACY_A, ACCURACY_B)
    reference = stats.ttest_ind(ACCURACY_A, ACCURACY_B, equal_var=False)
    va, vb = np.var(ACCURACY_A, ddof=1) / ACCURACY_A.size, np.var(ACCURACY_B, ddof=1) / ACCURACY_B.size
    satterthwaite = (va + vb) ** 2 / (va**2 / (ACCURACY_A.size - 1) + vb**2 / (ACCURACY_B.size - 1))
    assert result.test == "welch"
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-12)
    assert result.pvalue == pytest.approx(reference.pvalue, rel=1e-12)
    assert result.df == pytest.approx(satterthwaite, rel=1e-12)


def test_welch_degenerate_samples_are_defined():
    equal = welch_test([0.9, 0.9, 0.9], [0.9, 0.9])
    assert (equal.statistic, equal.pvalue) == (0.0, 1.0)
    apart = welch_test([0.8, 0.8, 0.8], [0.9, 0.9])
    assert (apart.statistic, apart.pvalue) == (-math.inf, 0.0)
    one_seed = welch_test([0.9], [0.8, 0.85])
    assert math.isnan(one_seed.pvalue) and math.isnan(one_seed.statistic)


def test_one_constant_sample_is_an_ordinary_welch_test_without_warnings():
    constant, varied = [0.9, 0.9, 0.9], [0.8, 0.85, 0.9]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = welch_test(constant, varied)
        equivalence = tost(constant, varied, margin=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's precision-loss warning for the constant sample
        reference = stats.ttest_ind(constant, varied, equal_var=False)
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-12)
    assert result.pvalue == pytest.approx(reference.pvalue, rel=1e-12)
    assert math.isfinite(equivalence.pvalue)


@pytest.mark.parametrize(
    "a, b",
    [
        ([0.91, 0.93, 0.92], [0.89, 0.90, 0.92, 0.88]),
        ([3, 1, 4, 1], [5, 9, 2, 6, 5]),
        ([1, 2, 2], [2, 2, 3]),
        ([0.5], [0.9, 0.91, 0.92, 0.93]),
        ([0.91, 0.92, 0.95], [0.93]),
    ],
)
def test_exact_permutation_pvalue_equals_brute_force(a, b):
    expected, n_splits = brute_force_permutation_pvalue(np.array(a, float), np.array(b, float))
    result = permutation_test(a, b, seed=0)
    assert result.exact is True
    assert result.n_permutations == n_splits == math.comb(len(a) + len(b), len(a))
    assert result.statistic == pytest.approx(np.mean(a) - np.mean(b))
    assert result.pvalue == pytest.approx(expected, abs=1e-12)


def test_randomized_permutation_when_splits_exceed_resamples():
    a, b = [0.91, 0.93, 0.92, 0.95, 0.90], [0.89, 0.90, 0.92, 0.88, 0.87]
    exact_p, n_splits = brute_force_permutation_pvalue(np.array(a), np.array(b))
    result = permutation_test(a, b, seed=5, n_resamples=n_splits - 2)
    assert result.exact is False and result.n_permutations == n_splits - 2
    assert result.pvalue == pytest.approx(exact_p, abs=0.05)
    assert permutation_test(a, b, seed=5, n_resamples=n_splits - 2) == result
    separated = permutation_test(np.arange(10.0), np.arange(10.0) + 100, seed=1, n_resamples=99)
    assert separated.pvalue == pytest.approx(2 / 100)  # the observed split always counts: never 0


def test_permutation_of_identical_constant_samples_has_pvalue_one():
    result = permutation_test([0.9, 0.9, 0.9], [0.9, 0.9], seed=0)
    assert (result.statistic, result.pvalue) == (0.0, 1.0)
    assert permutation_test([0.9], [0.8], seed=0).pvalue == 1.0
    assert paired_permutation_test([0.9], [0.8], seed=0).pvalue == 1.0


# --- paired tests ------------------------------------------------------------------------------


def test_paired_t_matches_scipy_ttest_rel():
    a, b = ACCURACY_A[:5], ACCURACY_B
    result = paired_t_test(a, b)
    reference = stats.ttest_rel(a, b)
    assert result.test == "paired-t"
    assert (result.statistic, result.pvalue, result.df) == pytest.approx(
        (reference.statistic, reference.pvalue, reference.df), rel=1e-12
    )


def test_paired_t_degenerate_differences():
    assert paired_t_test([0.9, 0.8, 0.7], [0.9, 0.8, 0.7]).pvalue == 1.0
    shifted = paired_t_test([0.5, 0.6, 0.7], [0.25, 0.35, 0.45])  # differences 0.25 up to an ulp
    assert (shifted.statistic, shifted.pvalue) == (math.inf, 0.0)
    assert welch_test([0.1] * 3, [0.1] * 5).pvalue == 1.0  # means differ by an ulp
    assert math.isnan(paired_t_test([0.9], [0.8]).pvalue)


@pytest.mark.parametrize(
    "a, b", [([0.91, 0.93, 0.92, 0.95], [0.90, 0.90, 0.93, 0.91]), ([1, 2, 3, 4, 5, 6], [1, 3, 2, 2, 4, 7])]
)
def test_exact_sign_flip_pvalue_equals_brute_force(a, b):
    expected, n_flips = brute_force_sign_flip_pvalue(a, b)
    result = paired_permutation_test(a, b, seed=0)
    assert result.exact is True and result.n_permutations == n_flips == 2 ** len(a)
    assert result.pvalue == pytest.approx(expected, abs=1e-12)


def test_paired_tests_need_equal_lengths():
    with pytest.raises(BenchError, match="same seeds"):
        paired_t_test([0.9, 0.8], [0.9, 0.8, 0.7])
    large = paired_permutation_test(np.arange(20.0), np.arange(20.0) * 0.9, seed=2, n_resamples=500)
    assert large.exact is False and large.n_permutations == 500


# --- multiple comparisons ----------------------------------------------------------------------


def test_holm_hand_worked():
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> raised to 0.06 by monotonicity
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.2, 0.5, 0.9]) == pytest.approx([0.6, 1.0, 1.0])
    assert holm([]).size == 0


def test_benjamini_hochberg_hand_worked_and_published():
    # sorted p*m/rank: 0.02, 0.02, 0.04, 0.04 (step-up minimum leaves them unchanged)
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert np.sum(benjamini_hochberg(BH_1995_PVALUES) <= 0.05) == 4  # BH 1995: four discoveries at q=0.05
    assert np.sum(holm(BH_1995_PVALUES) <= 0.05) == 3  # Bonferroni step-down rejects three there


def test_corrections_reject_nan_pvalues():
    with pytest.raises(BenchError, match="NaN"):
        holm([0.01, float("nan")])
    with pytest.raises(BenchError, match="NaN"):
        benjamini_hochberg([0.01, 1.5])


# --- effect sizes ------------------------------------------------------------------------------


def test_hedges_g_on_lakens_example():
    # means 8.7 and 7.7, sums of squares 6.1 and 8.1 over 18 df: Cohen's d_s = 1 / sqrt(14.2 / 18)
    cohens_d = 1 / math.sqrt(14.2 / 18)
    exact_correction = math.gamma(9) / (math.sqrt(9) * math.gamma(8.5))
    g = hedges_g(LAKENS_MOVIE_1, LAKENS_MOVIE_2)
    assert g == pytest.approx(cohens_d * exact_correction, rel=1e-12)
    assert (round(cohens_d, 2), round(g, 2)) == (1.13, 1.08)  # the published d_s and g_s
    assert exact_correction == pytest.approx(1 - 3 / (4 * 18 - 1), abs=2e-4)  # Hedges' approximation
    assert hedges_g(LAKENS_MOVIE_2, LAKENS_MOVIE_1) == pytest.approx(-g)


def test_hedges_g_degenerate():
    assert hedges_g([0.9, 0.9], [0.9, 0.9]) == 0.0
    assert hedges_g([0.9, 0.9], [0.8, 0.8]) == math.inf
    assert math.isnan(hedges_g([0.9], [0.8, 0.7]))


def test_cliffs_delta_and_probability_of_improvement_hand_worked():
    # a vs b over 12 pairs: 1 greater (3>2), 2 ties (2=2, 3=3), 9 less
    a, b = [1, 2, 3], [2, 3, 4, 5]
    assert cliffs_delta(a, b) == pytest.approx(-8 / 12)
    assert probability_of_improvement(a, b) == pytest.approx((1 + 0.5 * 2) / 12)
    assert cliffs_delta(LAKENS_MOVIE_1, LAKENS_MOVIE_1) == 0.0
    assert probability_of_improvement([2, 3], [0, 1]) == 1.0


def test_probability_of_improvement_is_normalized_mann_whitney_u():
    rng = np.random.default_rng(4)
    a, b = rng.integers(0, 5, 9), rng.integers(0, 5, 7)  # plenty of ties
    u = stats.mannwhitneyu(a, b).statistic
    assert probability_of_improvement(a, b) == pytest.approx(u / (a.size * b.size))
    assert cliffs_delta(a, b) == pytest.approx(2 * u / (a.size * b.size) - 1)


# --- equivalence -------------------------------------------------------------------------------


def test_tost_one_sided_pvalues_match_welch_by_hand():
    a, b, margin = ACCURACY_A, ACCURACY_B + 0.008, 0.01
    result = tost(a, b, margin)
    va, vb = np.var(a, ddof=1) / a.size, np.var(b, ddof=1) / b.size
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    difference = a.mean() - b.mean()
    assert result.difference == pytest.approx(difference)
    assert result.lower_pvalue == pytest.approx(stats.t.sf((difference + margin) / se, df), rel=1e-9)
    assert result.upper_pvalue == pytest.approx(stats.t.cdf((difference - margin) / se, df), rel=1e-9)
    half_width = stats.t.ppf(0.95, df) * se
    assert result.ci_low == pytest.approx(difference - half_width)
    assert result.ci_high == pytest.approx(difference + half_width)


def test_tost_separates_equivalent_from_different_samples():
    rng = np.random.default_rng(9)
    a, b = rng.normal(0.90, 0.002, 8), rng.normal(0.90, 0.002, 8)
    same = tost(a, b, margin=0.01)
    assert same.equivalent and same.pvalue < 0.05
    assert -0.01 < same.ci_low < same.ci_high < 0.01
    different = tost(a, b - 0.03, margin=0.01)
    assert not different.equivalent and different.pvalue > 0.5
    assert different.ci_low > 0.01


def test_tost_decision_equals_interval_inside_margin():
    rng = np.random.default_rng(2)
    for _ in range(30):
        a, b = rng.normal(0.9, 0.01, 5), rng.normal(0.9, 0.01, 6)
        result = tost(a, b, margin=0.012, alpha=0.05)
        assert result.equivalent == (-0.012 < result.ci_low and result.ci_high < 0.012)


def test_paired_tost_uses_t_on_differences():
    a, b = ACCURACY_A[:5], ACCURACY_B
    result = tost(a, b, margin=0.02, paired=True)
    differences = a - b
    lower = stats.ttest_1samp(differences, -0.02, alternative="greater").pvalue
    upper = stats.ttest_1samp(differences, 0.02, alternative="less").pvalue
    assert (result.lower_pvalue, result.upper_pvalue) == pytest.approx((lower, upper), rel=1e-12)
    assert result.pvalue == max(result.lower_pvalue, result.upper_pvalue)


def test_tost_degenerate_inputs():
    exact = tost([0.9, 0.9], [0.905, 0.905], margin=0.01)
    assert exact.equivalent and exact.pvalue == 0.0 and exact.ci_low == exact.ci_high
    assert not tost([0.9, 0.9], [0.95, 0.95], margin=0.01).equivalent
    undefined = tost([0.9], [0.9, 0.91], margin=0.01)
    assert not undefined.equivalent and math.isnan(undefined.pvalue)
    with pytest.raises(BenchError, match="margin"):
        tost(ACCURACY_A, ACCURACY_B, margin=0.0)


# --- power -------------------------------------------------------------------------------------


@pytest.mark.parametrize("effect_size, n_per_group", [(0.5, 64), (0.8, 26), (0.2, 394)])
def test_seeds_needed_matches_published_sample_sizes(effect_size, n_per_group):
    # Cohen (1988) / G*Power, two-tailed alpha=0.05, power 0.8
    assert seeds_needed(effect_size * 0.01, 0.01) == n_per_group


@pytest.mark.parametrize("n", [2, 3, 5, 10, 40])
def test_minimum_detectable_difference_round_trips_through_seeds_needed(n):
    std = 0.004
    mdd = minimum_detectable_difference(std, n)
    assert noncentral_t_power(mdd / std, n) == pytest.approx(0.8, abs=1e-9)
    needed = seeds_needed(mdd * (1 + 1e-6), std)
    assert needed == n
    assert noncentral_t_power(mdd / std, needed) >= 0.8 - 1e-9
    if needed > 2:
        assert noncentral_t_power(mdd / std, needed - 1) < 0.8
    assert minimum_detectable_difference(2 * std, n) == pytest.approx(2 * mdd)


def test_seeds_needed_is_the_smallest_sufficient_n():
    difference, std = 0.003, 0.005
    needed = seeds_needed(difference, std, alpha=0.01, power=0.9)
    assert noncentral_t_power(difference / std, needed, alpha=0.01) >= 0.9
    assert noncentral_t_power(difference / std, needed - 1, alpha=0.01) < 0.9
    assert two_sample_power(difference, std, needed, alpha=0.01) == pytest.approx(
        noncentral_t_power(difference / std, needed, alpha=0.01)
    )


def test_power_edge_cases():
    assert minimum_detectable_difference(0.01, 1) == math.inf
    assert minimum_detectable_difference(0.0, 5) == 0.0
    assert seeds_needed(0.01, 0.0) == 2
    assert math.isfinite(two_sample_power(0.5, 1.0, 5000))  # scipy's nct.cdf underflows to NaN here
    with pytest.raises(BenchError, match="max_n"):
        seeds_needed(0.0001, 0.01, max_n=100)
    with pytest.raises(BenchError, match="zero difference"):
        seeds_needed(0.0, 0.01)


# --- aggregation across tracks -----------------------------------------------------------------


def test_iqm_of_one_to_eight():
    assert iqm(np.arange(1, 9)) == 4.5  # mean of 3, 4, 5, 6


def test_aggregate_iqm_point_is_pooled_iqm_and_interval_is_seeded():
    rng = np.random.default_rng(3)
    tasks = [rng.normal(0.8, 0.05, 5), rng.normal(0.6, 0.05, 8), rng.normal(0.7, 0.05, 4)]
    result = aggregate_iqm(tasks, seed=0, n_resamples=2000)
    assert result.estimate == pytest.approx(iqm(np.concatenate(tasks)))
    assert result.ci_low < result.estimate < result.ci_high
    assert (result.n_tasks, result.n_runs, result.ci_method) == (3, 17, "stratified-percentile-bootstrap")
    assert aggregate_iqm(tasks, seed=0, n_resamples=2000) == result
    assert aggregate_iqm(tasks, seed=1, n_resamples=2000) != result


def test_aggregate_bootstrap_is_stratified_by_task():
    # Every replicate keeps four runs per task, so the pooled IQM of {0,0,0,0,1,1,1,1} never moves;
    # pooling runs before resampling would give a wide interval.
    result = aggregate_iqm([np.zeros(4), np.ones(4)], seed=0, n_resamples=500)
    assert (result.estimate, result.ci_low, result.ci_high) == (0.5, 0.5, 0.5)


def test_aggregate_holds_single_run_tasks_fixed():
    result = aggregate_iqm([[0.5], [0.7, 0.8]], seed=0, n_resamples=500)
    assert result.n_tasks == 2 and math.isfinite(result.ci_low)
    only_single_runs = aggregate_iqm([[0.5], [0.7]], seed=0)
    assert only_single_runs.ci_method == "none"
    assert only_single_runs.ci_low == only_single_runs.ci_high == only_single_runs.estimate == 0.6


def test_aggregate_probability_of_improvement():
    a = [[0.91, 0.92, 0.93], [0.71, 0.72, 0.70, 0.73]]
    b = [[0.90, 0.92, 0.89], [0.74, 0.75, 0.76]]
    result = aggregate_probability_of_improvement(a, b, seed=0, n_resamples=2000)
    per_task = [probability_of_improvement(x, y) for x, y in zip(a, b)]
    assert result.estimate == pytest.approx(np.mean(per_task))
    assert result.ci_low <= result.estimate <= result.ci_high
    assert (result.n_tasks, result.n_runs) == (2, 13)
    dominant = aggregate_probability_of_improvement(
        [[2.0, 3.0]] * 2, [[0.0, 1.0]] * 2, seed=0, n_resamples=200
    )
    assert (dominant.estimate, dominant.ci_low, dominant.ci_high) == (1.0, 1.0, 1.0)
    with pytest.raises(BenchError, match="same tasks"):
        aggregate_probability_of_improvement(a, b[:1], seed=0)


# --- tuning budgets ----------------------------------------------------------------------------


def test_expected_max_equals_enumeration_over_trial_sequences():
    values = np.array([0.70, 0.80, 0.80, 0.95])
    for n_trials in (1, 2, 3):
        sequences = itertools.product(values, repeat=n_trials)
        expected = np.mean([max(sequence) for sequence in sequences])
        assert expected_max(values, n_trials) == pytest.approx(expected, rel=1e-12)


def test_expected_max_curve_starts_at_mean_and_grows_to_max():
    values = np.random.default_rng(8).uniform(0.6, 0.9, 20)
    curve = expected_max_curve(values, 500)
    assert curve.shape == (500,)
    assert curve[0] == pytest.approx(values.mean())
    assert np.all(np.diff(curve) >= 0)
    assert curve[-1] == pytest.approx(values.max(), abs=1e-9)
    assert expected_max(values, 37) == pytest.approx(curve[36])
    with pytest.raises(BenchError, match="n_trials"):
        expected_max(values, 0)
