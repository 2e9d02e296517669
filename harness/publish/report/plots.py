"""The report's plots, drawn with matplotlib's Agg canvas and no pyplot state.

* ``retraining``: accuracy vs retraining budget per schedule, structured and unstructured methods
  in separate rows, each method solid and its random twin dashed, with interval bands and the
  one-shot (no-retraining) result at budget 0 -- the view of Le & Hua's Figure 2;
* ``macs``: accuracy vs MACs at the largest budget, each method under its best schedule (chosen on
  validation), structured and unstructured apart, points of one operating point spread side by
  side and labelled with their schedule;
* ``curves``: per-epoch validation accuracy and learning rate of chosen cells (each family's
  leader at the largest budget and its twin, under every schedule);
* ``tuning``: expected best validation accuracy vs tuning trials, when tuning histories exist.

Every method keeps one colour and marker across all plots, from a colour-blind-safe palette
(Okabe & Ito's eight, then four of Paul Tol's muted colours) paired with twelve distinct markers,
so twelve methods stay apart in colour *and* shape, more in the pair. Lines that coincide stay
visible: methods are offset slightly along the budget axis and differ in marker.

Files are byte-identical across runs: the SVG hash salt is fixed, text stays text (no font
subsetting), and no date or version goes into the metadata. Legends are measured once and the
figure grows to hold them, so nothing is cut off; no constrained layout (it costs seconds).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import re
import textwrap
from collections import defaultdict
from dataclasses import asdict, dataclass, fields, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from harness.audit.comparisons import (
    Cell,
    best_by_validation,
    schedule_order,
)
from harness.audit.engine import AuditResult
from harness.audit.tuning import TuningStudy
from harness.core.atomic import write_text_atomic
from harness.publish.report.labels import budget_label
from harness.run.record import content_digest

Figure = FigureCanvasAgg = Line2D = FixedLocator = FuncFormatter = NullLocator = matplotlib = None
"""matplotlib's names, imported on the first plot drawn (:func:`_import_matplotlib`): a report whose
plots are all in the cache never imports matplotlib."""


def _import_matplotlib() -> None:
    global Figure, FigureCanvasAgg, Line2D, FixedLocator, FuncFormatter, NullLocator, matplotlib
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

STYLE = {
    "svg.hashsalt": "prune-bench",
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.titlesize": 8.5,
    "figure.titlesize": 10,
    "legend.fontsize": 7.5,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.4,
}
SVG_METADATA = {"Date": None, "Creator": "prune-bench"}
PNG_METADATA = {"Software": "prune-bench"}
PNG_DPI = 150
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#882255",
           "#999933", "#332288", "#44AA99", "#F0E442")
"""Okabe & Ito's colour-blind-safe eight with Paul Tol's wine, olive, indigo and teal (the pale yellow last)."""
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "p", "h", "*")
SCHEDULE_LINES = {"none": ":", "ft": "-", "lrw": "--", "slr": "-.", "clr": (0, (1, 1))}
DENSE_COLOR = "0.45"
PANEL = (2.3, 1.9)
"""Width and height of one panel, inches."""
MARGIN = {"left": 0.7, "right": 0.2, "top": 0.62, "bottom": 0.5, "wspace": 0.32, "hspace": 0.5, "legend_gap": 0.08}
"""Inches around and between panels (``bottom`` holds the x tick labels and label; ``legend_gap`` the
space under the legend)."""
TITLE_LINE = 0.2
"""Inches each extra line of a wrapped figure title takes."""
FAMILIES = ("structured", "unstructured")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Plot:
    name: str
    title: str
    caption: str
    svg: str
    png: bytes
    kind: str = "other"
    """Where the report shows it: ``retraining``, ``macs``, ``curves`` or ``tuning``."""
    track: str = ""
    target: str = ""


@dataclass(frozen=True)
class Look:
    color: str
    marker: str


def file_stem(*parts: str) -> str:
    return "-".join(_UNSAFE.sub("_", p) for p in parts)


def looks(methods: Sequence[str]) -> dict[str, Look]:
    """One colour and marker per method (sorted by name), the same in every plot of a report."""
    return {m: Look(PALETTE[i % len(PALETTE)], MARKERS[(i + i // len(MARKERS)) % len(MARKERS)])
            for i, m in enumerate(sorted(set(methods)))}


# -- figure layout ------------------------------------------------------------------------------
def _grid(rows: int, columns: int, sharey: bool | str = "row", panel: tuple[float, float] = PANEL,
          sharex: bool | str = True) -> tuple[Figure, np.ndarray]:
    """Panels on a grid, sized in inches; the final margins are set by :func:`_finish`."""
    width = MARGIN["left"] + MARGIN["right"] + panel[0] * columns + MARGIN["wspace"] * (columns - 1)
    height = MARGIN["top"] + MARGIN["bottom"] + panel[1] * rows + MARGIN["hspace"] * (rows - 1)
    figure = Figure(figsize=(max(width, 5.0), height))
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False, sharex=sharex, sharey=sharey)
    figure._pb_panel = (panel, rows, columns)  # type: ignore[attr-defined]
    return figure, axes


def _finish(figure: Figure, axes: Sequence, title: str, xlabel: str, ylabel: str,
            handles: Sequence[tuple[object, str]] = (), legend_title: str | None = None,
            legend_columns: int | None = None) -> tuple[str, bytes]:
    """Title, axis labels and one legend below the panels, measured so the figure holds all of it."""
    (panel_w, panel_h), rows, columns = figure._pb_panel  # type: ignore[attr-defined]
    width = figure.get_figwidth()
    legend_height = 0.0
    legend = None
    renderer = figure.canvas.get_renderer()
    heading = figure.suptitle(title, va="top")
    title_width = heading.get_window_extent(renderer).width / figure.dpi
    if title_width > 0.96 * width:  # wrap a long title rather than cut it off
        heading.set_text(textwrap.fill(title, max(20, int(len(title) * 0.94 * width / title_width))))
    extra_lines = heading.get_text().count("\n")
    top = MARGIN["top"] + TITLE_LINE * extra_lines
    if handles:
        for ncols in range(legend_columns or min(len(handles), 8), 0, -1):
            legend = figure.legend([h for h, _ in handles], [t for _, t in handles], loc="lower center",
                                   ncols=ncols, frameon=False, title=legend_title, title_fontsize=7.5,
                                   handlelength=2.6, columnspacing=1.2, borderaxespad=0.2)
            box = legend.get_window_extent(renderer)
            if box.width <= 0.97 * width * figure.dpi or ncols == 1:
                legend_height = box.height / figure.dpi
                break
            legend.remove()
    grid_height = panel_h * rows + MARGIN["hspace"] * (rows - 1)
    bottom = MARGIN["bottom"] + legend_height + (MARGIN["legend_gap"] if handles else 0.0)
    height = top + grid_height + bottom
    figure.set_size_inches(width, height)
    grid_width = width - MARGIN["left"] - MARGIN["right"]
    figure.subplots_adjust(left=MARGIN["left"] / width, right=1 - MARGIN["right"] / width,
                           top=1 - top / height, bottom=bottom / height,
                           wspace=MARGIN["wspace"] / ((grid_width - MARGIN["wspace"] * (columns - 1)) / columns),
                           hspace=MARGIN["hspace"] / panel_h)
    if legend is not None:
        legend.set_bbox_to_anchor((0.5, MARGIN["legend_gap"] / height), transform=figure.transFigure)
    heading.set_y(1 - 0.12 / height)
    figure.supxlabel(xlabel, y=(legend_height + MARGIN["legend_gap"] + 0.12) / height, va="bottom", fontsize=8)
    figure.supylabel(ylabel, x=0.12 / width, fontsize=8)
    return _render(figure)


def _render(figure: Figure) -> tuple[str, bytes]:
    svg, png = io.StringIO(), io.BytesIO()
    figure.savefig(svg, format="svg", metadata=SVG_METADATA)
    figure.savefig(png, format="png", dpi=PNG_DPI, metadata=PNG_METADATA)
    return svg.getvalue(), png.getvalue()


def _hide_unused(axes: np.ndarray, used: set[tuple[int, int]]) -> None:
    for (row, column), axis in np.ndenumerate(axes):
        if (row, column) not in used:
            axis.set_visible(False)


def _percent(values: Sequence[float | None]) -> np.ndarray:
    return 100 * np.asarray([math.nan if v is None else v for v in values], dtype=float)


# -- accuracy axes --------------------------------------------------------------------------------
ERROR_FLOOR = 0.05
"""Percent: where the error-scaled accuracy axis stops (99.95%)."""
ACCURACY_TICKS = (0, 20, 50, 80, 90, 95, 98, 99, 99.5, 99.8, 99.9)


def _error_scale(axis, values: np.ndarray) -> bool:
    """Scale an accuracy axis by the error (log of 100 - accuracy) when the values span more than a
    decade of error -- one-shot results far below the retrained ones -- so both stay readable."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return False
    errors = np.clip(100 - finite, ERROR_FLOOR, None)
    if errors.max() / errors.min() < 10:
        return False

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


