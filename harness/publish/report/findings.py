"""Findings grouped by rule, the most severe rule first: what the rule checks and its fix said once,
then its findings -- a long list collapsed under a breakdown by method and by schedule."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Sequence

from harness.audit.comparisons import Cell
from harness.audit.engine import AuditResult
from harness.audit.findings import RULES, SEVERITIES, Finding
from harness.publish.report.formatting import collapsed, section, table

MAX_CELLS_LISTED = 8
OPEN_FINDINGS = 12
"""A rule with more findings than this shows its table collapsed, under a breakdown by method."""


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
    lines = section(f"{rule} · {RULES[rule].title} ({counts})", level=3) + [f"*Checks:* {RULES[rule].checks}."]
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


def findings_by_rule(result: AuditResult) -> list[str]:
    lines = section("Findings by rule")
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
