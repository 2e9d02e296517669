"""The leaderboard as a web page: ``bench leaderboard --html DIR`` writes ``DIR/index.html``.

One self-contained page -- inline CSS and a few lines of inline script, nothing fetched -- with a
section per track × target × budget (largest budget first; structured and unstructured rankings apart),
sortable columns (click a header; again to reverse), a filter box (every word must match a row:
method, schedule, verdict or rule), shared ranks shown as ``1=``, entries touched by a fail finding
marked with the rules that mark them, and each method linked to its submission report when one
exists under the results layout. The page holds no timestamp: the same audit writes the same bytes.
"""

from __future__ import annotations

import html
import os
from collections import defaultdict
from pathlib import Path
from typing import Mapping, Sequence

from harness.audit.engine import AuditResult
from harness.audit.findings import RULES
from harness.core.atomic import write_text_atomic
from harness.core.layout import ResultsLayout
from harness.publish.leaderboard import Entry, Leaderboard, Table
from harness.publish.report.anchors import anchors
from harness.publish.report.formatting import interval, pct, pp
from harness.publish.report.labels import budget_label

PAGE = "index.html"
RIGHT = ' class="r"'
VERDICT_CLASS = {"better": "v-better", "worse": "v-worse", "equivalent": "v-equivalent", "tie": "v-tie"}

CSS = """
:root { --line: #d0d7de; --muted: #57606a; }
* { box-sizing: border-box; }
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0; color: #1f2328;
       line-height: 1.4; font-size: 15px; }
header { position: sticky; top: 0; background: #fff; border-bottom: 1px solid var(--line); padding: .6rem 1.2rem;
         z-index: 2; }
header h1 { margin: 0 0 .3rem; font-size: 1.4rem; }
header p { margin: .2rem 0; color: var(--muted); font-size: .9rem; }
#filter { font: inherit; padding: .3rem .5rem; width: 28rem; max-width: 100%; border: 1px solid var(--line);
          border-radius: 6px; }
#shown { color: var(--muted); margin-left: .6rem; font-size: .9rem; }
main { max-width: 1200px; margin: 0 auto; padding: .4rem 1.2rem 3rem; }
nav { font-size: .85rem; margin: .6rem 0 .2rem; }
nav a { margin-right: .8rem; white-space: nowrap; }
section { margin: 1.2rem 0; scroll-margin-top: 11rem; }
section h2 { font-size: 1.15rem; border-bottom: 1px solid var(--line); padding-bottom: .2rem; margin: 0 0 .4rem; }
h3 { font-size: .95rem; margin: .7rem 0 .2rem; }
.note { color: var(--muted); font-size: .82rem; margin: .1rem 0 .3rem; }
table { border-collapse: collapse; font-size: .85rem; margin-bottom: .6rem; }
th, td { border: 1px solid var(--line); padding: .2rem .5rem; text-align: left; }
td.r, th.r { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f6f8fa; cursor: pointer; user-select: none; white-space: nowrap; }
th::after { content: " \\2195"; color: #b0b7bf; }
th[aria-sort="ascending"]::after { content: " \\2191"; color: #1f2328; }
th[aria-sort="descending"]::after { content: " \\2193"; color: #1f2328; }
tr.marked td { background: #fff4e5; }
td.v-better { color: #116329; font-weight: 600; }
td.v-worse { color: #a40e26; font-weight: 600; }
td.v-equivalent { color: #0550ae; }
td.v-tie { color: var(--muted); }
.flag { color: #9a6700; font-weight: 600; }
abbr { text-decoration: underline dotted; cursor: help; }
.legend { font-size: .82rem; color: var(--muted); }
.empty { color: var(--muted); font-style: italic; display: none; }
"""

