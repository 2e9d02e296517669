"""Checks and conventions every statistic shares: a sample is a finite 1-D array, seeds are explicit,
values equal to rounding count as constant, and no spread is smaller than the measurement resolves."""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from fractions import Fraction
from math import lcm
from typing import Iterable, Iterator, Sequence

import numpy as np
from numpy.typing import ArrayLike

from harness.core.errors import BenchError

ROUNDING_TOLERANCE = 10 * np.finfo(float).eps
"""Relative spread below which values count as equal: scipy's threshold for catastrophic
cancellation, where its t statistics stop being meaningful."""

def as_sample(values: ArrayLike, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0 or not np.all(np.isfinite(array)):
        raise BenchError(
            f"{name} must be a non-empty 1-D sequence of finite numbers (got shape {array.shape}); "
            "pass one score per seed and drop missing runs"
        )
    return array

def as_tasks(scores_by_task: Sequence[ArrayLike], name: str) -> list[np.ndarray]:
    if len(scores_by_task) == 0:
        raise BenchError(f"{name} is empty; pass one array of per-seed scores for every task")
    return [as_sample(scores, f"{name}[{index}]") for index, scores in enumerate(scores_by_task)]

def seeded_rng(seed: int) -> np.random.Generator:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise BenchError(f"seed must be an integer (got {seed!r}); pass the seed explicitly")
    return np.random.default_rng(seed)

def check_probability(value: float, name: str, low_open: float = 0.0, high_open: float = 1.0) -> None:
    if not low_open < value < high_open:
        raise BenchError(f"{name} must lie strictly between {low_open} and {high_open} (got {value})")

def check_positive_integer(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise BenchError(f"{name} must be a positive integer (got {value!r})")

def is_constant(values: np.ndarray, scale: float | None = None) -> bool:
    """Zero variance up to floating-point rounding (0.7 - 0.45 and 0.6 - 0.35 differ by an ulp).

    Rounding is relative to the size of the measured numbers, ``scale``: for differences of paired
    accuracies that is the accuracies (their rounding is ~1e-16), never the differences themselves,
    whose mean may be tiny. Without ``scale`` the values are the measurements."""
    mean = float(np.mean(values))
    size = max(abs(mean), float(np.max(np.abs(values)))) if scale is None else scale
    return bool(np.max(np.abs(values - mean)) <= ROUNDING_TOLERANCE * size)


def check_resolution(resolution: float) -> float:
    if not (resolution >= 0 and np.isfinite(resolution)):
        raise BenchError(f"resolution must be a non-negative finite number (got {resolution}); pass 1/N for N test images")
    return float(resolution)


def rounding_sd(resolution: float) -> float:
    """The sd of rounding to a grid of step ``resolution`` (an error uniform over one step): the least
    spread an interval may assume for measurements on that grid. Tests floor at the whole step instead
    (``floored(std, resolution)``), so that runs one image apart on every seed are a tie."""
    return resolution / math.sqrt(12)


def floored(std: float, resolution: float) -> float:
    """A standard deviation no smaller than the measurement resolves (``resolution``: one test image)."""
    return max(float(std), resolution)


MAX_TEST_IMAGES = 10**6
"""Largest test set :func:`grid_resolution` recognizes (ImageNet's validation split has 50,000)."""


def grid_resolution(values: Iterable[float], max_denominator: int = MAX_TEST_IMAGES) -> float | None:
    """``1/N`` when every value is a whole number of ``N``-ths (an accuracy over ``N`` test images), the
    smallest such ``N`` up to ``max_denominator``; None when the values show no such grid.

    Each value's fraction is recovered exactly from its float (two fractions with denominators up to
    10^6 differ by more than 1e-12, a float's rounding is 1e-16); ``N`` is their common denominator.
    """
    denominator = 1
    for value in dict.fromkeys(map(float, values)):  # each distinct value once: accuracies repeat
        if not np.isfinite(value):
            return None
        fraction = Fraction(value).limit_denominator(max_denominator)
        if abs(float(fraction) - value) > 1e-12 * max(1.0, abs(value)):
            return None
        denominator = lcm(denominator, fraction.denominator)
        if denominator > max_denominator:
            return None
    return 1.0 / denominator

def certain_difference(x: np.ndarray, y: np.ndarray) -> float:
    """Difference of means of zero-variance samples, 0.0 when they are equal up to rounding."""
    mean_x, mean_y = float(np.mean(x)), float(np.mean(y))
    difference = mean_x - mean_y
    return 0.0 if abs(difference) <= ROUNDING_TOLERANCE * max(abs(mean_x), abs(mean_y)) else difference

@contextmanager
def one_constant_sample_allowed() -> Iterator[None]:
    """scipy warns of catastrophic cancellation whenever a sample is constant, yet its variance
    of 0 is right and the other sample's variance carries the standard error."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Precision loss occurred", RuntimeWarning)
        yield
