"""Expected maximum validation accuracy after n tuning trials (Dodge et al. 2019), so methods tuned with
unequal budgets are compared at equal trial counts."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from harness.stats.samples import as_sample, check_positive_integer


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
    ordered = np.sort(as_sample(values, "values"))
    check_positive_integer(max_trials, "max_trials")
    weights = _expected_max_weights(ordered.size, np.arange(1, max_trials + 1))
    return weights @ ordered

def expected_max(values: ArrayLike, n_trials: int) -> float:
    """Expected best validation score after ``n_trials`` tuning trials; see :func:`expected_max_curve`."""
    ordered = np.sort(as_sample(values, "values"))
    check_positive_integer(n_trials, "n_trials")
    return float(_expected_max_weights(ordered.size, np.array([n_trials]))[0] @ ordered)
