"""``bench submit`` and ``bench verify``: putting a method on the leaderboard, and checking that what is
on it is what the harness produced. Also the app's callback, which registers ``bench/methods``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer

from harness.cli import common
from harness.core.errors import BenchError
from harness.core.layout import ResultsLayout

if TYPE_CHECKING:
    from rich.table import Table

    from harness.methods import Method
    from harness.protocols.submit import (
        Submission,
        SubmissionPlan,
        TrackSubmission,
        VerdictRow,
    )
    from harness.protocols.verify import Problem, Rerun

VERDICT_STYLE = {"better": "green", "worse": "red", "tie": "yellow", "equivalent": "yellow"}


@common.user_errors
def load_method_plugins(ctx: typer.Context, methods_dir: common.MethodsDir = None) -> None:
    """prune-bench: fair, audited benchmarks of neural-network pruning methods."""
    if ctx.meta.get(common.HELP_ONLY):
        return  # a command's --help: plugins change no help text, so none is loaded
    from harness.methods.plugins import load_plugins

    load_plugins(methods_dir)


@common.user_errors
def submit(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="The method's Python file (one @register_method function)."),
    track: List[str] = typer.Option([], "--track", show_default=False,
                                    help=f"Track to submit to; repeat for several (default: {common.DEFAULT_TRACK})."),
    seeds: int = typer.Option(common.RECOMMENDED_SEEDS, help=f"Seeds per cell (at least {common.RECOMMENDED_SEEDS})."),
    tune_trials: Optional[int] = typer.Option(None, help="Tune every cell with this many trials; must equal the "
                                                         "baselines' tuning budget."),
    results: common.ResultsDir = common.DEFAULT_RESULTS,
    device: common.Device = "cpu",
    threads: common.Threads = 1,
    plan_limits: common.PlanLimitOptions = common.PlanLimitOptions(),
    unsafe_isolation: bool = typer.Option(
        False, "--unsafe-isolation", help="Run plugin plans even below the sandbox level the leaderboard requires "
                                            "(bwrap); the records say so."),
    workers: int = typer.Option(1, help="Runs in flight at once, one process each beyond one."),
    engine: str = typer.Option("eager", help="Retraining steps: eager, graph, compile or fused (as bench run)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the runs to do, those done and the estimated "
                                                          "wall time; run nothing."),
    as_json: common.AsJson = False,
    wide: common.Wide = False,
) -> None:
    """Run the submission protocol for a method file: the method and its random twin at every cell of each
    track's leaderboard protocol (bench/leaderboards/TRACK.toml), then the audit against the existing
    entries. Runs train on --device; the method's plan is always computed on the CPU. Exit status 0 when
    the submission passes, 1 when a run failed or the audit fails the method."""
    from harness.cli.progress import RunProgress
    from harness.protocols.submit import plan

    common.check_device(device)
    from harness.methods.sandbox import require_level

    require_level(unsafe=unsafe_isolation)
    ctx.call_on_close(lambda: require_level(None))  # only for this command
    from harness.methods.lint import review

    try:  # findings a reviewer must clear: what no sandbox can stop (issue 14)
        findings = review(file, file.read_bytes())
    except OSError:
        findings = []  # the protocol names the unreadable file
    for finding in findings:
        common.err.print(f"review: {finding}", markup=False, highlight=False, soft_wrap=True)
    limits = plan_limits.limits()
    from harness.protocols.submit import submit as submit_method

    if dry_run:
        _print_plans(*plan(file, track, seeds, ResultsLayout(results), workers, engine=engine), as_json)
        return
    progress = RunProgress("submission", quiet=as_json)
    try:
        submission = submit_method(file, track, seeds, tune_trials, ResultsLayout(results), device, threads,
                                   limits,
                                   on_record=progress.advance, workers=workers, engine=engine,
                                   on_start=lambda p: progress.start(len(p.configs), len(p.configs) - len(p.to_run)))
    finally:
        progress.stop()
    if as_json:
        common.print_json(submission.as_dict())
    else:
        _print_submission(submission, wide)
    raise typer.Exit(submission.exit_code)


def _print_plans(method: Method, plans: tuple[SubmissionPlan, ...], as_json: bool) -> None:
    if as_json:
        payload = [p.as_dict() for p in plans]
        common.print_json({"method": method.name, "to_run": sum(p["to_run"] for p in payload),
                           "done": sum(p["done"] for p in payload),
                           "estimated_seconds": sum(p["estimated_seconds"] or 0 for p in payload), "tracks": payload})
        return
    for item in plans:
        source = item.protocol.source or "the track's full grid (no leaderboard file)"
        estimate = ("unknown (no record of the track states its wall time)" if item.estimated_seconds is None
                    else f"about {item.estimated_seconds / 60:.1f} min")
        common.out.print(f"{item.track.name}: protocol {source}; {len(item.configs)} runs, {len(item.to_run)} to run, "
                         f"{len(item.configs) - len(item.to_run)} done; estimated wall time {estimate} (the track's "
                         "recorded wall_seconds per schedule and budget, over --workers; dense baselines not yet "
                         "trained and the audit come on top)", highlight=False, soft_wrap=True)
        for stale in item.stale:
            common.out.print(f"  stale (does not count): {stale.line()}", highlight=False, soft_wrap=True)


def _against(row: VerdictRow) -> str:
    parts = [f"{word} {', '.join(names)}" for word, names in
             (("beats", row.better_than), ("ties", row.tied_with), ("loses to", row.worse_than)) if names]
    return "; ".join(parts) or "no other entry"


def _verdict_table(method: str, track: TrackSubmission) -> Table:
    from harness.publish.report.formatting import interval, pct, pp

    tuned = f", tuned with {track.tune_trials} trials" if track.tune_trials else ""
    view = common.table(f"{method} on {track.track} ({len(track.seeds)} seeds{tuned})",
                        ["target", "schedule", "budget", "n", "test acc % [95% CI]", "vs random twin (pp)",
                         "vs existing entries", "fails"], identifiers=("target", "schedule"), right=("budget", "n"))
    for row in track.rows:
        twin = "no twin" if row.twin_verdict is None else \
            f"{pp(row.twin_difference)} [{VERDICT_STYLE[row.twin_verdict]}]{row.twin_verdict}[/]"
        n = f"{row.n}" + (f" ({row.failed} failed)" if row.failed else "")
        view.add_row(row.target, row.schedule, str(row.budget_epochs), n,
                     f"{pct(row.mean)} {interval(row.ci_low, row.ci_high)}", twin, _against(row),
                     f"[red]{', '.join(row.fails)}[/]" if row.fails else "")
    return view


def _print_submission(submission: Submission, wide: bool = False) -> None:
    for track in submission.tracks:
        common.print_table(_verdict_table(submission.method, track), wide)
        for target, reason in track.skipped_targets.items():
            common.out.print(f"  skipped target {target}: {reason}", highlight=False, soft_wrap=True)
        for line in track.failures:
            common.out.print(f"  [red]{line}[/]", highlight=False, soft_wrap=True)
        for finding in track.findings:
            style = "bold red" if finding.severity == "fail" else "yellow"
            common.out.print(f"  [{style}]{finding.severity}[/] {finding.rule}: {finding.message}", highlight=False,
                             soft_wrap=True)
        if track.others_changed:
            common.out.print(f"  [bold red]{len(track.others_changed)} verdicts of other methods changed:[/]",
                             highlight=False)
            for line in track.others_changed:
                common.out.print(f"    {line}", highlight=False, soft_wrap=True)
        else:
            common.out.print(f"  other methods' verdicts: {track.others_compared} comparisons audited before and "
                             "after these runs, none changed", highlight=False)
        common.out.print(f"  report: {track.report} ({track.ran} of {track.planned} runs made now)", highlight=False)
    verdict = "[green]passed[/]" if submission.passed else "[bold red]failed[/]"
    common.out.print(f"submission of {submission.method} ({submission.source}, "
                     f"sha256 {submission.method_digest[:16]}): {verdict}", highlight=False)


@common.user_errors
def verify(
    ctx: typer.Context,
    results: common.ResultsDir = common.DEFAULT_RESULTS,
    rerun: str = typer.Option("0", metavar="N|all", help="Re-run this many randomly chosen records (or all of them) "
                                                         "and compare their test accuracy."),
    method: Optional[str] = typer.Option(None, help="Re-run only records of this method and its random twin "
                                                    "(with --rerun all: the maintainer's acceptance step)."),
    seed: int = typer.Option(0, help="Seed of the choice of records to re-run."),
    tolerance: Optional[float] = typer.Option(None, help="Allowed test-accuracy difference as a fraction (default: 0, "
                                                         "bit-exact, on CPU; 0.01 when CUDA was involved)."),
    device: common.Device = "cpu",
    unsafe_isolation: bool = typer.Option(
        False, "--unsafe-isolation", help="Run plugin plans even below the sandbox level the leaderboard requires "
                                            "(bwrap); the records say so."),
    as_json: common.AsJson = False,
) -> None:
    """Check every record's content digest and method digest, and re-run --rerun of them (on --device).
    Each problem is reported with the file and what differs; exit status 1 when anything fails."""
    common.check_device(device)
    from harness.methods.sandbox import require_level
    from harness.protocols.verify import ALL, Rerun, verify_results

    if rerun != ALL and not rerun.isdigit():
        raise BenchError(f"--rerun takes a number of records or 'all', got {rerun!r}")
    count = ALL if rerun == ALL else int(rerun)
    if count:
        require_level(unsafe=unsafe_isolation)
        ctx.call_on_close(lambda: require_level(None))  # only for this command

    def progress(result: Rerun | Problem) -> None:
        if isinstance(result, Rerun):
            mark = "matches" if result.matches else "DIFFERS"
            common.err.print(f"rerun {result.label}: stored {result.stored!r}, rerun {result.reproduced!r} -- {mark}",
                             highlight=False)

    verification = verify_results(ResultsLayout(results), count, seed, tolerance, device,
                                  on_rerun=None if as_json else progress, method=method)
    if as_json:
        common.print_json(verification.as_dict())
    else:
        alike: dict[tuple[str, str], list[Problem]] = {}
        for problem in verification.problems:  # e.g. every record of a method whose file is not found: one line
            alike.setdefault((problem.check, problem.message), []).append(problem)
        for group in alike.values():
            more = f" (and {len(group) - 1} more records alike)" if len(group) > 1 else ""
            common.out.print(f"[red]fail[/] {group[0].line()}{more}", highlight=False, soft_wrap=True)
        summary = "all checks pass" if verification.ok else f"{len(verification.problems)} problems"
        other = (f"; {verification.other_harness} made by other harness code (or not saying)"
                 if verification.other_harness else "")
        common.out.print(f"verified {verification.checked} records in {results}, {len(verification.reruns)} rerun "
                         f"(seed {seed}): {summary}{other}", highlight=False)
    raise typer.Exit(verification.exit_code)
