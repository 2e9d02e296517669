"""``REPORT.md``: what a reviewer reads first -- claims and findings, then the leaderboard, then
every cell and comparison with intervals, corrected p-values and the detectable difference.

Accuracies are shown in percent; differences in percentage points (pp). The body holds no
timestamp, so the same audit renders to the same bytes.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Iterable, Sequence

from harness.audit.comparisons import Cell, Comparison
from harness.audit.engine import AuditResult
from harness.audit.findings import RULES, SEVERITIES, Finding
from harness.publish.leaderboard import Leaderboard, Table
from harness.publish.report.plots import Plot

MAX_CELLS_LISTED = 8
VERDICT_MARK = {"better": "**better**", "worse": "**worse**", "tie": "tie", "equivalent": "equivalent"}


def pct(value: float | None, digits: int = 2) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{100 * value:.{digits}f}"


def pp(value: float | None, digits: int = 2) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{100 * value:+.{digits}f}"


def pvalue(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return "<1e-4" if value < 1e-4 else f"{value:.3g}"


def interval(low: float | None, high: float | None) -> str:
    return f"[{pct(low)}, {pct(high)}]"


def escape(text: str) -> str:
    return text.replace("|", "\\|")


def table(header: Sequence[str], rows: Iterable[Sequence[str]], align: str = "") -> list[str]:
    """A Markdown table; ``align`` has one letter per column: l or r (default l)."""
    marks = [":---" if (align[i:i + 1] or "l") == "l" else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |"]
    lines += ["| " + " | ".join(escape(str(cell)) for cell in row) + " |" for row in rows]
    return lines + [""]


def _cells_text(cells: Sequence[str]) -> str:
    if not cells:
        return ""
    shown = ", ".join(f"`{c}`" for c in cells[:MAX_CELLS_LISTED])
    more = f" and {len(cells) - MAX_CELLS_LISTED} more" if len(cells) > MAX_CELLS_LISTED else ""
    return f" Cells: {shown}{more}."


def _finding_line(finding: Finding) -> str:
    return f"- **{finding.rule}** ({RULES[finding.rule].title}) {finding.message}. *Fix:* {finding.fix}" \
           f"{_cells_text(finding.cells)}"


def _header(result: AuditResult) -> list[str]:
    n_records = sum(len(c.records) for c in result.cells)
    reported = sum(len(c.records) for c in result.cells if not c.reproduced)
    status = {0: "0 (no fail findings)", 1: "1 (fail findings present)"}[result.exit_code]
    return [
        "# prune-bench audit report", "",
        f"- harness version: `{result.version}`",
        f"- audit seed: `{result.seed}` (every bootstrap and sampled permutation derives from it)",
        f"- tracks: {', '.join(result.tracks) or '–'}",
        f"- records: {n_records} ({n_records - reported} reproduced, {reported} reported) in {len(result.cells)} cells; "
        f"{len(result.problems)} files skipped",
        f"- findings: {result.count('fail')} fail, {result.count('warn')} warn, {result.count('info')} info; "
        f"exit status {status}",
        "",
        "Accuracies are test accuracy in percent (mean over seeds) with 95% intervals (Student t below 10 seeds, "
        "BCa bootstrap from 10); differences are in percentage points (pp). A difference is **better**/**worse** "
        "only when the corrected test is significant and the gap is at least the minimum detectable difference "
        f"(power {result.config.power}); *equivalent* when TOST shows it inside ±{pct(result.config.equivalence_margin)} pp; "
        "otherwise a tie.", "",
    ]


def _claims(result: AuditResult) -> list[str]:
    if not result.claims:
        return []
    rows = [(c.name, c.statement, f"**{c.verdict}**", c.reason, ", ".join(c.rules_broken) or "–") for c in result.claims]
    return ["## Claims", ""] + table(("claim", "statement", "verdict", "why", "rules broken"), rows)


def _findings(result: AuditResult) -> list[str]:
    lines = ["## Findings", ""]
    if not result.findings:
        return lines + ["No rule fired.", ""]
    for severity in SEVERITIES:
        found = [f for f in result.findings if f.severity == severity]
        if found:
            lines += [f"### {severity} ({len(found)})", ""] + [_finding_line(f) for f in found] + [""]
    return lines


def _leaderboard_table(board: Table) -> list[str]:
    detectable = board.detectable
    note = (f"Detectable difference between entries: {pct(detectable[0])}–{pct(detectable[1])} pp."
            if detectable else "Detectable difference: – (fewer than two entries, or too few seeds).")
    rows = []
    for e in board.entries:
        rank = f"{e.rank}=" if e.tied else str(e.rank)
        flags = f"⚠ fail: {', '.join(e.flags)}" if e.flags else ""
        twin = f"{pp(e.twin_gap)} {interval(*e.twin_gap_ci) if e.twin_gap_ci else ''} {e.twin_verdict or ''}".strip() \
            if e.twin_gap is not None else "no twin"
        rows.append((rank, e.method, e.schedule, str(e.n), f"{pct(e.mean)} ± {pct(e.std)}", interval(e.ci_low, e.ci_high),
                     twin, flags))
    budget = "no retraining" if board.budget == 0 else f"{board.budget} epochs"
    return [f"### {board.track} · {board.target} · {budget} · {board.family}", "", note, ""] + table(
        ("rank", "method", "best schedule (val)", "n", "test acc ± std", "95% CI", "gap to random twin (pp)", "marked"),
        rows, "lllrrrll")


def leaderboard_markdown(leaderboard: Leaderboard) -> list[str]:
    lines = ["## Leaderboard", "",
             "Ranked by mean test accuracy under each method's best schedule (chosen on validation accuracy) at "
             "equal budget; structured and unstructured (masked) methods are ranked apart. `2=` marks a shared rank: the tests cannot separate the entry from its group's leader. "
             "Entries touched by a fail finding are marked, not hidden.", ""]
    if not leaderboard.tables:
        return lines + ["No reproduced entries to rank.", ""]
    for board in leaderboard.tables:
        lines += _leaderboard_table(board)
    return lines


def _cell_rows(cells: Sequence[Cell]) -> list[tuple]:
    rows = []
    for c in cells:
        s = c.summary
        macs_before, macs_after, sparsity = c.mean_of("macs_before"), c.mean_of("macs_after"), c.mean_of("sparsity")
        kept = f"{100 * macs_after / macs_before:.1f}%" if macs_before and macs_after is not None else "–"
        if sparsity is not None:
            kept += f" ({100 * sparsity:.1f}% sparse)"
        failed = f" (+{c.n_failed} failed)" if c.n_failed else ""
        rows.append((c.key.entry, c.key.schedule, f"{c.n}{failed}",
                     f"{pct(s.mean)} ± {pct(s.std)}" if s else "–", interval(s.ci_low, s.ci_high) if s else "–",
                     s.ci_method if s else "–", kept))
    return rows


def _comparison_rows(comparisons: Sequence[Comparison], cells: dict[str, Cell]) -> list[tuple]:
    rows = []
    for c in comparisons:
        a, b = cells[c.a].key, cells[c.b].key
        rows.append((f"{a.entry} vs {b.entry}", a.schedule, f"{pp(c.difference)}",
                     f"[{pp(c.ci_low)}, {pp(c.ci_high)}]", c.test, pvalue(c.pvalue), pvalue(c.pvalue_adjusted), pvalue(c.permutation_pvalue),
                     pct(c.minimum_detectable_difference), VERDICT_MARK[c.verdict]))
    return rows


def _per_track(result: AuditResult) -> list[str]:
    lines = ["## Cells and comparisons", ""]
    by_label = {c.label: c for c in result.cells}
    groups: dict[tuple, list[Cell]] = defaultdict(list)
    for cell in result.cells:
        groups[(cell.key.track, cell.key.target, cell.key.budget_epochs)].append(cell)
    compared: dict[tuple, list[Comparison]] = defaultdict(list)
    for c in result.comparisons:
        key = by_label[c.a].key
        compared[(key.track, key.target, key.budget_epochs)].append(c)
    for (track, target, budget), cells in groups.items():
        title = "no retraining" if budget == 0 else f"{budget} epochs"
        lines += [f"### {track} · {target} · {title}", ""]
        reproduced = [c for c in cells if c.reproduced]
        reported = [c for c in cells if not c.reproduced]
        header = ("entry", "schedule", "n", "test acc ± std", "95% CI", "interval", "MACs kept")
        if reproduced:
            lines += table(header, _cell_rows(reproduced), "llrrrll")
        if reported:
            lines += ["Reported (quoted, never pooled with the reproduced runs):", ""]
            lines += table(("entry", "schedule", "n", "test acc ± std", "95% CI", "interval", "MACs kept", "source"),
                           [(*row, c.key.source.removeprefix("reported: ")) for row, c in
                            zip(_cell_rows(reported), reported)], "llrrrlll")
        if compared[(track, target, budget)]:
            lines += table(("comparison", "schedule", "Δ (pp)", "95% CI (pp)", "test", "p", "q (BH)", "perm. p",
                            "detectable (pp)", "verdict"),
                           _comparison_rows(compared[(track, target, budget)], by_label), "llrrlrrrrl")
    return lines


def _aggregates(result: AuditResult) -> list[str]:
    if not result.method_aggregates:
        return []
    lines = ["## Across tracks (R13)", "",
             "Scores are accuracy changes from each run's dense model (pp), per task (track, target) at the largest "
             "shared budget under each method's best schedule on validation; intervals are stratified bootstrap "
             "(rliable).", ""]
    lines += table(("method", "tasks", "IQM (pp)", "95% CI (pp)"),
                   [(m.method, str(len(m.tasks)), pp(m.iqm.estimate), f"[{pp(m.iqm.ci_low)}, {pp(m.iqm.ci_high)}]")
                    for m in result.method_aggregates], "lrrr")
    if result.pair_aggregates:
        lines += table(("a", "b", "tasks", "P(a > b)", "95% CI"),
                       [(p.a, p.b, str(len(p.tasks)), f"{p.probability_of_improvement.estimate:.2f}",
                         f"[{p.probability_of_improvement.ci_low:.2f}, {p.probability_of_improvement.ci_high:.2f}]")
                        for p in result.pair_aggregates], "llrrr")
    return lines


def _plots(plots: Sequence[Plot]) -> list[str]:
    if not plots:
        return []
    lines = ["## Plots", ""]
    for plot in plots:
        lines += [f"### {plot.title}", "", f"![{plot.title}]({plot.name}.svg)", "", plot.caption, "",
                  f"([PNG]({plot.name}.png))", ""]
    return lines


def _skipped(result: AuditResult) -> list[str]:
    if not result.problems:
        return []
    return ["## Skipped files", "", "These files were not used:", ""] + [
        f"- `{p.path}`: {p.reason}" for p in result.problems] + [""]


def _rules(result: AuditResult) -> list[str]:
    config = result.config.as_dict()
    thresholds = ", ".join(f"`{k}` = {v}" for k, v in config.items())
    return ["## Rules", ""] + table(("rule", "title", "checks"), [(r.id, r.title, r.checks) for r in RULES.values()]) + [
        f"Thresholds: {thresholds}.", "", "See docs/audit.md for every rule's threshold, evidence and fix.", ""]


def render_markdown(result: AuditResult, leaderboard: Leaderboard, plots: Sequence[Plot]) -> str:
    lines = (_header(result) + _claims(result) + _findings(result) + leaderboard_markdown(leaderboard)
             + _aggregates(result) + _per_track(result) + _plots(plots) + _skipped(result) + _rules(result))
    return "\n".join(lines).rstrip("\n") + "\n"
