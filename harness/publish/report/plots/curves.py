"""Per-epoch curves: the validation accuracy and learning rate of each family's leader at the largest
budget and of its random twin, under every schedule -- how the schedules differ while they train."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Sequence

import numpy as np

from harness.audit.comparisons import Cell, best_by_validation, schedule_order
from harness.publish.report.labels import budget_label
from harness.publish.report.plots.accuracy import by_family, series
from harness.publish.report.plots.canvas import (
    Plot,
    file_stem,
    finish,
    grid,
    legend_line,
)
from harness.publish.report.plots.looks import Look


def _mean_curve(cell: Cell, field: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    curves = [getattr(r.curves, field) for r in cell.ok]
    curves = [c for c in curves if c]
    if not curves:
        return None
    length = min(len(c) for c in curves)
    values = np.array([[math.nan if v is None else v for v in c[:length]] for c in curves], dtype=float)
    return np.nanmean(values, axis=0), np.nanmin(values, axis=0), np.nanmax(values, axis=0)


def chosen_cells(cells: Sequence[Cell]) -> tuple[int, list[str]]:
    """The cells whose curves are drawn: at the largest budget, each family's leader (mean test
    accuracy under its best schedule, chosen on validation) -- its method under every schedule."""
    retrained = [c for c in cells if c.key.budget_epochs > 0 and not c.key.twin and c.n]
    if not retrained:
        return 0, []
    budget = max(c.key.budget_epochs for c in retrained)
    leaders = []
    for members in by_family([c for c in retrained if c.key.budget_epochs == budget]).values():
        by_method: dict[str, list[Cell]] = defaultdict(list)
        for cell in members:
            by_method[cell.key.method].append(cell)
        best = [b for b in (best_by_validation(v) for _, v in sorted(by_method.items())) if b is not None]
        if best:
            leaders.append(max(best, key=lambda c: (c.mean, c.key.method)).key.method)
    return budget, leaders


def curves_figure(track: str, target: str, cells: Sequence[Cell], styles: dict[str, Look]) -> Plot | None:
    budget, methods = chosen_cells(cells)
    if not methods:
        return None
    chosen = [c for c in cells if c.key.budget_epochs == budget and c.key.method in methods]
    schedules = sorted({c.key.schedule for c in chosen}, key=schedule_order)
    if not any(_mean_curve(c, "val_acc") for c in chosen):
        return None
    figure, axes = grid(2, len(schedules), sharey="row", panel=(2.3, 1.6))
    for column, schedule in enumerate(schedules):
        top, bottom = axes[0, column], axes[1, column]
        lr_drawn = False
        for cell in sorted((c for c in chosen if c.key.schedule == schedule), key=lambda c: (c.key.method, c.key.twin)):
            look = styles[cell.key.method]
            curve = _mean_curve(cell, "val_acc")
            if curve is not None:
                epochs = np.arange(1, len(curve[0]) + 1, dtype=float)
                series(top, epochs, 100 * curve[0], 100 * curve[1], 100 * curve[2], Look(look.color, ""),
                       cell.key.twin)
            lr = _mean_curve(cell, "lr")
            if lr is not None and not lr_drawn:
                bottom.step(np.arange(1, len(lr[0]) + 1), lr[0], where="mid", color="0.2", linewidth=1.2)
                lr_drawn = True
        top.set_title(f"{schedule} @ {budget}")
        bottom.set_yscale("log")
        bottom.set_xlabel("epoch", fontsize=7.5)
        top.tick_params(labelbottom=True)
    axes[0, 0].set_ylabel("validation accuracy (%)", fontsize=7.5)
    axes[1, 0].set_ylabel("learning rate", fontsize=7.5)
    handles = [(legend_line(color=styles[m].color, linewidth=1.4), m) for m in methods]
    handles += [(legend_line(color="0.3", linestyle="--", linewidth=1.0), "its random twin (dashed)"),
                (legend_line(color="0.2", linewidth=1.2), "learning rate (per epoch)")]
    svg, png = finish(figure, f"{track} · {target}: per-epoch validation accuracy and learning rate "
                              f"at {budget_label(budget)}", "", "", handles)
    return Plot(file_stem("curves", track, target), f"{track} · {target}: training curves",
                f"Per-epoch validation accuracy (mean over seeds, band from the lowest to the highest seed) of each "
                f"family's leader at {budget_label(budget)} ({', '.join(methods)}) and its random twin, with the "
                "learning rate each schedule sets (log scale).", svg, png, "curves", track, target)