def _offsets(count: int, span: float) -> list[float]:
    """Small offsets along x that keep coinciding points and lines apart."""
    if count <= 1:
        return [0.0] * count
    step = span * 0.012
    return [(i - (count - 1) / 2) * step for i in range(count)]


def _series(axis, x: np.ndarray, mean: np.ndarray, low: np.ndarray, high: np.ndarray, look: Look, twin: bool,
            label: str | None = None) -> None:
    """One line with its interval band; the twin dashed with hollow markers and a fainter band."""
    style = "--" if twin else "-"
    axis.plot(x, mean, linestyle=style, color=look.color, marker=look.marker, markersize=3.6 if twin else 4,
              markerfacecolor="white" if twin else look.color, markeredgewidth=0.9, linewidth=1.0 if twin else 1.4,
              label=label, zorder=3 if twin else 4)
    finite = np.isfinite(low) & np.isfinite(high)
    if finite.sum() >= 2:
        axis.fill_between(x[finite], low[finite], high[finite], color=look.color, alpha=0.06 if twin else 0.13,
                          linewidth=0, zorder=1)
    elif finite.any():
        axis.errorbar(x[finite], mean[finite], yerr=[mean[finite] - low[finite], high[finite] - mean[finite]],
                      fmt="none", ecolor=look.color, elinewidth=0.8, capsize=1.5, zorder=2)


