"""What a reader of REPORT.md sees first: the headline numbers (records, findings, twin verdicts,
leaders, claims) and the method-vs-random-twin matrix per target, one glance per comparison."""

from __future__ import annotations

from collections import Counter, defaultdict

from harness.audit.comparisons import Comparison, schedule_order
from harness.audit.engine import AuditResult
from harness.publish.leaderboard import Leaderboard, Table
from harness.publish.report.formatting import (
    FAIL_MARK,
    VERDICT_SYMBOL,
    pct,
    pp,
    section,
    table,
)
from harness.publish.report.labels import budget_label

FAMILY_ORDER = {"structured": 0, "unstructured": 1}


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


def summary(result: AuditResult, leaderboard: Leaderboard) -> list[str]:
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
    lines = section("Summary") + [
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


def claims(result: AuditResult) -> list[str]:
    if not result.claims:
        return []
    rows = [(c.name, c.statement, f"**{c.verdict}**", c.reason, ", ".join(c.rules_broken) or "–") for c in result.claims]
    return section("Claims") + table(("claim", "statement", "verdict", "why", "rules broken"), rows)


def _fail_labels(result: AuditResult) -> set[str]:
    return {label for f in result.findings if f.severity == "fail" for label in f.cells}


def twin_matrix(result: AuditResult) -> list[str]:
    cells = {c.label: c for c in result.cells}
    twin = [c for c in result.comparisons if c.kind == "twin"]
    lines = section(
        "Method vs random twin",
        "Each method against its random twin (the same number of channels or weights kept in every layer, "
        "chosen at random) under the same schedule and budget: the difference in mean test accuracy (pp) and "
        f"the corrected verdict -- {VERDICT_SYMBOL['better']} better, {VERDICT_SYMBOL['equivalent']} "
        f"equivalent, {VERDICT_SYMBOL['tie']} tie, {VERDICT_SYMBOL['worse']} worse; {FAIL_MARK} marks an "
        "entry touched by a fail finding. Columns are schedule@budget (`none@0`: no retraining).")
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
        lines += section(f"{track} · {target}", level=3)
        lines += table(("method", "family", *(f"{s}@{b}" for s, b in columns)), rows, "ll" + "r" * len(columns))
    return lines
