"""The report's plots, drawn with matplotlib's Agg canvas and no pyplot state.

* accuracy vs retraining budget, one panel per method, one line per schedule with its
  confidence band (the view of Le & Hua's Figure 2);
* each method minus its random twin vs budget, one panel per schedule;
* accuracy vs MACs at the largest budget, each method under its best schedule (on validation),
  twins hollow, the dense model as a star;
* expected best validation accuracy vs tuning trials per study, when tuning histories exist.

Files are byte-identical across runs: the SVG hash salt is fixed, text stays text (no font
subsetting), and no date or version goes into the metadata. Figures are laid out with fixed
margins and one legend per figure: constrained layout and per-panel legends cost seconds on a
large leaderboard.
"""

from __future__ import annotations

import io
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterator, Sequence

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from harness.audit.comparisons import (
    Cell,
    Comparison,
    best_by_validation,
    schedule_order,
)
from harness.audit.engine import AuditResult
from harness.audit.tuning import TuningStudy

STYLE = {
    "svg.hashsalt": "prune-bench",
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.titlesize": 9,
    "legend.fontsize": 7,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
SVG_METADATA = {"Date": None, "Creator": "prune-bench"}
PNG_METADATA = {"Software": "prune-bench"}
PNG_DPI = 90
PANEL_SIZE = (3.2, 2.4)
MIN_WIDTH = 5.5
LEGEND_COLUMNS = 6
LEGEND_ROW = 0.2
"""Inches per legend row at the bottom of a figure."""
MAX_COLUMNS = 3
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Plot:
    name: str
    title: str
    caption: str
    svg: str
    png: bytes


def file_stem(*parts: str) -> str:
    return "-".join(_UNSAFE.sub("_", p) for p in parts)


def _colors(methods: Sequence[str]) -> dict[str, tuple]:
    palette = matplotlib.colormaps["tab10"]
    return {m: palette(i % 10) for i, m in enumerate(sorted(methods))}


def _panels(count: int, legend_rows: int = 1) -> tuple[Figure, list]:
    """A grid of panels sharing both axes (so levels compare across panels; only the outer panels
    carry tick labels), with room above for the title and below for a figure-wide legend."""
    columns = min(MAX_COLUMNS, count)
    rows = math.ceil(count / columns)
    width = max(PANEL_SIZE[0] * columns, MIN_WIDTH)
    top, bottom = 0.8, LEGEND_ROW * legend_rows + 0.65
    height = PANEL_SIZE[1] * rows + top + bottom
    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    figure.subplots_adjust(left=0.7 / width, right=1 - 0.15 / width, top=1 - top / height, bottom=bottom / height,
                           wspace=0.25, hspace=0.3)
    grid = figure.subplots(rows, columns, squeeze=False, sharex=True, sharey=True)
    axes = grid.ravel().tolist()
    for axis in axes[count:]:
        axis.set_visible(False)
    for index, axis in enumerate(axes[:count]):
        below = index + columns
        axis.tick_params(labelbottom=below >= count, labelleft=index % columns == 0)
    return figure, axes[:count]


def _rows(labels: int, columns: int = LEGEND_COLUMNS) -> int:
    return max(1, math.ceil(labels / columns))


def _finish(figure: Figure, axes: list, title: str, xlabel: str, ylabel: str, columns: int = LEGEND_COLUMNS,
            legend_title: str | None = None) -> tuple[str, bytes]:
    """Title, shared axis labels and one legend for the whole figure (first handle of each label)."""
    handles: dict[str, object] = {}
    for axis in axes:
        for handle, text in zip(*axis.get_legend_handles_labels()):
            handles.setdefault(text, handle)
    if handles:
        figure.legend(list(handles.values()), list(handles), loc="lower center", ncols=min(columns, len(handles)),
                      frameon=False, title=legend_title, title_fontsize=7)
    figure.suptitle(title)
    height = figure.get_figheight()
    rows = _rows(len(handles), columns) if handles else 0
    figure.supxlabel(xlabel, y=(LEGEND_ROW * rows + 0.25) / height, va="center")
    figure.supylabel(ylabel)
    return _render(figure)


def _render(figure: Figure) -> tuple[str, bytes]:
    svg, png = io.StringIO(), io.BytesIO()
    figure.savefig(svg, format="svg", metadata=SVG_METADATA)
    figure.savefig(png, format="png", dpi=PNG_DPI, metadata=PNG_METADATA)
    return svg.getvalue(), png.getvalue()


def _percent(values: Sequence[float]) -> np.ndarray:
    return 100 * np.asarray(values, dtype=float)


def _line(axis, x: Sequence[float], mean: np.ndarray, low: np.ndarray, high: np.ndarray, color, label: str) -> None:
    """A line with its interval as a band; a single point gets error bars instead."""
    if len(x) == 1:
        axis.errorbar(x, mean, yerr=[np.nan_to_num(mean - low), np.nan_to_num(high - mean)], fmt="o", color=color,
                      markersize=4, capsize=2, label=label)
        return
    axis.plot(x, mean, "-", color=color, marker="o", markersize=3, label=label)
    finite = np.isfinite(low) & np.isfinite(high)
    if finite.any():
        axis.fill_between(np.asarray(x)[finite], low[finite], high[finite], color=color, alpha=0.15, linewidth=0)


def _band(axis, x: Sequence[float], cells: Sequence[Cell], color, label: str) -> None:
    _line(axis, x, _percent([c.mean for c in cells]), _percent([c.summary.ci_low for c in cells]),
          _percent([c.summary.ci_high for c in cells]), color, label)


def _budget_figure(track: str, target: str, cells: Sequence[Cell]) -> Plot | None:
    cells = [c for c in cells if c.key.budget_epochs > 0]
    methods = sorted({c.key.method for c in cells if not c.key.twin})
    if not methods:
        return None
    schedules = sorted({c.key.schedule for c in cells}, key=schedule_order)
    colors = _colors(schedules)
    figure, axes = _panels(len(methods), _rows(len(schedules) + 1))
    for axis, method in zip(axes, methods):
        mine = [c for c in cells if c.key.method == method and not c.key.twin]
        for schedule in schedules:
            line = sorted((c for c in mine if c.key.schedule == schedule), key=lambda c: c.key.budget_epochs)
            if not line:
                continue
            _band(axis, [c.key.budget_epochs for c in line], line, colors[schedule], schedule)
        dense = [v for v in (c.mean_of("dense_test_acc") for c in mine) if v is not None]
        if dense:
            axis.axhline(100 * float(np.mean(dense)), color="0.4", linestyle=":", linewidth=1, label="dense")
        axis.set_title(method)
    svg, png = _finish(figure, axes, f"{track} · {target}: accuracy vs retraining budget (95% CI bands)",
                       "retraining budget (epochs)", "test accuracy (%)")
    return Plot(file_stem("budget", track, target), f"{track} · {target}: accuracy vs retraining budget",
                "Mean test accuracy across seeds with 95% confidence bands, one line per schedule; the dotted line "
                "is the dense model (one-shot results without retraining are in the tables).", svg, png)


def _twin_figure(track: str, target: str, comparisons: Sequence[Comparison], cells: dict[str, Cell]) -> Plot | None:
    mine = [c for c in comparisons
            if c.kind == "twin" and cells[c.a].key.target == target and cells[c.a].key.budget_epochs > 0]
    if not mine:
        return None
    schedules = sorted({cells[c.a].key.schedule for c in mine}, key=schedule_order)
    methods = sorted({cells[c.a].key.method for c in mine})
    colors = _colors(methods)
    figure, axes = _panels(len(schedules), _rows(len(methods)))
    for axis, schedule in zip(axes, schedules):
        for method in methods:
            line = sorted((c for c in mine if cells[c.a].key.schedule == schedule and cells[c.a].key.method == method),
                          key=lambda c: cells[c.a].key.budget_epochs)
            if not line:
                continue
            _line(axis, [cells[c.a].key.budget_epochs for c in line], _percent([c.difference for c in line]),
                  _percent([c.ci_low for c in line]), _percent([c.ci_high for c in line]), colors[method], method)
        axis.axhline(0.0, color="0.3", linewidth=0.8)
        axis.set_title(schedule)
    svg, png = _finish(figure, axes, f"{track} · {target}: each method against its random twin (95% CI)",
                       "retraining budget (epochs)", "method − random twin (pp)")
    return Plot(file_stem("twin", track, target), f"{track} · {target}: method vs random twin",
                "Difference in mean test accuracy between each method and its random twin (same layer sizes, "
                "channels chosen at random) under the same schedule and budget; above zero the criterion helps "
                "(the one-shot gap, without retraining, is in the tables).",
                svg, png)


def _macs_figure(track: str, cells: Sequence[Cell]) -> Plot | None:
    budgets = [c.key.budget_epochs for c in cells if c.key.budget_epochs > 0]
    if not budgets:
        return None
    budget = max(budgets)
    groups: dict[tuple[str, str, bool], list[Cell]] = defaultdict(list)
    for cell in cells:
        if cell.key.budget_epochs == budget and cell.mean_of("macs_after") is not None:
            groups[(cell.key.method, cell.key.target, cell.key.twin)].append(cell)
    if not groups:
        return None
    colors = _colors([m for m, _, _ in groups])
    figure, (axis,) = _panels(1, _rows(len(colors) + 1))
    labelled: set[str] = set()
    for (method, target, twin), members in sorted(groups.items()):
        best = best_by_validation(members)
        if best is None:
            continue
        macs = best.mean_of("macs_after")
        error = _percent([[best.mean - best.summary.ci_low], [best.summary.ci_high - best.mean]])
        label = method if not twin and method not in labelled else None
        if label:
            labelled.add(method)
        axis.errorbar([macs], _percent([best.mean]), yerr=error, fmt="o", capsize=2, markersize=5,
                      color=colors[method], markerfacecolor="none" if twin else colors[method], label=label)
    dense = [(c.mean_of("macs_before"), c.mean_of("dense_test_acc")) for c in cells if not c.key.twin]
    dense = [(m, a) for m, a in dense if m is not None and a is not None]
    if dense:
        axis.plot([float(np.mean([m for m, _ in dense]))], [100 * float(np.mean([a for _, a in dense]))], "*",
                  color="0.2", markersize=9, label="dense")
    svg, png = _finish(figure, [axis], f"{track}: accuracy vs MACs at {budget} epochs",
                       "MACs after pruning (conv + linear, batch 1)", "test accuracy (%)",
                       legend_title="filled: method, hollow: its random twin")
    return Plot(file_stem("macs", track), f"{track}: accuracy vs MACs",
                f"Each method at every target under its best schedule (chosen on validation) at {budget} epochs, "
                "with 95% intervals; hollow markers are the random twins, the star the dense model.", svg, png)


def _tuning_figure(track: str, studies: Sequence[TuningStudy]) -> Plot | None:
    mine = [s for s in studies if s.track == track and s.values]
    if not mine:
        return None
    figure, (axis,) = _panels(1, _rows(len(mine), 2))
    colors = _colors([s.study for s in mine])
    for study in sorted(mine, key=lambda s: s.study):
        trials = np.arange(1, study.n_trials + 1)
        curve = [study.expected_max(int(t)) for t in trials]
        axis.plot(trials, _percent(curve), "-", color=colors[study.study], label=study.study)
    svg, png = _finish(figure, [axis], f"{track}: expected best validation accuracy vs tuning trials",
                       "tuning trials", "expected best validation accuracy (%)", columns=2)
    return Plot(file_stem("tuning", track), f"{track}: tuning budget curves",
                "Expected maximum validation accuracy after k trials (Dodge et al. 2019); compare methods at equal k.",
                svg, png)


def _plots(result: AuditResult) -> Iterator[Plot | None]:
    by_label = {c.label: c for c in result.cells}
    for track in result.tracks:
        cells = [c for c in result.cells if c.reproduced and c.n and c.key.track == track]
        for target in sorted({c.key.target for c in cells}):
            in_target = [c for c in cells if c.key.target == target]
            yield _budget_figure(track, target, in_target)
            yield _twin_figure(track, target, [c for c in result.comparisons if c.track == track], by_label)
        yield _macs_figure(track, cells)
        yield _tuning_figure(track, result.studies)


def make_plots(result: AuditResult) -> list[Plot]:
    """Every plot of the report, in report order."""
    with matplotlib.rc_context(STYLE):
        return [plot for plot in _plots(result) if plot is not None]