def _method_handles(methods: Sequence[str], styles: dict[str, Look], twins: bool = True) -> list[tuple[object, str]]:
    handles: list[tuple[object, str]] = [
        (Line2D([], [], color=styles[m].color, marker=styles[m].marker, markersize=4.5, linewidth=1.4), m)
        for m in methods]
    if twins:
        handles.append((Line2D([], [], color="0.3", linestyle="--", marker="o", markerfacecolor="white",
                               markersize=4, linewidth=1.0), "random twin (dashed, hollow)"))
    return handles


def _family(cells: Sequence[Cell]) -> dict[str, list[Cell]]:
    by_family: dict[str, list[Cell]] = defaultdict(list)
    for cell in cells:
        by_family[cell.family].append(cell)
    return {f: by_family[f] for f in FAMILIES if f in by_family}


def _summary_arrays(cells: Sequence[Cell]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (_percent([c.mean for c in cells]), _percent([c.summary.ci_low if c.summary else None for c in cells]),
            _percent([c.summary.ci_high if c.summary else None for c in cells]))


# -- accuracy vs retraining budget (Figure 2) -----------------------------------------------------
def _retraining_figure(track: str, target: str, cells: Sequence[Cell], styles: dict[str, Look]) -> Plot | None:
    schedules = sorted({c.key.schedule for c in cells if c.key.budget_epochs > 0}, key=schedule_order)
    families = _family(cells)
    if not schedules or not families:
        return None
    budgets = sorted({c.key.budget_epochs for c in cells})
    span = max(budgets) - min(budgets) or 1
    figure, axes = _grid(len(families), len(schedules))
    shown: set[str] = set()
    has_dense = scaled = False
    for row, (family, members) in enumerate(families.items()):
        methods = sorted({c.key.method for c in members})
        offsets = dict(zip(methods, _offsets(len(methods), span)))
        by_key = {(c.key.method, c.key.twin, c.key.schedule, c.key.budget_epochs): c for c in members}
        values = _percent([c.mean for c in members] + [c.summary.ci_low for c in members if c.summary])
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
                    x = np.array([c.key.budget_epochs for c in line], dtype=float) + offsets[method]
                    _series(axis, x, *_summary_arrays(line), styles[method], twin)
                    shown.add(method)
            if dense:
                axis.axhline(100 * float(np.mean(dense)), color=DENSE_COLOR, linestyle=":", linewidth=1.0, zorder=0)
                has_dense = True
            if column == 0:
                scaled = _error_scale(axis, np.append(values, 100 * float(np.mean(dense)) if dense else np.nan)) or scaled
            axis.set_title(f"{family} · {schedule}")
            axis.set_xticks(budgets)
            axis.tick_params(labelbottom=True)
    handles = _method_handles(sorted(shown), styles)
    if has_dense:
        handles.append((Line2D([], [], color=DENSE_COLOR, linestyle=":", linewidth=1.0), "dense model"))
    title = f"{track} · {target}: test accuracy vs retraining budget, per schedule (mean, 95% CI band)"
    svg, png = _finish(figure, axes.ravel(), title, "retraining budget (epochs; 0 = no retraining)",
                       "test accuracy (%, axis scaled by the error)" if scaled else "test accuracy (%)", handles)
    return Plot(file_stem("retraining", track, target), f"{track} · {target}: accuracy vs retraining budget",
                "Each method (solid, filled markers) and its random twin (dashed, hollow: the same layer sizes, "
                "channels or weights chosen at random) under each schedule, mean test accuracy over seeds with 95% "
                "bands; budget 0 is the one-shot result without retraining, shared by every schedule. Structured and "
                "unstructured methods are in separate rows; methods are offset slightly along the budget axis so "
                "coinciding lines stay visible. Where one-shot and retrained accuracies are far apart the accuracy "
                "axis is scaled by the error (log of 100 − accuracy).", svg, png, "retraining", track, target)


# -- accuracy vs MACs ----------------------------------------------------------------------------
def _macs_figure(track: str, cells: Sequence[Cell], styles: dict[str, Look]) -> Plot | None:
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
    figure, axes = _grid(1, len(families), sharey=False, panel=(4.2, 2.8), sharex=False)
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
        dense = [(c.mean_of("macs_before"), c.mean_of("dense_test_acc")) for c in cells if not c.key.twin
                 and c.family == family]
        dense_acc = [a for _, a in dense if a is not None]
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
    handles = _method_handles(sorted(shown), styles, twins=False)
    handles.append((Line2D([], [], color="0.3", marker="o", markerfacecolor="white", linestyle="none",
                           markersize=4.5), "random twin (hollow)"))
    handles.append((Line2D([], [], color=DENSE_COLOR, linestyle=":", linewidth=1.0), "dense model"))
    svg, png = _finish(figure, axes.ravel(), f"{track}: test accuracy vs MACs at {budget_label(budget)}, "
                                             "best schedule per method (on validation)",
                       "", "test accuracy (%)", handles)
    return Plot(file_stem("macs", track), f"{track}: accuracy vs MACs",
                f"Each method at every target under its best schedule (chosen on validation, written above its "
                f"interval) at {budget_label(budget)}, with 95% intervals; methods at the same operating point are "
                "set side by side (their true MACs or sparsity is the tick), hollow markers are the random twins, the "
                "dotted line the dense model.", svg, png, "macs", track)


# -- per-epoch curves ----------------------------------------------------------------------------
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
    for members in _family([c for c in retrained if c.key.budget_epochs == budget]).values():
        by_method: dict[str, list[Cell]] = defaultdict(list)
        for cell in members:
            by_method[cell.key.method].append(cell)
        best = [b for b in (best_by_validation(v) for _, v in sorted(by_method.items())) if b is not None]
        if best:
            leaders.append(max(best, key=lambda c: (c.mean, c.key.method)).key.method)
    return budget, leaders


def _curves_figure(track: str, target: str, cells: Sequence[Cell], styles: dict[str, Look]) -> Plot | None:
    budget, methods = chosen_cells(cells)
    if not methods:
        return None
    chosen = [c for c in cells if c.key.budget_epochs == budget and c.key.method in methods]
    schedules = sorted({c.key.schedule for c in chosen}, key=schedule_order)
    if not any(_mean_curve(c, "val_acc") for c in chosen):
        return None
    figure, axes = _grid(2, len(schedules), sharey="row", panel=(2.3, 1.6))
    for column, schedule in enumerate(schedules):
        top, bottom = axes[0, column], axes[1, column]
        lr_drawn = False
        for cell in sorted((c for c in chosen if c.key.schedule == schedule), key=lambda c: (c.key.method, c.key.twin)):
            look = styles[cell.key.method]
            curve = _mean_curve(cell, "val_acc")
            if curve is not None:
                epochs = np.arange(1, len(curve[0]) + 1, dtype=float)
                _series(top, epochs, 100 * curve[0], 100 * curve[1], 100 * curve[2],
                        Look(look.color, ""), cell.key.twin)
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
    handles = [(Line2D([], [], color=styles[m].color, linewidth=1.4), m) for m in methods]
    handles += [(Line2D([], [], color="0.3", linestyle="--", linewidth=1.0), "its random twin (dashed)"),
                (Line2D([], [], color="0.2", linewidth=1.2), "learning rate (per epoch)")]
    svg, png = _finish(figure, axes.ravel(), f"{track} · {target}: per-epoch validation accuracy and learning rate "
                                             f"at {budget_label(budget)}", "", "", handles)
    return Plot(file_stem("curves", track, target), f"{track} · {target}: training curves",
                f"Per-epoch validation accuracy (mean over seeds, band from the lowest to the highest seed) of each "
                f"family's leader at {budget_label(budget)} ({', '.join(methods)}) and its random twin, with the "
                "learning rate each schedule sets (log scale).", svg, png, "curves", track, target)


# -- tuning ---------------------------------------------------------------------------------------
def _tuning_figure(track: str, studies: Sequence[TuningStudy], styles: dict[str, Look]) -> Plot | None:
    mine = [s for s in studies if s.track == track and s.values]
    if not mine:
        return None
    figure, axes = _grid(1, 1, panel=(4.6, 2.6))
    axis = axes[0, 0]
    handles = []
    for index, study in enumerate(sorted(mine, key=lambda s: s.study)):
        look = styles.get(study.method) or Look(PALETTE[index % len(PALETTE)], MARKERS[index % len(MARKERS)])
        trials = np.arange(1, study.n_trials + 1)
        curve = [study.expected_max(int(t)) for t in trials]
        axis.plot(trials, _percent(curve), "--" if study.twin else "-", color=look.color, marker=look.marker,
                  markersize=3.5, markerfacecolor="white" if study.twin else look.color)
        handles.append((Line2D([], [], color=look.color, marker=look.marker, linestyle="--" if study.twin else "-",
                               markerfacecolor="white" if study.twin else look.color), study.study))
    svg, png = _finish(figure, axes.ravel(), f"{track}: expected best validation accuracy vs tuning trials",
                       "tuning trials", "expected best validation accuracy (%)", handles, legend_columns=2)
    return Plot(file_stem("tuning", track), f"{track}: tuning budget curves",
                "Expected maximum validation accuracy after k trials (Dodge et al. 2019); compare methods at equal k.",
                svg, png, "tuning", track)


Job = tuple[Callable[..., "Plot | None"], tuple]


def _jobs(result: AuditResult) -> Iterator[Job]:
    """Every plot of the report as (the function that draws it, its inputs), in report order."""
    styles = looks([c.key.method for c in result.cells])
    for track in result.tracks:
        cells = [c for c in result.cells if c.reproduced and c.n and c.key.track == track]
        for target in sorted({c.key.target for c in cells}):
            in_target = [c for c in cells if c.key.target == target]
            yield _retraining_figure, (track, target, in_target, styles)
            yield _curves_figure, (track, target, in_target, styles)
        yield _macs_figure, (track, cells, styles)
        yield _tuning_figure, (track, result.studies, styles)


def make_plots(result: AuditResult, cache: str | Path | None = None) -> list[Plot]:
    """Every plot of the report, in report order. With ``cache`` (a folder), a plot whose inputs and
    drawing code hash to a stored entry is read from there instead of drawn; the cache only saves
    time (an unreadable entry is drawn again), and a drawn plot's bytes are the same either way."""
    plots = []
    for function, args in _jobs(result):
        path = Path(cache) / f"{_job_key(function, args)}.json" if cache is not None else None
        found = _cached(path) if path is not None else _MISSING
        if found is _MISSING:
            if matplotlib is None:
                _import_matplotlib()
            with matplotlib.rc_context(STYLE):
                found = function(*args)
            if path is not None:
                _store(path, found)
        if found is not None:
            plots.append(found)
    return plots


# -- the plot cache -------------------------------------------------------------------------------
CACHE_FORMAT = 1
_MISSING = object()


def _code_digest() -> str:
    """The drawing code and libraries a plot's bytes depend on."""
    global _CODE
    if _CODE is None:
        import importlib.metadata as metadata

        from harness.audit import comparisons
        from harness.publish.report import labels
        from harness.run import cells

        code = b"".join(Path(m.__file__).read_bytes() for m in (comparisons, labels, cells))
        versions = {name: metadata.version(name) for name in ("matplotlib", "numpy", "pillow")}
        _CODE = hashlib.sha256(Path(__file__).read_bytes() + code + json.dumps(
            [CACHE_FORMAT, versions, STYLE], sort_keys=True, default=str).encode()).hexdigest()
    return _CODE


_CODE: str | None = None


def _fingerprint(value: Any) -> Any:
    """A plain, order-preserving stand-in for a plot's inputs: records by their content digest
    (loaded records had their seal checked), dataclasses by their fields, floats by ``repr``."""
    if isinstance(value, Cell):
        return ["cell", repr(value.key), ",".join(_record_digest(r) for r in value.records),
                ",".join(r.id for r in value.ok), repr(value.values), repr(value.pairing), repr(value.summary),
                repr(value.resolution)]
    if isinstance(value, (list, tuple)):
        return [_fingerprint(v) for v in value]
    if isinstance(value, dict):
        return [[_fingerprint(k), _fingerprint(v)] for k, v in value.items()]
    if is_dataclass(value) and not isinstance(value, type):
        return [type(value).__name__, [[f.name, _fingerprint(getattr(value, f.name))] for f in fields(value)]]
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, (float, np.floating, np.integer, np.bool_)):
        return repr(value)
    if isinstance(value, np.ndarray):
        return ["ndarray", str(value.dtype), list(value.shape), value.tobytes().hex()]
    raise TypeError(f"no fingerprint for {type(value).__name__}")  # a new input type: say so, never guess


def _record_digest(record) -> str:
    return record.content_digest or content_digest(record)


def _job_key(function: Callable, args: tuple) -> str:
    text = json.dumps([_code_digest(), function.__name__, _fingerprint(args)], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _cached(path: Path) -> Any:
    try:
        entry = json.loads(path.read_bytes())
        if entry["format"] != CACHE_FORMAT:
            return _MISSING
        if entry["plot"] is None:
            return None
        fields_ = dict(entry["plot"])
        fields_["png"] = base64.b64decode(fields_["png"], validate=True)
        plot = Plot(**fields_)
        if hashlib.sha256(plot.svg.encode() + plot.png).hexdigest() != entry["bytes"]:
            return _MISSING
        return plot
    except (OSError, ValueError, TypeError, KeyError):
        return _MISSING


def _store(path: Path, plot: Plot | None) -> None:
    entry: dict[str, Any] = {"format": CACHE_FORMAT, "plot": None}
    if plot is not None:
        entry["plot"] = {**asdict(plot), "png": base64.b64encode(plot.png).decode()}
        entry["bytes"] = hashlib.sha256(plot.svg.encode() + plot.png).hexdigest()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(entry))
    except Exception:  # noqa: BLE001 - a cache that cannot be written only costs time
        pass
