"""Accuracy vs MACs at the largest budget: each method at every target under its best schedule
(chosen on validation), structured methods by MACs and unstructured by sparsity in separate panels,
the points of one operating point set side by side and labelled with their schedule."""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import numpy as np

from harness.audit.comparisons import Cell, best_by_validation
from harness.publish.report.labels import budget_label
from harness.publish.report.plots.accuracy import FAMILIES, method_handles
from harness.publish.report.plots.canvas import (
    Plot,
    file_stem,
    finish,
    grid,
    legend_line,
)
from harness.publish.report.plots.looks import DENSE_COLOR, Look


def macs_figure(track: str, cells: Sequence[Cell], styles: dict[str, Look]) -> Plot | None:
    budgets = [c.key.budget_epochs for c in cells]
    if not budgets:
        return None
    budget = max(budgets)
    groups: dict[tuple[str, str, str, bool], list[Cell]] = defaultdict(list)
    for cell in cells:
        if cell.key.budget_epochs == budget and cell.mean_of("macs_after") is not None:
            groups[(cell.family, cell.key.target, cell.key.method, cell.key.twin)].append(cell)
    families = [f for f in FAMILIES if any(k[0] == f for k in groups)]
    if not families:
        return None
    figure, axes = grid(1, len(families), sharey=False, panel=(4.2, 2.8), sharex=False)
    shown: set[str] = set()
    for column, family in enumerate(families):
        axis = axes[0, column]
        keys = [k for k in groups if k[0] == family]
        methods = sorted({k[2] for k in keys})
        best = {k: best_by_validation(groups[k]) for k in keys}
        x_field = "macs_after" if family == "structured" else "sparsity"
        scale = 1e-3 if family == "structured" else 100.0
        xs = [v for v in (b.mean_of(x_field) for b in best.values() if b is not None) if v is not None]
        if not xs:
            axis.set_visible(False)
            continue
        positions = sorted({round(v * scale, 6) for v in xs})
        gap = min([b - a for a, b in zip(positions, positions[1:])] or [max(positions[0], 1.0)])
        step = 0.7 * gap / len(methods)
        offsets = {m: (i - (len(methods) - 1) / 2) * step for i, m in enumerate(methods)}
        for (_, target, method, twin), cell in sorted(best.items()):
            if cell is None or cell.summary is None:
                continue
            x = cell.mean_of(x_field) * scale + offsets[method] + (0.35 * step if twin else 0.0)
            y = 100 * cell.mean
            look = styles[method]
            axis.errorbar([x], [y], yerr=[[y - 100 * cell.summary.ci_low], [100 * cell.summary.ci_high - y]],
                          fmt=look.marker, color=look.color, markerfacecolor="white" if twin else look.color,
                          markersize=4.5, capsize=1.5, elinewidth=0.8, markeredgewidth=0.9, zorder=3)
            if not twin:
                axis.annotate(cell.key.schedule, (x, 100 * cell.summary.ci_high), xytext=(0, 2),
                              textcoords="offset points", ha="center", va="bottom", fontsize=5.5, rotation=90,
                              color="0.3")
            shown.add(method)
        dense_acc = [a for a in (c.mean_of("dense_test_acc") for c in cells if not c.key.twin and c.family == family)
                     if a is not None]
        if dense_acc:
            axis.axhline(100 * float(np.mean(dense_acc)), color=DENSE_COLOR, linestyle=":", linewidth=1.0, zorder=0)
        for target in sorted({k[1] for k in keys}):
            at = [b.mean_of(x_field) for k, b in best.items() if k[1] == target and b is not None]
            at = [v for v in at if v is not None]
            if at:
                axis.annotate(target, (float(np.mean(at)) * scale, 1.0), xycoords=("data", "axes fraction"),
                              xytext=(0, 2), textcoords="offset points", ha="center", va="bottom", fontsize=7,
                              color="0.25", annotation_clip=False)
        axis.set_xticks(positions)
        axis.set_xlim(positions[0] - gap * 0.6, positions[-1] + gap * 0.6)
        axis.set_xlabel("MACs after pruning (thousands, conv + linear, batch 1)" if family == "structured"
                        else "sparsity (% of weights masked; masks keep every MAC)", fontsize=7.5)
        axis.set_title(family, pad=12)
    handles = method_handles(sorted(shown), styles, twins=False)
    handles.append((legend_line(color="0.3", marker="o", markerfacecolor="white", linestyle="none", markersize=4.5),
                    "random twin (hollow)"))
    handles.append((legend_line(color=DENSE_COLOR, linestyle=":", linewidth=1.0), "dense model"))
    svg, png = finish(figure, f"{track}: test accuracy vs MACs at {budget_label(budget)}, "
                              "best schedule per method (on validation)", "", "test accuracy (%)", handles)
    return Plot(file_stem("macs", track), f"{track}: accuracy vs MACs",
                f"Each method at every target under its best schedule (chosen on validation, written above its "
                f"interval) at {budget_label(budget)}, with 95% intervals; methods at the same operating point are "
                "set side by side (their true MACs or sparsity is the tick), hollow markers are the random twins, the "
                "dotted line the dense model.", svg, png, "macs", track)
