"""Aggregates across tasks, as in rliable: the interquartile mean and the probability of improvement with
stratified bootstrap intervals."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike

from harness.core.errors import BenchError
from harness.stats.effects import pairwise_improvement
from harness.stats.samples import (
    as_sample,
    as_tasks,
    check_positive_integer,
    check_probability,
    seeded_rng,
)

PAIR_COMPARISONS_PER_BATCH = 2**22
"""Bootstrap replicates of P(a > b) are batched so one batch compares at most this many pairs
per task (a few MiB), whatever the number of seeds."""

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

def iqm(values: ArrayLike) -> float:
    """Interquartile mean: the mean of the middle 50% of values (rliable's robust aggregate)."""
    from scipy import stats

    return float(stats.trim_mean(as_sample(values, "values"), 0.25))

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
    from scipy import stats

    check_probability(confidence, "confidence")
    check_positive_integer(n_resamples, "n_resamples")
    rng = seeded_rng(seed)
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
    from scipy import stats

    return stats.trim_mean(np.concatenate(samples, axis=-1), 0.25, axis=-1)

def aggregate_iqm(
    scores_by_task: Sequence[ArrayLike], seed: int, confidence: float = 0.95, n_resamples: int = 9999
) -> AggregateEstimate:
    """IQM of all runs pooled across tasks, with a stratified bootstrap interval (rliable).

    Scores must already be normalized to a common scale across tasks. Seeds are resampled
    within each task, so every bootstrap replicate keeps each task's number of runs.
    """
    tasks = as_tasks(scores_by_task, "scores_by_task")
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
    a_tasks, b_tasks = as_tasks(a_by_task, "a_by_task"), as_tasks(b_by_task, "b_by_task")
    if len(a_tasks) != len(b_tasks):
        raise BenchError(
            f"a_by_task has {len(a_tasks)} tasks but b_by_task has {len(b_tasks)}; pass both "
            "methods' scores for the same tasks in the same order"
        )
    n_tasks = len(a_tasks)

    def mean_probability(samples: list[np.ndarray]) -> np.ndarray:
        per_task = [pairwise_improvement(samples[t], samples[n_tasks + t]) for t in range(n_tasks)]
        return np.mean(per_task, axis=0)

    largest_pair_count = max(x.size * y.size for x, y in zip(a_tasks, b_tasks))
    batch = max(1, PAIR_COMPARISONS_PER_BATCH // largest_pair_count)
    samples = a_tasks + b_tasks
    result = _stratified_bootstrap(samples, mean_probability, seed, confidence, n_resamples, batch)
    return replace(result, n_tasks=n_tasks)

def improvement_permutation_test(
    a_by_task: Sequence[ArrayLike], b_by_task: Sequence[ArrayLike], seed: int, n_resamples: int = 9999,
) -> float:
    """One-sided p-value that ``a`` improves on ``b`` across tasks: the mean over tasks of
    ``P(a > b)`` against its distribution when, within every task, the runs' labels are permuted
    (``n_resamples`` random permutations drawn with ``seed``; the observed labelling counts, so the
    p-value is never 0). Under no difference in any task the runs of a task are exchangeable, so
    the test holds its level whatever the number of tasks; a task needs runs of both methods, and
    with one run each its permutations can only tie or swap the pair.
    """
    a_tasks, b_tasks = as_tasks(a_by_task, "a_by_task"), as_tasks(b_by_task, "b_by_task")
    if len(a_tasks) != len(b_tasks):
        raise BenchError(
            f"a_by_task has {len(a_tasks)} tasks but b_by_task has {len(b_tasks)}; pass both "
            "methods' scores for the same tasks in the same order"
        )
    check_positive_integer(n_resamples, "n_resamples")
    rng = seeded_rng(seed)
    observed = float(np.mean([pairwise_improvement(x, y) for x, y in zip(a_tasks, b_tasks)]))
    batch = max(1, PAIR_COMPARISONS_PER_BATCH // max(x.size * y.size for x, y in zip(a_tasks, b_tasks)))
    at_least = 0
    for start in range(0, n_resamples, batch):
        size = min(batch, n_resamples - start)
        total = np.zeros(size)
        for x, y in zip(a_tasks, b_tasks):
            pooled = rng.permuted(np.broadcast_to(np.concatenate([x, y]), (size, x.size + y.size)), axis=1)
            total += pairwise_improvement(pooled[:, :x.size], pooled[:, x.size:])
        at_least += int(np.sum(total / len(a_tasks) >= observed - 1e-12))
    return (1 + at_least) / (1 + n_resamples)
