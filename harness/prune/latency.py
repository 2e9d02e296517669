"""Measured inference latency, so FLOPs reductions can be read beside real speed-ups.

Masks remove no work from dense kernels, and removed channels do not always pay off on a given
device, so the harness times both models the same way: a copy in eval mode under
``torch.inference_mode``, warm-up calls first, then repeated timed calls (synchronising CUDA
around each), reported as the median with the interquartile range. Nothing here is asserted
on by tests; timings are measurements, never pass/fail criteria.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict

from harness.core.errors import BenchError

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class LatencySettings:
    batch_size: int = 1
    warmup: int = 10
    repeats: int = 50

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.warmup < 0 or self.repeats < 1:
            raise BenchError("latency needs batch size >= 1, warm-up >= 0 and repeats >= 1")


@dataclass(frozen=True)
class LatencyMeasurement:
    """One model's per-call wall times in milliseconds (one call = one batch)."""

    device: str
    batch_size: int
    warmup: int
    times_ms: tuple[float, ...]
    threads: int

    @property
    def median_ms(self) -> float:
        return float(np.median(self.times_ms))

    @property
    def iqr_ms(self) -> float:
        low, high = np.percentile(self.times_ms, [25, 75])
        return float(high - low)


def measure_latency(
    model: nn.Module, input_shape: tuple[int, ...], device: str = "cpu", settings: LatencySettings = LatencySettings()
) -> LatencyMeasurement:
    """Time ``settings.repeats`` forward passes of a batch of ``input_shape`` inputs on ``device`` (torch is
    imported here, so records, which hold a ``Latency``, are read without it)."""
    import torch

    probe = copy.deepcopy(model).to(device).eval()
    inputs = torch.randn((settings.batch_size, *input_shape), generator=torch.Generator().manual_seed(0)).to(device)
    synchronise = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    times = []
    with torch.inference_mode():
        for _ in range(settings.warmup):
            probe(inputs)
        for _ in range(settings.repeats):
            synchronise()
            started = time.perf_counter()
            probe(inputs)
            synchronise()
            times.append(1000 * (time.perf_counter() - started))
    return LatencyMeasurement(device, settings.batch_size, settings.warmup, tuple(times), torch.get_num_threads())


class Latency(BaseModel):
    """Dense vs pruned inference latency of one run: medians and interquartile ranges over timed repeats."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    device: str
    batch_size: int
    warmup: int
    repeats: int
    dense_median_ms: float
    dense_iqr_ms: float
    pruned_median_ms: float
    pruned_iqr_ms: float
    speedup: float


@dataclass(frozen=True)
class LatencyComparison:
    dense: LatencyMeasurement
    pruned: LatencyMeasurement

    @property
    def speedup(self) -> float:
        """Dense median over pruned median: above 1 means the pruned model is faster."""
        return self.dense.median_ms / self.pruned.median_ms

    def to_record(self) -> Latency:
        return Latency(
            device=self.dense.device, batch_size=self.dense.batch_size, warmup=self.dense.warmup,
            repeats=len(self.dense.times_ms), dense_median_ms=self.dense.median_ms, dense_iqr_ms=self.dense.iqr_ms,
            pruned_median_ms=self.pruned.median_ms, pruned_iqr_ms=self.pruned.iqr_ms, speedup=self.speedup,
        )


def compare_latency(
    dense: nn.Module | LatencyMeasurement, pruned: nn.Module, input_shape: tuple[int, ...], device: str = "cpu",
    settings: LatencySettings = LatencySettings(),
) -> LatencyComparison:
    """Dense and pruned timed alike; pass an earlier dense measurement to reuse it across runs."""
    if not isinstance(dense, LatencyMeasurement):
        dense = measure_latency(dense, input_shape, device, settings)
    return LatencyComparison(dense, measure_latency(pruned, input_shape, device, settings))
