"""Tuning budget curves: expected best validation accuracy vs tuning trials (Dodge et al. 2019), drawn
when tuning histories exist, so methods are compared at an equal number of trials."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from harness.audit.tuning import TuningStudy
from harness.publish.report.plots.accuracy import percent
from harness.publish.report.plots.canvas import (
    Plot,
    file_stem,
    finish,
    grid,
    legend_line,
)
from harness.publish.report.plots.looks import MARKERS, PALETTE, Look


def tuning_figure(track: str, studies: Sequence[TuningStudy], styles: dict[str, Look]) -> Plot | None:
    mine = [s for s in studies if s.cell.track == track and s.values]
    if not mine:
        return None
    figure, axes = grid(1, 1, panel=(4.6, 2.6))
    axis = axes[0, 0]
    handles = []
    for index, study in enumerate(sorted(mine, key=lambda s: s.study)):
        look = styles.get(study.cell.method) or Look(PALETTE[index % len(PALETTE)], MARKERS[index % len(MARKERS)])
        trials = np.arange(1, study.n_trials + 1)
        curve = [study.expected_max(int(t)) for t in trials]
        axis.plot(trials, percent(curve), "--" if study.cell.twin else "-", color=look.color, marker=look.marker,
                  markersize=3.5, markerfacecolor="white" if study.cell.twin else look.color)
        handles.append((legend_line(color=look.color, marker=look.marker, linestyle="--" if study.cell.twin else "-",
                                    markerfacecolor="white" if study.cell.twin else look.color), study.study))
    svg, png = finish(figure, f"{track}: expected best validation accuracy vs tuning trials",
                      "tuning trials", "expected best validation accuracy (%)", handles, legend_columns=2)
    return Plot(file_stem("tuning", track), f"{track}: tuning budget curves",
                "Expected maximum validation accuracy after k trials (Dodge et al. 2019); compare methods at equal k.",
                svg, png, "tuning", track)
