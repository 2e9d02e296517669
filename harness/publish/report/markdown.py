"""``REPORT.md``: summary first -- the headline numbers, then per target each method against its
random twin under every schedule and budget, the accuracy-vs-budget view of Le & Hua's Figure 2,
the findings grouped by rule (the fix said once), the leaderboard -- and only then, collapsed, every
cell and comparison with intervals, corrected p-values and the detectable difference.

Accuracies are shown in percent; differences in percentage points (pp). Every heading has an
anchor (GitHub's: lower case, punctuation dropped, spaces to hyphens, repeats numbered) and the
contents at the top link to them. The body holds no timestamp, so the same audit renders to the
same bytes.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Iterable, Sequence

from harness.audit.comparisons import Cell, Comparison, schedule_order
from harness.audit.engine import AuditResult
from harness.audit.findings import RULES, SEVERITIES, Finding
from harness.publish.leaderboard import Leaderboard, Table
from harness.publish.report.labels import budget_label

if TYPE_CHECKING:
    from harness.publish.report.plots.canvas import Plot

MAX_CELLS_LISTED = 8
OPEN_FINDINGS = 12
"""A rule with more findings than this shows its table collapsed, under a breakdown by method."""
VERDICT_MARK = {"better": "**better**", "worse": "**worse**", "tie": "tie", "equivalent": "equivalent"}
VERDICT_SYMBOL = {"better": "▲", "worse": "▼", "equivalent": "≈", "tie": "○"}
"""The first character of a matrix cell; report.html colours the cell by it."""
FAIL_MARK = "⚠"
FAMILY_ORDER = {"structured": 0, "unstructured": 1}


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


def collapsed(summary: str, body: list[str]) -> list[str]:
    """A ``<details>`` block (GitHub renders the Markdown inside; report.html keeps it collapsed)."""
    return ["<details>", f"<summary>{summary}</summary>", "", *body, "</details>", ""]


# -- anchors ----------------------------------------------------------------------------------------
_NOT_SLUG = re.compile(r"[^\w\- ]", re.UNICODE)
_MARKUP = re.compile(r"[*`]|\[([^\]]*)\]\([^)]*\)")


def slug(text: str) -> str:
    """GitHub's heading anchor: markup removed, lower case, punctuation dropped, spaces to hyphens."""
    plain = _MARKUP.sub(lambda m: m.group(1) or "", text)
    return _NOT_SLUG.sub("", plain.strip().lower()).replace(" ", "-")


def anchors(headings: Iterable[str]) -> list[str]:
    """Unique anchors in order of appearance (a repeat gets ``-1``, ``-2``, ... as on GitHub)."""
    seen: Counter[str] = Counter()
    out = []
    for heading in headings:
        base = slug(heading)
        out.append(base if not seen[base] else f"{base}-{seen[base]}")
        seen[base] += 1
    return out


def headings(lines: Sequence[str]) -> list[tuple[int, str]]:
    """(level, text) of every Markdown heading, in order."""
    found = []
    for line in lines:
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            found.append((level, line[level:].strip()))
    return found


TITLE = "prune-bench audit report"


def _shorter(links: list[str]) -> list[str]:
    """Subsection links without the words they all start with (``digits-cnn · ``), when they share some."""
    texts = [link[1:link.index("](")] for link in links]
    prefix = texts[0].split(" · ")[0] + " · "
    if len(texts) < 2 or not all(t.startswith(prefix) and len(t) > len(prefix) for t in texts):
        return links
    return [f"[{t[len(prefix):]}]({link[link.index('](') + 2:-1]})" for t, link in zip(texts, links)]


def contents(lines: Sequence[str], before: Sequence[str] = (TITLE, "Contents")) -> list[str]:
    """The table of contents: one item per section, its subsections linked on the same line;
    ``before`` are the headings above it (they take part in numbering repeated anchors)."""
    found = headings(lines)
    ids = anchors([*before, *(text for _, text in found)])[len(before):]
    items: list[tuple[str, list[str]]] = []
    for (level, text), anchor in zip(found, ids):
        if level == 2:
            items.append((f"[{text}](#{anchor})", []))
        elif level == 3 and items:
            items[-1][1].append(f"[{text}](#{anchor})")
    body = [f"- {head}" + (": " + " · ".join(_shorter(subs)) if subs else "") for head, subs in items]
    return ["## Contents", "", *body, ""]


# -- summary ----------------------------------------------------------------------------------------
def _reported_tracks(result: AuditResult) -> list[str]:
    return sorted({c.key.track for c in result.cells if not c.reproduced})


def _tracks_line(result: AuditResult) -> str:
    reproduced = ", ".join(result.tracks) or "–"
    reported = _reported_tracks(result)
    return f"- tracks: {reproduced} (reproduced)" + (f"; {', '.join(reported)} (reported)" if reported else "")


