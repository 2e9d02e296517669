"""The report's plots, drawn with matplotlib's Agg canvas and no pyplot state, one module each:

* :mod:`.retraining`: accuracy vs retraining budget per schedule -- the view of Le & Hua's Figure 2;
* :mod:`.macs`: accuracy vs MACs at the largest budget, each method under its best schedule;
* :mod:`.curves`: per-epoch validation accuracy and learning rate of chosen cells;
* :mod:`.tuning`: expected best validation accuracy vs tuning trials, when tuning histories exist.

They share :mod:`.looks` (one colour and marker per method across all plots), :mod:`.accuracy`
(accuracy axes, bands, offsets, legend entries) and :mod:`.canvas` (layout and byte-identical
SVG and PNG); :mod:`.cache` keeps drawn plots. This module lists the plots in report order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

from harness.audit.engine import AuditResult
from harness.publish.report.plots.cache import MISSING, cached, entry_path, store
from harness.publish.report.plots.canvas import STYLE, Plot
from harness.publish.report.plots.curves import curves_figure
from harness.publish.report.plots.looks import looks
from harness.publish.report.plots.macs import macs_figure
from harness.publish.report.plots.retraining import retraining_figure
from harness.publish.report.plots.tuning import tuning_figure

Job = tuple[Callable[..., "Plot | None"], tuple]


def _jobs(result: AuditResult) -> Iterator[Job]:
    """Every plot of the report as (the function that draws it, its inputs), in report order."""
    styles = looks([c.key.method for c in result.cells])
    for track in result.tracks:
        cells = [c for c in result.cells  # trained twins are compared in the tables, not drawn
                 if c.reproduced and c.n and c.key.track == track and not c.key.twin_trains]
        for target in sorted({c.key.target for c in cells}):
            in_target = [c for c in cells if c.key.target == target]
            yield retraining_figure, (track, target, in_target, styles)
            yield curves_figure, (track, target, in_target, styles)
        yield macs_figure, (track, cells, styles)
        yield tuning_figure, (track, result.studies, styles)


def make_plots(result: AuditResult, cache: str | Path | None = None) -> list[Plot]:
    """Every plot of the report, in report order. With ``cache`` (a folder), a plot whose inputs and
    drawing code hash to a stored entry is read from there instead of drawn; the cache only saves
    time (an unreadable entry is drawn again), and a drawn plot's bytes are the same either way."""
    plots = []
    for function, args in _jobs(result):
        path = entry_path(cache, function, args) if cache is not None else None
        found = cached(path) if path is not None else MISSING
        if found is MISSING:
            import matplotlib  # here, not above: a report whose plots are all cached never imports it

            with matplotlib.rc_context(STYLE):
                found = function(*args)
            if path is not None:
                store(path, found)
        if found is not None:
            plots.append(found)
    return plots