SCRIPT = """
(function () {
  "use strict";
  function value(cell, numeric) {
    var v = cell.getAttribute("data-v");
    if (!numeric) { return (v === null ? cell.textContent : v).toLowerCase(); }
    var x = parseFloat(v);
    return isNaN(x) ? -Infinity : x;
  }
  function sortBy(th) {
    var table = th.closest("table"), body = table.tBodies[0];
    var column = Array.prototype.indexOf.call(th.parentNode.children, th);
    var numeric = th.getAttribute("data-type") === "num";
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(th.parentNode.children, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = value(a.cells[column], numeric), y = value(b.cells[column], numeric);
      if (x < y) { return ascending ? -1 : 1; }
      if (x > y) { return ascending ? 1 : -1; }
      return a.getAttribute("data-order") - b.getAttribute("data-order");
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  function filter() {
    var words = document.getElementById("filter").value.toLowerCase().split(/\\s+/).filter(Boolean);
    var shown = 0, total = 0;
    document.querySelectorAll("section.board").forEach(function (section) {
      var visible = 0;
      section.querySelectorAll("tbody tr").forEach(function (row) {
        var text = row.getAttribute("data-search");
        var match = words.every(function (w) { return text.indexOf(w) >= 0; });
        row.hidden = !match;
        total += 1;
        if (match) { visible += 1; }
      });
      section.querySelectorAll(".family").forEach(function (block) {
        block.hidden = block.querySelectorAll("tbody tr:not([hidden])").length === 0;
      });
      section.hidden = visible === 0;
      shown += visible;
    });
    document.getElementById("shown").textContent = shown + " of " + total + " entries";
    document.querySelector(".empty").style.display = shown === 0 ? "block" : "none";
  }
  document.querySelectorAll("table.board-table th").forEach(function (th) {
    th.addEventListener("click", function () { sortBy(th); });
    th.setAttribute("tabindex", "0");
    th.addEventListener("keydown", function (e) { if (e.key === "Enter") { sortBy(th); } });
  });
  document.getElementById("filter").addEventListener("input", filter);
  filter();
}());
"""

COLUMNS = (("rank", "num", False), ("method", "text", False), ("schedule (val)", "text", False), ("n", "num", True),
           ("test acc %", "num", True), ("± std", "num", True), ("95% CI", "num", True),
           ("vs random twin (pp)", "num", True), ("twin verdict", "text", False), ("MACs after", "num", True),
           ("marked", "text", False))


def submission_links(layout: ResultsLayout | None, out_dir: Path, board: Leaderboard) -> dict[tuple[str, str], str]:
    """(track, method) -> relative link to that method's submission report, where one exists."""
    if layout is None:
        return {}
    links = {}
    for ranking in board.tables:
        for entry in ranking.entries:
            key = (ranking.track, entry.method)
            if key in links:
                continue
            folder = layout.submission(ranking.track, entry.method)
            for name in ("report.html", "REPORT.md"):
                if (folder / name).is_file():
                    links[key] = Path(os.path.relpath(folder / name, out_dir)).as_posix()
                    break
    return links


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _num(value: float | None, scale: float = 100.0) -> str:
    return "" if value is None or value != value else f"{value * scale:.6g}"


def _rules_cell(flags: Sequence[str]) -> tuple[str, str]:
    if not flags:
        return "", ""
    parts = [f'<abbr title="{_esc(rule + ": " + RULES[rule].title + " -- " + RULES[rule].checks)}">{_esc(rule)}</abbr>'
             if rule in RULES else _esc(rule) for rule in flags]
    return f'<span class="flag">⚠ fail: {", ".join(parts)}</span>', " ".join(flags)


def _row(entry: Entry, order: int, track: str, links: Mapping[tuple[str, str], str]) -> str:
    rank = f"{entry.rank}=" if entry.tied else str(entry.rank)
    link = links.get((track, entry.method))
    method = f'<a href="{_esc(link)}">{_esc(entry.method)}</a>' if link else _esc(entry.method)
    gap = pp(entry.twin_gap) if entry.twin_gap is not None else "no twin"
    gap_ci = f" {interval(*entry.twin_gap_ci)}" if entry.twin_gap_ci else ""
    verdict = entry.twin_verdict or ("–" if entry.twin_gap is None else "")
    flags, flag_text = _rules_cell(entry.flags)
    macs = f"{entry.macs_after:,.0f}" if entry.macs_after is not None else "–"
    search = " ".join([entry.method, entry.schedule, verdict, flag_text, "marked" if entry.flags else "", rank])
    cells = [
        f'<td class="r" data-v="{entry.rank}">{rank}</td>',
        f'<td data-v="{_esc(entry.method)}">{method}</td>',
        f"<td>{_esc(entry.schedule_shown)}</td>",
        f'<td class="r" data-v="{entry.n}">{entry.n}</td>',
        f'<td class="r" data-v="{_num(entry.mean)}">{pct(entry.mean)}</td>',
        f'<td class="r" data-v="{_num(entry.std)}">{pct(entry.std)}</td>',
        f'<td class="r" data-v="{_num(entry.ci_low)}">{interval(entry.ci_low, entry.ci_high)}</td>',
        f'<td class="r" data-v="{_num(entry.twin_gap)}">{gap}{gap_ci}</td>',
        f'<td class="{VERDICT_CLASS.get(entry.twin_verdict or "", "")}">{_esc(verdict)}</td>',
        f'<td class="r" data-v="{_num(entry.macs_after, 1.0)}">{macs}</td>',
        f'<td data-v="{_esc(flag_text)}">{flags}</td>',
    ]
    css = ' class="marked"' if entry.flags else ""
    return f'<tr{css} data-order="{order}" data-search="{_esc(search.lower())}">' + "".join(cells) + "</tr>"


