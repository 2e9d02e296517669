"""Multiple-comparison corrections: Holm's step-down for headline claims, Benjamini-Hochberg for tables."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from harness.core.errors import BenchError


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
    from scipy import stats

    p = _pvalues(pvalues)
    if p.size == 0:
        return p
    return np.asarray(stats.false_discovery_control(p, method="bh"), dtype=float)