def _twin_counts(result: AuditResult) -> Counter[str]:
    return Counter(c.verdict for c in result.comparisons if c.kind == "twin")


def _leaders(leaderboard: Leaderboard) -> list[str]:
    """Per track, target and family, the leaders at the largest budget."""
    largest: dict[tuple[str, str, str], Table] = {}
    for board in leaderboard.tables:
        key = (board.track, board.target, board.family)
        if key not in largest or board.budget > largest[key].budget:
            largest[key] = board
    lines = []
    for (track, target, family), board in sorted(largest.items()):
        top = [e for e in board.entries if e.rank == 1]
        if not top:
            continue
        names = ", ".join(f"{e.method} ({e.schedule}, {pct(e.mean)}%)" for e in top[:4])
        more = f" and {len(top) - 4} more" if len(top) > 4 else ""
        shared = " share rank 1" if len(top) > 1 else " leads"
        lines.append(f"  - {track} · {target} · {budget_label(board.budget)} · {family}: {names}{more}{shared}")
    return lines


def _summary(result: AuditResult, leaderboard: Leaderboard) -> list[str]:
    n_records = sum(len(c.records) for c in result.cells)
    reported = sum(len(c.records) for c in result.cells if not c.reproduced)
    status = {0: "0 (no fail findings)", 1: "1 (fail findings present)"}[result.exit_code]
    twins = _twin_counts(result)
    total = sum(twins.values())
    twin_line = (f"- method vs its random twin: {total} comparisons -- **{twins['better']} better**, "
                 f"{twins['equivalent']} equivalent, {twins['tie']} tie, **{twins['worse']} worse**"
                 if total else "- method vs its random twin: no comparisons (no twins ran)")
    rules = Counter(f.rule for f in result.findings)
    by_rule = ", ".join(f"{rule} ×{rules[rule]}" for rule in sorted(rules, key=lambda r: int(r[1:])))
    leaders = _leaders(leaderboard)
    lines = [
        "## Summary", "",
        f"- records: **{n_records}** ({n_records - reported} reproduced, {reported} reported) in "
        f"**{len(result.cells)} cells**; {len(result.problems)} files skipped",
        _tracks_line(result),
        f"- findings: **{result.count('fail')} fail**, {result.count('warn')} warn, {result.count('info')} info"
        + (f" ({by_rule})" if by_rule else "") + f"; exit status {status}",
        twin_line,
    ]
    if result.claims:
        verdicts = Counter(c.verdict for c in result.claims)
        lines.append("- claims: " + ", ".join(f"{verdicts[v]} {v}" for v in ("supported", "not supported",
                                                                             "inconclusive") if verdicts[v]))
    if leaders:
        lines += ["- leaders at the largest budget (best schedule on validation):", *leaders]
    lines += [
        f"- harness version: `{result.version}`; audit seed: `{result.seed}` (every bootstrap and sampled "
        "permutation derives from it)",
        "",
        "Accuracies are test accuracy in percent (mean over seeds) with 95% intervals (each cell's interval method "
        "is in its table; see docs/audit.md); differences are in percentage points (pp). A difference is **better**/**worse** "
        "when its test, Holm-corrected within the method's own pre-declared family (its random twin and the reference "
        "methods before it), is significant; *equivalent* when TOST shows it inside "
        f"±{pct(result.config.equivalence_margin)} pp; otherwise a tie. The minimum detectable difference (power "
        f"{result.config.power}) and the seeds that would detect the observed gap are shown beside every comparison.", "",
    ]
    return lines


def _claims(result: AuditResult) -> list[str]:
    if not result.claims:
        return []
    rows = [(c.name, c.statement, f"**{c.verdict}**", c.reason, ", ".join(c.rules_broken) or "–") for c in result.claims]
    return ["## Claims", ""] + table(("claim", "statement", "verdict", "why", "rules broken"), rows)


# -- method vs twin matrix ----------------------------------------------------------------------------
def _fail_labels(result: AuditResult) -> set[str]:
    return {label for f in result.findings if f.severity == "fail" for label in f.cells}


