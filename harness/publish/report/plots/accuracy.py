"""Drawing accuracies, shared by the retraining, MACs and curve figures: percent arrays, an accuracy
axis scaled by the error when one-shot and retrained results are decades apart, a mean line with its
interval band (the random twin dashed and hollow), small offsets that keep coinciding lines visible,
and the methods' legend entries."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Sequence

import numpy as np

from harness.audit.comparisons import Cell
from harness.publish.report.plots.canvas import legend_line
from harness.publish.report.plots.looks import Look

FAMILIES = ("structured", "unstructured")
ERROR_FLOOR = 0.05
"""Percent: where the error-scaled accuracy axis stops (99.95%)."""
ACCURACY_TICKS = (0, 20, 50, 80, 90, 95, 98, 99, 99.5, 99.8, 99.9)


def percent(values: Sequence[float | None]) -> np.ndarray:
    return 100 * np.asarray([math.nan if v is None else v for v in values], dtype=float)


def summary_arrays(cells: Sequence[Cell]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean test accuracy and its interval bounds per cell, in percent."""
    return (percent([c.mean for c in cells]), percent([c.summary.ci_low if c.summary else None for c in cells]),
            percent([c.summary.ci_high if c.summary else None for c in cells]))


def by_family(cells: Sequence[Cell]) -> dict[str, list[Cell]]:
    """Cells per family, structured first: the two are drawn apart."""
    grouped: dict[str, list[Cell]] = defaultdict(list)
    for cell in cells:
        grouped[cell.family].append(cell)
    return {f: grouped[f] for f in FAMILIES if f in grouped}


def error_scale(axis, values: np.ndarray) -> bool:
    """Scale an accuracy axis by the error (log of 100 - accuracy) when the values span more than a
    decade of error -- one-shot results far below the retrained ones -- so both stay readable."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return False
    errors = np.clip(100 - finite, ERROR_FLOOR, None)
    if errors.max() / errors.min() < 10:
        return False
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    def forward(a):
        return -np.log10(np.clip(100 - np.asarray(a, dtype=float), ERROR_FLOOR, None))

    def inverse(y):
        return 100 - np.power(10.0, -np.asarray(y, dtype=float))

    axis.set_yscale("function", functions=(forward, inverse))
    low, high = max(0.0, float(finite.min()) - 5), min(100 - ERROR_FLOOR, 100 - float(errors.min()) / 2)
    axis.set_ylim(low, high)
    axis.yaxis.set_major_locator(FixedLocator([t for t in ACCURACY_TICKS if low <= t <= high]))
    axis.yaxis.set_minor_locator(NullLocator())
    axis.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    return True


def offsets(count: int, span: float) -> list[float]:
    """Small offsets along x that keep coinciding points and lines apart."""
    if count <= 1:
        return [0.0] * count
    step = span * 0.012
    return [(i - (count - 1) / 2) * step for i in range(count)]


def series(axis, x: np.ndarray, mean: np.ndarray, low: np.ndarray, high: np.ndarray, look: Look, twin: bool) -> None:
    """One line with its interval band; the twin dashed with hollow markers and a fainter band."""
    style = "--" if twin else "-"
    axis.plot(x, mean, linestyle=style, color=look.color, marker=look.marker, markersize=3.6 if twin else 4,
              markerfacecolor="white" if twin else look.color, markeredgewidth=0.9, linewidth=1.0 if twin else 1.4,
              zorder=3 if twin else 4)
    finite = np.isfinite(low) & np.isfinite(high)
    if finite.sum() >= 2:
        axis.fill_between(x[finite], low[finite], high[finite], color=look.color, alpha=0.06 if twin else 0.13,
                          linewidth=0, zorder=1)
    elif finite.any():
        axis.errorbar(x[finite], mean[finite], yerr=[mean[finite] - low[finite], high[finite] - mean[finite]],
                      fmt="none", ecolor=look.color, elinewidth=0.8, capsize=1.5, zorder=2)


def method_handles(methods: Sequence[str], styles: dict[str, Look], twins: bool = True) -> list[tuple[object, str]]:
    """Legend entries: one per method in its colour and marker, then (with ``twins``) the twin's style."""
    handles: list[tuple[object, str]] = [
        (legend_line(color=styles[m].color, marker=styles[m].marker, markersize=4.5, linewidth=1.4), m)
        for m in methods]
    if twins:
        handles.append((legend_line(color="0.3", linestyle="--", marker="o", markerfacecolor="white",
                                    markersize=4, linewidth=1.0), "random twin (dashed, hollow)"))
    return handles
