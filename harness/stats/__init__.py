"""Statistics for auditing pruning results, as small pure functions of numpy arrays (one value per seed)
returning named results. scipy does the numerics; these functions fix the conventions an audit relies on
(two-sided tests, explicit seeds for every random draw, exact computations where affordable) and give
degenerate samples (one seed, zero variance) a defined answer instead of scipy's NaN and warnings.
``scipy.stats`` is imported inside the functions that call it (importing it takes about a second), so
importing this package costs only numpy and ``scipy.special``.

A leaf of the harness: nothing here imports the rest of it but its error type."""

from harness.stats.aggregate import (
    AggregateEstimate,
    aggregate_iqm,
    aggregate_probability_of_improvement,
    improvement_permutation_test,
    iqm,
)
from harness.stats.effects import (
    cliffs_delta,
    hedges_correction,
    hedges_g,
    probability_of_improvement,
)
from harness.stats.equivalence import EquivalenceResult, tost
from harness.stats.multiplicity import benjamini_hochberg, holm
from harness.stats.power import (
    minimum_detectable_difference,
    paired_power,
    seeds_needed,
    seeds_needed_each,
    t_test_power,
    two_sample_power,
)
from harness.stats.samples import ROUNDING_TOLERANCE, grid_resolution
from harness.stats.significance import (
    TestResult,
    paired_permutation_test,
    paired_t_test,
    permutation_test,
    welch_test,
)
from harness.stats.summary import (
    HALL_UNION_FROM,
    SMALL_SAMPLE_MISS_FACTORS,
    Summary,
    summarize,
)
from harness.stats.tuning import expected_max, expected_max_curve

__all__ = [
    "AggregateEstimate", "aggregate_iqm", "aggregate_probability_of_improvement", "improvement_permutation_test", "iqm",
    "cliffs_delta", "hedges_correction", "hedges_g", "probability_of_improvement",
    "EquivalenceResult", "tost", "benjamini_hochberg", "holm",
    "minimum_detectable_difference", "paired_power", "seeds_needed", "seeds_needed_each", "t_test_power",
    "two_sample_power",
    "ROUNDING_TOLERANCE", "grid_resolution", "TestResult", "paired_permutation_test", "paired_t_test", "permutation_test", "welch_test",
    "HALL_UNION_FROM", "SMALL_SAMPLE_MISS_FACTORS", "Summary", "summarize", "expected_max", "expected_max_curve",
]