def _twin_matrix(result: AuditResult) -> list[str]:
    cells = {c.label: c for c in result.cells}
    twin = [c for c in result.comparisons if c.kind == "twin"]
    lines = ["## Method vs random twin", "",
             "Each method against its random twin (the same number of channels or weights kept in every layer, "
             "chosen at random) under the same schedule and budget: the difference in mean test accuracy (pp) and "
             f"the corrected verdict -- {VERDICT_SYMBOL['better']} better, {VERDICT_SYMBOL['equivalent']} "
             f"equivalent, {VERDICT_SYMBOL['tie']} tie, {VERDICT_SYMBOL['worse']} worse; {FAIL_MARK} marks an "
             "entry touched by a fail finding. Columns are schedule@budget (`none@0`: no retraining).", ""]
    if not twin:
        return lines + ["No method has a random twin in these records.", ""]
    by_target: dict[tuple[str, str], list[Comparison]] = defaultdict(list)
    for c in twin:
        key = cells[c.a].key
        by_target[(key.track, key.target)].append(c)
    failing = _fail_labels(result)
    for (track, target), comparisons in sorted(by_target.items()):
        columns = sorted({(cells[c.a].key.schedule, cells[c.a].key.budget_epochs) for c in comparisons},
                         key=lambda sb: (sb[1] > 0, schedule_order(sb[0]), sb[1]))
        rows_by: dict[tuple[int, str], dict[tuple[str, int], str]] = defaultdict(dict)
        for c in comparisons:
            a = cells[c.a]
            mark = f" {FAIL_MARK}" if {c.a, c.b} & failing else ""
            rows_by[(FAMILY_ORDER.get(a.family, 2), a.key.method)][(a.key.schedule, a.key.budget_epochs)] = \
                f"{VERDICT_SYMBOL[c.verdict]} {pp(c.difference)}{mark}"
        rows = []
        for (family, method), values in sorted(rows_by.items()):
            rows.append((method, ("structured", "unstructured", "other")[family],
                         *(values.get(column, "–") for column in columns)))
        lines += [f"### {track} · {target}", ""]
        lines += table(("method", "family", *(f"{s}@{b}" for s, b in columns)), rows, "ll" + "r" * len(columns))
    return lines


# -- findings by rule ---------------------------------------------------------------------------------
def _cells_text(cells: Sequence[str], limit: int = MAX_CELLS_LISTED) -> str:
    if not cells:
        return "–"
    shown = ", ".join(f"`{c}`" for c in cells[:limit])
    more = f" and {len(cells) - limit} more" if len(cells) > limit else ""
    return f"{shown}{more}"


def _breakdown(findings: Sequence[Finding], cells: dict[str, Cell]) -> str:
    methods: Counter[str] = Counter()
    schedules: Counter[str] = Counter()
    for f in findings:
        cell = next((cells[label] for label in f.cells if label in cells), None)
        if cell is not None:
            methods[cell.key.method] += 1
            schedules[f"{cell.key.schedule}@{cell.key.budget_epochs}"] += 1
    if not methods:
        return ""
    by_method = ", ".join(f"{m} {n}" for m, n in sorted(methods.items(), key=lambda mn: (-mn[1], mn[0])))
    by_schedule = ", ".join(f"{s} {n}" for s, n in sorted(schedules.items(), key=lambda sn: (-sn[1], sn[0])))
    return f"By method: {by_method}. By schedule and budget: {by_schedule}."


def _rule_section(rule: str, findings: Sequence[Finding], cells: dict[str, Cell]) -> list[str]:
    severities = Counter(f.severity for f in findings)
    counts = ", ".join(f"{severities[s]} {s}" for s in SEVERITIES if severities[s])
    lines = [f"### {rule} · {RULES[rule].title} ({counts})", "", f"*Checks:* {RULES[rule].checks}."]
    fixes = list(dict.fromkeys(f.fix for f in findings if f.fix))
    if len(fixes) == 1:
        lines += [f"*Fix:* {fixes[0]}", ""]
    elif fixes:
        lines += ["*Fixes:*", ""] + [f"- {fix}" for fix in fixes] + [""]
    else:
        lines.append("")
    rows = []
    for f in findings:
        others = [c for c in f.cells if c not in f.message]
        rows.append((f.severity, f.message, _cells_text(others, 4)))
    body = table(("severity", "finding", "other cells"), rows)
    if len(findings) > OPEN_FINDINGS:
        breakdown = _breakdown(findings, cells)
        lines += ([breakdown, ""] if breakdown else []) + collapsed(f"all {len(findings)} {rule} findings", body)
    else:
        lines += body
    return lines


def _findings(result: AuditResult) -> list[str]:
    lines = ["## Findings by rule", ""]
    if not result.findings:
        return lines + ["No rule fired.", ""]
    cells = {c.label: c for c in result.cells}
    by_rule: dict[str, list[Finding]] = defaultdict(list)
    for f in result.findings:
        by_rule[f.rule].append(f)
    order = sorted(by_rule, key=lambda r: (min(SEVERITIES.index(f.severity) for f in by_rule[r]), int(r[1:])))
    for rule in order:
        lines += _rule_section(rule, by_rule[rule], cells)
    return lines


