"""Accuracy vs retraining budget, the view of Le & Hua's Figure 2: per schedule, each method solid
and its random twin dashed with interval bands, the one-shot (no-retraining) result at budget 0,
structured and unstructured methods in separate rows."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from harness.audit.comparisons import Cell, schedule_order
from harness.publish.report.plots.accuracy import (
    by_family,
    error_scale,
    method_handles,
    offsets,
    percent,
    series,
    summary_arrays,
)
from harness.publish.report.plots.canvas import (
    Plot,
    file_stem,
    finish,
    grid,
    legend_line,
)
from harness.publish.report.plots.looks import DENSE_COLOR, Look


def retraining_figure(track: str, target: str, cells: Sequence[Cell], styles: dict[str, Look]) -> Plot | None:
    schedules = sorted({c.key.schedule for c in cells if c.key.budget_epochs > 0}, key=schedule_order)
    families = by_family(cells)
    if not schedules or not families:
        return None
    budgets = sorted({c.key.budget_epochs for c in cells})
    span = max(budgets) - min(budgets) or 1
    figure, axes = grid(len(families), len(schedules))
    shown: set[str] = set()
    has_dense = scaled = False
    for row, (family, members) in enumerate(families.items()):
        methods = sorted({c.key.method for c in members})
        shifts = dict(zip(methods, offsets(len(methods), span)))
        by_key = {(c.key.method, c.key.twin, c.key.schedule, c.key.budget_epochs): c for c in members}
        values = percent([c.mean for c in members] + [c.summary.ci_low for c in members if c.summary])
        dense = [v for v in (c.mean_of("dense_test_acc") for c in members if not c.key.twin) if v is not None]
        for column, schedule in enumerate(schedules):
            axis = axes[row, column]
            for method in methods:
                for twin in (False, True):
                    line = [by_key[k] for k in sorted(by_key) if k[0] == method and k[1] == twin
                            and (k[2] == schedule or k[3] == 0)]
                    line.sort(key=lambda c: c.key.budget_epochs)
                    if not line:
                        continue
                    x = np.array([c.key.budget_epochs for c in line], dtype=float) + shifts[method]
                    series(axis, x, *summary_arrays(line), styles[method], twin)
                    shown.add(method)
            if dense:
                axis.axhline(100 * float(np.mean(dense)), color=DENSE_COLOR, linestyle=":", linewidth=1.0, zorder=0)
                has_dense = True
            if column == 0:
                scaled = error_scale(axis, np.append(values, 100 * float(np.mean(dense)) if dense else np.nan)) or scaled
            axis.set_title(f"{family} · {schedule}")
            axis.set_xticks(budgets)
            axis.tick_params(labelbottom=True)
    handles = method_handles(sorted(shown), styles)
    if has_dense:
        handles.append((legend_line(color=DENSE_COLOR, linestyle=":", linewidth=1.0), "dense model"))
    title = f"{track} · {target}: test accuracy vs retraining budget, per schedule (mean, 95% CI band)"
    svg, png = finish(figure, title,
                      "budget (epochs of training after the dense model, a method's own included; 0 = none)",
                      "test accuracy (%, axis scaled by the error)" if scaled else "test accuracy (%)", handles)
    return Plot(file_stem("retraining", track, target), f"{track} · {target}: accuracy vs retraining budget",
                "Each method (solid, filled markers) and its random twin (dashed, hollow: the same layer sizes, "
                "channels or weights chosen at random) under each schedule, mean test accuracy over seeds with 95% "
                "bands; budget 0 is the one-shot result without retraining, shared by every schedule. Structured and "
                "unstructured methods are in separate rows; methods are offset slightly along the budget axis so "
                "coinciding lines stay visible. Where one-shot and retrained accuracies are far apart the accuracy "
                "axis is scaled by the error (log of 100 − accuracy).", svg, png, "retraining", track, target)