def _table(ranking: Table, links: Mapping[tuple[str, str], str]) -> str:
    head = "".join(f'<th data-type="{kind}"{RIGHT if right else ""}>{_esc(name)}</th>' for name, kind, right in COLUMNS)
    rows = "\n".join(_row(e, i, ranking.track, links) for i, e in enumerate(ranking.entries))
    detectable = ranking.detectable
    note = (f"Detectable difference between entries: {pct(detectable[0])}–{pct(detectable[1])} pp."
            if detectable else "Detectable difference: – (fewer than two entries, or too few seeds).")
    return (f'<div class="family"><h3>{_esc(ranking.family)}</h3><p class="note">{_esc(note)}</p>\n'
            f'<table class="board-table"><thead><tr>{head}</tr></thead>\n<tbody>\n{rows}\n</tbody></table></div>')


def render_page(board: Leaderboard, result: AuditResult | None = None,
                links: Mapping[tuple[str, str], str] | None = None) -> str:
    """The page's HTML."""
    links = links or {}
    groups: dict[tuple[str, str, int], list[Table]] = defaultdict(list)
    for ranking in sorted(board.tables, key=lambda t: (t.track, t.target, -t.budget)):  # largest budget first
        groups[(ranking.track, ranking.target, ranking.budget)].append(ranking)
    titles = [f"{track} · {target} · {budget_label(budget)}" for track, target, budget in groups]
    ids = anchors(titles)
    sections = []
    for (key, rankings), title, anchor in zip(groups.items(), titles, ids):
        track, target, budget = key
        tables = "\n".join(_table(r, links) for r in rankings)
        sections.append(f'<section class="board" id="{anchor}" data-track="{_esc(track)}" data-target="{_esc(target)}" '
                        f'data-budget="{budget}">\n<h2>{_esc(title)}</h2>\n{tables}\n</section>')
    nav = " ".join(f'<a href="#{a}">{_esc(t)}</a>' for t, a in zip(titles, ids))
    n_entries = sum(len(r.entries) for r in board.tables)
    about = ""
    if result is not None:
        records = sum(len(c.records) for c in result.cells if c.reproduced)
        about = (f"{records} reproduced runs of {', '.join(result.tracks) or '–'}; audit seed {result.seed}, "
                 f"harness {result.version}; {result.count('fail')} fail findings. ")
    body = "\n".join(sections) if sections else '<p>No reproduced entries to rank.</p>'
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>prune-bench leaderboard</title>
<style>{CSS}</style>
</head>
<body>
<header>
<h1>prune-bench leaderboard</h1>
<p>{_esc(about)}Each method under its best schedule chosen on <em>validation</em> accuracy, ranked by mean test accuracy at
equal budget; structured and unstructured methods apart. <code>1=</code>: a shared rank (rank = 1 + the reference
methods the audit's Holm-corrected verdicts find better than the entry; only references move ranks). Marked rows (⚠) are touched by a fail finding, listed, never hidden.
The budget is each run's total training: a method that spends part of it itself shows its split in epochs beside the schedule, <code>ft (5+5)</code> = before pruning + after.</p>
<label for="filter">Filter</label> <input id="filter" type="search" placeholder="method, schedule, verdict or rule, e.g. clr better"
 autocomplete="off"><span id="shown">{n_entries} entries</span>
<nav>{nav}</nav>
</header>
<main>
<p class="empty">No entry matches the filter.</p>
{body}
<p class="legend">Columns sort on click. Intervals are 95%; differences in percentage points (pp). MACs count one
multiply-add per MAC at batch 1 (masks keep every MAC).</p>
</main>
<script>{SCRIPT}</script>
</body>
</html>
"""


def write_leaderboard_page(board: Leaderboard, out_dir: str | Path, result: AuditResult | None = None,
                           layout: ResultsLayout | None = None) -> Path:
    """Write ``out_dir/index.html`` (created if needed) and return its path; methods link to their
    submission reports found under ``layout``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    page = out / PAGE
    write_text_atomic(page, render_page(board, result, submission_links(layout, out, board)))
    return page
