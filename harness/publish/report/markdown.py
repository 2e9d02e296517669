"""``REPORT.md``: summary first -- the headline numbers, then per target each method against its
random twin under every schedule and budget, the accuracy-vs-budget view of Le & Hua's Figure 2,
the findings grouped by rule (the fix said once), the leaderboard -- and only then, collapsed, every
cell and comparison with intervals, corrected p-values and the detectable difference.

This module sets that order and writes the short sections (plots, cross-track aggregates, skipped
files, rules); each longer section has its own module. Accuracies are shown in percent; differences
in percentage points (pp). Every heading has an anchor and the contents at the top link to them.
The body holds no timestamp, so the same audit renders to the same bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from harness.audit.engine import AuditResult
from harness.audit.findings import RULES
from harness.publish.leaderboard import Leaderboard
from harness.publish.report.anchors import contents
from harness.publish.report.cell_tables import cells_and_comparisons
from harness.publish.report.findings import findings_by_rule
from harness.publish.report.formatting import pp, section, table
from harness.publish.report.leaderboard_tables import leaderboard_section
from harness.publish.report.summary import claims, summary, twin_matrix

if TYPE_CHECKING:
    from harness.publish.report.plots.canvas import Plot

TITLE = "prune-bench audit report"


def _aggregates(result: AuditResult) -> list[str]:
    if not result.method_aggregates:
        return []
    lines = section("Across tracks (R13)",
                    "Scores are accuracy changes from each run's dense model (pp), per task (track, target) at the "
                    "largest shared budget under each method's best schedule on validation; intervals are stratified "
                    "bootstrap (rliable).")
    lines += table(("method", "tasks", "IQM (pp)", "95% CI (pp)"),
                   [(m.method, str(len(m.tasks)), pp(m.iqm.estimate), f"[{pp(m.iqm.ci_low)}, {pp(m.iqm.ci_high)}]")
                    for m in result.method_aggregates], "lrrr")
    if result.pair_aggregates:
        lines += table(("a", "b", "tasks", "P(a > b)", "95% CI"),
                       [(p.a, p.b, str(len(p.tasks)), f"{p.probability_of_improvement.estimate:.2f}",
                         f"[{p.probability_of_improvement.ci_low:.2f}, {p.probability_of_improvement.ci_high:.2f}]")
                        for p in result.pair_aggregates], "llrrr")
    return lines


def _plot_lines(plot: Plot) -> list[str]:
    return section(plot.title, f"![{plot.title}]({plot.name}.svg)", plot.caption, f"([PNG]({plot.name}.png))",
                   level=3)


def _retraining_plots(plots: Sequence[Plot]) -> list[str]:
    mine = [p for p in plots if p.kind == "retraining"]
    if not mine:
        return []
    lines = section("Accuracy vs retraining budget",
                    "The view of Le & Hua's Figure 2: per schedule, each method's test accuracy as the retraining "
                    "budget grows, beside its random twin's.")
    for plot in mine:
        lines += _plot_lines(plot)
    return lines


def _other_plots(plots: Sequence[Plot]) -> list[str]:
    mine = [p for p in plots if p.kind != "retraining"]
    if not mine:
        return []
    lines = section("More plots")
    for plot in mine:
        lines += _plot_lines(plot)
    return lines


def _skipped(result: AuditResult) -> list[str]:
    if not result.problems:
        return []
    return section("Skipped files", "These files were not used:") + [
        f"- `{p.path}`: {p.reason}" for p in result.problems] + [""]


def _rules(result: AuditResult) -> list[str]:
    config = result.config.as_dict()
    thresholds = ", ".join(f"`{k}` = {v}" for k, v in config.items())
    return section("Rules") + table(("rule", "title", "checks"), [(r.id, r.title, r.checks) for r in RULES.values()]) + [
        f"Thresholds: {thresholds}.", "", "See docs/audit.md for every rule's threshold, evidence and fix.", ""]


def render_markdown(result: AuditResult, leaderboard: Leaderboard, plots: Sequence[Plot]) -> str:
    body = (summary(result, leaderboard) + claims(result) + twin_matrix(result) + _retraining_plots(plots)
            + findings_by_rule(result) + leaderboard_section(leaderboard) + _other_plots(plots) + _aggregates(result)
            + cells_and_comparisons(result) + _skipped(result) + _rules(result))
    lines = [f"# {TITLE}", ""] + contents(body, before=(TITLE, "Contents")) + body
    return "\n".join(lines).rstrip("\n") + "\n"