# -- leaderboard ----------------------------------------------------------------------------------
def _leaderboard_table(board: Table) -> list[str]:
    detectable = board.detectable
    note = (f"Detectable difference between entries: {pct(detectable[0])}–{pct(detectable[1])} pp."
            if detectable else "Detectable difference: – (fewer than two entries, or too few seeds).")
    rows = []
    for e in board.entries:
        rank = f"{e.rank}=" if e.tied else str(e.rank)
        flags = f"{FAIL_MARK} fail: {', '.join(e.flags)}" if e.flags else ""
        twin = f"{pp(e.twin_gap)} {interval(*e.twin_gap_ci) if e.twin_gap_ci else ''} {e.twin_verdict or ''}".strip() \
            if e.twin_gap is not None else "no twin"
        rows.append((rank, e.method, e.schedule, str(e.n), f"{pct(e.mean)} ± {pct(e.std)}", interval(e.ci_low, e.ci_high),
                     twin, flags))
    return [f"### {board.track} · {board.target} · {budget_label(board.budget)} · {board.family}", "", note, ""] + table(
        ("rank", "method", "best schedule (val)", "n", "test acc ± std", "95% CI", "gap to random twin (pp)", "marked"),
        rows, "lllrrrll")


def leaderboard_markdown(leaderboard: Leaderboard) -> list[str]:
    lines = ["## Leaderboard", "",
             "Ranked by mean test accuracy under each method's best schedule (chosen on validation accuracy) at "
             "equal budget; structured and unstructured (masked) methods are ranked apart. An entry's rank is one more "
             "than the number of reference methods the audit's verdicts find better than it (Holm within each "
             "method's family, as in the comparison tables); `2=` marks a shared rank. Only references move ranks, "
             "so no other submission changes an entry's rank. Entries touched by a fail finding are marked, not "
             "hidden.", ""]
    if not leaderboard.tables:
        return lines + ["No reproduced entries to rank.", ""]
    for board in leaderboard.tables:
        lines += _leaderboard_table(board)
    return lines


def _leaderboard_section(leaderboard: Leaderboard) -> list[str]:
    """The leaderboard in the report: the largest budget of each target open, the others collapsed."""
    lines = leaderboard_markdown(leaderboard)
    if not leaderboard.tables:
        return lines
    largest: dict[tuple[str, str], int] = {}
    for board in leaderboard.tables:
        key = (board.track, board.target)
        largest[key] = max(largest.get(key, board.budget), board.budget)
    head = lines[:4]
    out = list(head)
    for board in leaderboard.tables:
        body = _leaderboard_table(board)
        if board.budget == largest[(board.track, board.target)]:
            out += body
        else:
            out += [body[0], ""] + collapsed(f"{len(board.entries)} entries", body[2:])
    return out


# -- cells and comparisons ----------------------------------------------------------------------------
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


def _per_track(result: AuditResult) -> list[str]:
    lines = ["## Cells and comparisons", "",
             "Every cell (one method or twin, target, schedule and budget) with its seeds, and every comparison "
             "with its test (paired on the runs two cells share, else Welch), raw p-value and Holm p-value within "
             "the method's own family (its twin and the reference methods before it), permutation check, the "
             "detectable difference and the seeds that would detect the observed gap; collapsed, one block per "
             "track, target and budget.", ""]
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
        lines += [f"### {track} · {target} · {budget_label(budget)}", ""] + collapsed(summary, body)
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


# -- plots ----------------------------------------------------------------------------------------
def _plot_lines(plot: Plot) -> list[str]:
    return [f"### {plot.title}", "", f"![{plot.title}]({plot.name}.svg)", "", plot.caption, "",
            f"([PNG]({plot.name}.png))", ""]


def _retraining_plots(plots: Sequence[Plot]) -> list[str]:
    mine = [p for p in plots if p.kind == "retraining"]
    if not mine:
        return []
    lines = ["## Accuracy vs retraining budget", "",
             "The view of Le & Hua's Figure 2: per schedule, each method's test accuracy as the retraining budget "
             "grows, beside its random twin's.", ""]
    for plot in mine:
        lines += _plot_lines(plot)
    return lines


def _other_plots(plots: Sequence[Plot]) -> list[str]:
    mine = [p for p in plots if p.kind != "retraining"]
    if not mine:
        return []
    lines = ["## More plots", ""]
    for plot in mine:
        lines += _plot_lines(plot)
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
    body = (_summary(result, leaderboard) + _claims(result) + _twin_matrix(result) + _retraining_plots(plots)
            + _findings(result) + _leaderboard_section(leaderboard) + _other_plots(plots) + _aggregates(result)
            + _per_track(result) + _skipped(result) + _rules(result))
    lines = [f"# {TITLE}", ""] + contents(body) + body
    return "\n".join(lines).rstrip("\n") + "\n"
