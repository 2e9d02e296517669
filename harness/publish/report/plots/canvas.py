"""From panels to a finished :class:`Plot`: the figure grid sized in inches, the title, axis labels
and legend measured so the figure grows to hold them (nothing is cut off, and no constrained layout:
it costs seconds), and the SVG and PNG bytes.

Files are byte-identical across runs: the SVG hash salt is fixed, text stays text (no font
subsetting), and no date or version goes into the metadata. matplotlib is imported on the first
figure drawn, so a report whose plots are all cached never imports it.
"""

from __future__ import annotations

import io
import re
import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

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
PANEL = (2.3, 1.9)
"""Width and height of one panel, inches."""
MARGIN = {"left": 0.7, "right": 0.2, "top": 0.62, "bottom": 0.5, "wspace": 0.32, "hspace": 0.5, "legend_gap": 0.08}
"""Inches around and between panels (``bottom`` holds the x tick labels and label; ``legend_gap`` the
space under the legend)."""
TITLE_LINE = 0.2
"""Inches each extra line of a wrapped figure title takes."""
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


def file_stem(*parts: str) -> str:
    return "-".join(_UNSAFE.sub("_", p) for p in parts)


def grid(rows: int, columns: int, sharey: bool | str = "row", panel: tuple[float, float] = PANEL,
         sharex: bool | str = True) -> tuple[Figure, np.ndarray]:
    """Panels on a grid, sized in inches; the final margins are set by :func:`finish`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width = MARGIN["left"] + MARGIN["right"] + panel[0] * columns + MARGIN["wspace"] * (columns - 1)
    height = MARGIN["top"] + MARGIN["bottom"] + panel[1] * rows + MARGIN["hspace"] * (rows - 1)
    figure = Figure(figsize=(max(width, 5.0), height))
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False, sharex=sharex, sharey=sharey)
    figure._pb_panel = (panel, rows, columns)  # type: ignore[attr-defined]
    return figure, axes


def legend_line(**style) -> Line2D:
    """A line drawn only in a legend, styled like the data it names."""
    from matplotlib.lines import Line2D

    return Line2D([], [], **style)


def finish(figure: Figure, title: str, xlabel: str, ylabel: str, handles: Sequence[tuple[object, str]] = (),
           legend_title: str | None = None, legend_columns: int | None = None) -> tuple[str, bytes]:
    """Title, axis labels and one legend below the panels, measured so the figure holds all of it;
    returns the SVG text and PNG bytes."""
    (_, panel_h), rows, columns = figure._pb_panel  # type: ignore[attr-defined]
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
