"""Every cell and comparison in full, collapsed one block per track, target and budget: seeds, means,
intervals and MACs kept; tests, raw and Holm p-values, permutation checks, detectable differences and
seeds to detect. Reported (quoted) cells show the paper's own n, std and interval, never pooled."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Sequence

from harness.audit.comparisons import Cell, Comparison
from harness.audit.engine import AuditResult
from harness.publish.report.formatting import (
    VERDICT_MARK,
    collapsed,
    interval,
    pct,
    pp,
    pvalue,
    section,
    table,
)
from harness.publish.report.labels import budget_label


def reported_spread(cell: Cell) -> tuple[float | None, int | None]:
    """A reported cell's std and number of runs as the paper states them (a single quoted number
    keeps them in its record), else (None, None)."""
    if cell.reproduced or len(cell.records) != 1:
        return None, None
    env = cell.records[0].env or {}
    std, n = env.get("reported_std"), env.get("reported_n")
    return (float(std) if std is not None else None), (int(n) if n is not None else None)


def reported_interval(mean: float, std: float | None, n: int | None, confidence: float) -> tuple[float, float] | None:
    """The Student-t interval a paper's mean, std and n imply (None without both, or with n < 2)."""
    if std is None or n is None or n < 2 or not math.isfinite(mean):
        return None
    from scipy import stats

    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)
    return mean - half, mean + half


def _kept(c: Cell) -> str:
    macs_before, macs_after, sparsity = c.mean_of("macs_before"), c.mean_of("macs_after"), c.mean_of("sparsity")
    kept = f"{100 * macs_after / macs_before:.1f}%" if macs_before and macs_after is not None else "–"
    if sparsity is not None:
        kept += f" ({100 * sparsity:.1f}% sparse)"
    return kept


def _cell_rows(cells: Sequence[Cell], confidence: float = 0.95) -> list[tuple]:
    rows = []
    for c in cells:
        s = c.summary
        std, n = reported_spread(c)
        if s is not None and (std is not None or n is not None or (not c.reproduced and len(c.records) == 1)):
            bounds = reported_interval(s.mean, std, n, confidence)
            rows.append((c.key.entry, c.key.schedule, f"{n} (paper)" if n else "1 number",
                         f"{pct(s.mean)} ± {pct(std)}", interval(*bounds) if bounds else "–",
                         "t, from the paper's std and n" if bounds else "–", _kept(c)))
            continue
        failed = f" (+{c.n_failed} failed)" if c.n_failed else ""
        rows.append((c.key.entry, c.key.schedule, f"{c.n}{failed}",
                     f"{pct(s.mean)} ± {pct(s.std)}" if s else "–", interval(s.ci_low, s.ci_high) if s else "–",
                     s.ci_method if s else "–", _kept(c)))
    return rows


def _comparison_rows(comparisons: Sequence[Comparison], cells: dict[str, Cell]) -> list[tuple]:
    rows = []
    for c in comparisons:
        a, b = cells[c.a].key, cells[c.b].key
        schedule = a.schedule if a.schedule == b.schedule else f"{a.schedule} vs {b.schedule}"
        test = f"{c.test} ({c.n_pairs} of {c.n_a}/{c.n_b} runs shared)" if c.partial else c.test
        rows.append((f"{a.entry} vs {b.entry}", schedule, f"{pp(c.difference)}",
                     f"[{pp(c.ci_low)}, {pp(c.ci_high)}]", test, pvalue(c.pvalue), pvalue(c.pvalue_adjusted),
                     pvalue(c.permutation_pvalue), pct(c.minimum_detectable_difference),
                     "–" if c.seeds_to_detect is None else str(c.seeds_to_detect), VERDICT_MARK[c.verdict]))
    return rows


def cells_and_comparisons(result: AuditResult) -> list[str]:
    lines = section(
        "Cells and comparisons",
        "Every cell (one method or twin, target, schedule and budget) with its seeds, and every comparison "
        "with its test (paired on the runs two cells share, else Welch), raw p-value and Holm p-value within "
        "the method's own family (its twin and the reference methods before it), permutation check, the "
        "detectable difference and the seeds that would detect the observed gap; collapsed, one block per "
        "track, target and budget.")
    by_label = {c.label: c for c in result.cells}
    groups: dict[tuple, list[Cell]] = defaultdict(list)
    for cell in result.cells:
        groups[(cell.key.track, cell.key.target, cell.key.budget_epochs)].append(cell)
    compared: dict[tuple, list[Comparison]] = defaultdict(list)
    for c in result.comparisons:
        key = by_label[c.a].key
        compared[(key.track, key.target, key.budget_epochs)].append(c)
    confidence = result.config.confidence
    for (track, target, budget), cells in groups.items():
        body: list[str] = []
        reproduced = [c for c in cells if c.reproduced]
        reported = [c for c in cells if not c.reproduced]
        header = ("entry", "schedule", "n", "test acc ± std", "95% CI", "interval", "MACs kept")
        if reproduced:
            body += table(header, _cell_rows(reproduced, confidence), "llrrrll")
        if reported:
            body += ["Reported (quoted, never pooled with the reproduced runs; n, std and interval as the paper "
                     "gives them):", ""]
            body += table((*header, "source"), [(*row, c.key.source.removeprefix("reported: ")) for row, c in
                                                zip(_cell_rows(reported, confidence), reported)], "llrrrlll")
        mine = compared[(track, target, budget)]
        if mine:
            body += table(("comparison", "schedule", "Δ (pp)", "95% CI (pp)", "test", "p", "p (Holm)", "perm. p",
                           "detectable (pp)", "seeds to detect", "verdict"), _comparison_rows(mine, by_label),
                          "llrrlrrrrrl")
        summary = f"{len(reproduced)} cells" + (f", {len(reported)} reported" if reported else "") + \
            f", {len(mine)} comparisons"
        lines += section(f"{track} · {target} · {budget_label(budget)}", level=3) + collapsed(summary, body)
    return lines
