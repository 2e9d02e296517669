"""``bench audit``, ``bench leaderboard`` and ``bench import-reported``: the audit, its ranking,
and numbers quoted from papers."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

import typer

from harness.cli import common
from harness.core.layout import ResultsLayout

if TYPE_CHECKING:
    from harness.audit.engine import AuditResult
    from harness.publish.leaderboard import Leaderboard
    from harness.run.record import RecordProblem

SEVERITY_STYLE = {"fail": "bold red", "warn": "yellow", "info": "dim"}
VERDICT_STYLE = {"supported": "green", "not supported": "red", "inconclusive": "yellow"}


def _skipped(problems: Sequence[RecordProblem]) -> None:
    for problem in problems:
        common.err.print(f"skipped {problem.path}: {problem.reason}", highlight=False, soft_wrap=True)


@common.user_errors
def audit(
    results: common.ResultsDir = common.DEFAULT_RESULTS,
    track: common.OneTrack = None,
    claims: Optional[Path] = typer.Option(None, help="Claims to judge (TOML or JSON)."),
    seed: common.StatsSeed = 0,
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Report folder (default: RESULTS/TRACK/report "
                                                               "or RESULTS/report)."),
    as_json: common.AsJson = False,
) -> None:
    """Audit the records: statistics, fairness rules R1-R13, claims; write REPORT.md, report.html,
    audit.json and plots. Exit status 0 when clean, 1 when a finding fails, 2 for unusable input."""
    from harness.audit import AuditConfig, audit_results
    from harness.publish.leaderboard import build_leaderboard
    from harness.publish.report import write_report
    from harness.publish.report.payload import audit_payload

    layout = ResultsLayout(results)
    result = audit_results(layout, track, claims, config=AuditConfig(seed=seed))
    _skipped(result.problems)
    folder = out_dir or layout.report(track)
    write_report(result, folder, plot_cache=layout.plot_cache(), payload_memo=layout.payload_memo(track))
    if as_json:
        common.print_json(audit_payload(result, build_leaderboard(result)))
    else:
        _print_summary(result, folder)
    raise typer.Exit(result.exit_code)


def _print_summary(result: AuditResult, folder: Path) -> None:
    common.out.print(f"[bold]audit[/] of {len(result.cells)} cells ({', '.join(result.tracks)}), seed {result.seed}, "
                     f"harness {result.version}: {result.count('fail')} fail, {result.count('warn')} warn, "
                     f"{result.count('info')} info", highlight=False)
    for claim in result.claims:
        broken = f" (breaks {', '.join(claim.rules_broken)})" if claim.rules_broken else ""
        common.out.print(f"  claim [bold]{claim.name}[/]: [{VERDICT_STYLE[claim.verdict]}]{claim.verdict}[/] - "
                         f"{claim.reason}{broken}", highlight=False)
    for finding in result.findings:
        if finding.severity != "info":
            common.out.print(f"  [{SEVERITY_STYLE[finding.severity]}]{finding.severity}[/] {finding.rule}: "
                             f"{finding.message}", highlight=False, soft_wrap=True)
    common.out.print(f"report: {folder / 'REPORT.md'} (also report.html, audit.json, plots)", highlight=False)


@common.user_errors
def leaderboard(
    results: common.ResultsDir = common.DEFAULT_RESULTS,
    track: common.OneTrack = None,
    seed: common.StatsSeed = 0,
    as_json: common.AsJson = False,
    markdown: bool = typer.Option(False, "--markdown", help="Print Markdown tables."),
    wide: common.Wide = False,
    html: Optional[Path] = typer.Option(None, "--html", metavar="DIR", help="Also write the leaderboard as a "
                                        "self-contained web page, DIR/index.html."),
) -> None:
    """Rank methods per track, target and budget under their best schedule (chosen on validation),
    with intervals, the gap to their random twin and shared ranks where tests cannot separate them."""
    from harness.audit import AuditConfig
    from harness.audit.engine import audit_from, audit_inputs
    from harness.publish.leaderboard import leaderboard_from
    from harness.publish.report.leaderboard_tables import leaderboard_markdown
    from harness.publish.report.payload import finite

    layout = ResultsLayout(results)
    inputs = audit_inputs(layout, track, config=AuditConfig(seed=seed))  # read once, for the page too
    board, problems = leaderboard_from(inputs)
    _skipped(problems)
    if html is not None:
        from harness.publish.leaderboard_page import write_leaderboard_page

        page = write_leaderboard_page(board, html, audit_from(inputs), layout)
        common.err.print(f"leaderboard page: {page}", highlight=False)
    if as_json:
        common.print_json(finite(board.as_dict()))
    elif markdown:
        sys.stdout.write("\n".join(leaderboard_markdown(board)).rstrip("\n") + "\n")
    else:
        _print_leaderboard(board, wide)


def _print_leaderboard(board: Leaderboard, wide: bool = False) -> None:
    from harness.publish.report.formatting import interval, pct, pp

    if not board.tables:
        common.out.print("no reproduced entries to rank")
    for ranking in board.tables:
        budget = "no retraining" if ranking.budget == 0 else f"{ranking.budget} epochs"
        view = common.table(f"{ranking.track} · {ranking.target} · {budget} · {ranking.family}",
                            ["rank", "method", "schedule", "n", "test acc %", "95% CI", "vs random twin (pp)",
                             "marked"], identifiers=("method", "schedule"), right=("n", "test acc %"))
        for e in ranking.entries:
            twin = f"{pp(e.twin_gap)} {e.twin_verdict}" if e.twin_gap is not None else "no twin"
            view.add_row(f"{e.rank}=" if e.tied else str(e.rank), e.method, e.schedule_shown, str(e.n), pct(e.mean),
                         interval(e.ci_low, e.ci_high), twin, f"fail: {', '.join(e.flags)}" if e.flags else "")
        common.print_table(view, wide)


@common.user_errors
def import_reported(
    file: Path = typer.Argument(..., help="Reported results (TOML or JSON): a source and [[result]] entries."),
    results: common.ResultsDir = common.DEFAULT_RESULTS,
    as_json: common.AsJson = False,
) -> None:
    """Import numbers quoted from a paper as source="reported" records into the results directory: audited
    against the reproduced runs of the same configuration (R11), never pooled with them."""
    from harness.audit import import_reported as import_reported_file

    paths = import_reported_file(file, ResultsLayout(results))
    if as_json:
        common.print_json({"written": [str(p) for p in paths]})
        return
    common.out.print(f"imported {len(paths)} reported record{'s' * (len(paths) != 1)} from {file} into {results}",
                     highlight=False)
