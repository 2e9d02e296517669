"""``bench run``: the grid, with a progress bar, ending in a table of test accuracy per cell."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from harness.cli import common
from harness.cli.executor import ExecutorOptions
from harness.core.errors import BenchError

if TYPE_CHECKING:
    from rich.table import Table

    from harness.grid.driver import GridOutcome
    from harness.run.record import RunRecord


def summary_rows(records: list[RunRecord]) -> list[dict]:
    """One row per cell (cells in key order); the mean and std of test accuracy are the audit's per-cell
    summary (its successful runs, seed and resolution), so they match the report's numbers."""
    from harness.audit import AuditConfig
    from harness.audit.comparisons import build_cells

    cells = {cell.key: cell for cell in build_cells(records, AuditConfig())}
    rows = []
    for key in sorted(cells):
        cell = cells[key]
        first = min(cell.records, key=lambda r: (r.seed, r.dense_seed))
        rows.append({
            "method": key.entry, "target": key.target, "schedule": key.schedule, "budget": key.budget_epochs,
            "n": cell.n, "failed": cell.n_failed,
            "test_acc_mean": cell.summary.mean if cell.summary else None,
            "test_acc_std": cell.summary.std if cell.summary else None,
            "macs_kept": first.macs_after / first.macs_before if first.macs_after and first.macs_before else None,
            "dense_test_acc": first.dense_test_acc,
        })
    return rows


def summary_table(rows: list[dict], title: str) -> Table:
    view = common.table(title, ["method", "target", "schedule", "budget", "n", "test acc (mean ± std)", "MACs kept"],
                        identifiers=("method", "target", "schedule"), right=("budget", "n"))
    for row in rows:
        acc = "-" if row["test_acc_mean"] is None else f"{100 * row['test_acc_mean']:.2f} ± {100 * row['test_acc_std']:.2f}"
        if row["failed"]:
            acc += f" ({row['failed']} failed/diverged)"
        kept = "-" if row["macs_kept"] is None else f"{100 * row['macs_kept']:.1f}%"
        view.add_row(row["method"], row["target"], row["schedule"], str(row["budget"]), str(row["n"]), acc, kept)
    return view


def outcome_counts(outcome: GridOutcome, records: list[RunRecord]) -> dict[str, int]:
    """What the command did: runs written now (``failed`` and ``diverged`` among them), runs already done
    (``done_before``; ``failed_before`` of them recorded as failed), and runs another process finished or
    was running (``elsewhere``)."""
    written = {r.id for r in outcome.written}
    return {"written": len(outcome.written), "failed": len(outcome.failed), "diverged": len(outcome.diverged),
            "done_before": outcome.skipped - outcome.elsewhere, "elsewhere": outcome.elsewhere,
            "failed_before": sum(r.status == "failed" and r.id not in written for r in records)}


def summary_line(track: str, planned: int, counts: dict[str, int]) -> str:
    """The last line of ``bench run``: ``digits-cnn: 54 runs: 12 written (1 failed, 2 diverged), 40 already
    done, 2 done or running elsewhere``, plus a hint when a failed run was kept from before."""
    line = (f"{track}: {planned} runs: {counts['written']} written ({counts['failed']} failed, {counts['diverged']} diverged), "
            f"{counts['done_before']} already done, {counts['elsewhere']} done or running elsewhere")
    if counts["failed_before"]:
        line += f"; {counts['failed_before']} recorded as failed before (--retry-failed reruns them)"
    return line


@common.user_errors
def run(
    track: common.TrackName = common.DEFAULT_TRACK,
    methods: Optional[str] = typer.Option(None, "--methods", "--method",
                                          help="Comma-separated methods (default: the track's)."),
    targets: common.Targets = None,
    schedules: common.Schedules = None,
    budgets: common.Budgets = None,
    seeds: Optional[str] = typer.Option(None, help="Comma-separated run seeds (default: the track's)."),
    full: common.Full = False,
    no_twins: bool = typer.Option(False, "--no-twins", help="Skip the random-twin controls (not for leaderboard runs)."),
    trained_twins: bool = typer.Option(False, "--trained-twins", help="Also run each training method's trained twin: "
                                       "its own phase and rounds, units drawn at random (docs/methods.md)."),
    device: common.Device = "cpu",
    results: common.ResultsDir = common.DEFAULT_RESULTS,
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Rerun runs recorded as failed."),
    threads: common.Threads = 1,
    latency: bool = typer.Option(False, "--latency", help="Also time dense vs pruned inference (batch 1) per run."),
    as_json: common.AsJson = False,
    tuned: bool = typer.Option(False, "--tuned", help="Each cell's best hyperparameters from `bench tune`."),
    study_prefix: Optional[str] = typer.Option(None, help="With --tuned: the prefix the studies were tuned under."),
    executor: ExecutorOptions = ExecutorOptions(),
    checkpoint_dir: Optional[Path] = typer.Option(
        None, help="Per-epoch checkpoints, so a killed run resumes mid-training (local: only when given; "
                   "ray: default RESULTS/TRACK/checkpoints, writable by every worker)."),
    engine: str = typer.Option("eager", help="Retraining steps: eager (the plain loop), graph (channels-last, fused "
                               "SGD; one CUDA graph per step on a GPU), compile (torch.compile per architecture) or "
                               "fused (runs sharing an architecture train as one batched network)."),
    group_size: Optional[int] = typer.Option(None, help=f"With --engine fused: runs trained as one network, at most "
                                             f"(default {common.DEFAULT_GROUP_SIZE})."),
    bf16: bool = typer.Option(False, "--bf16", help="bf16 autocast in the fast engines (records say so)."),
    workers: int = typer.Option(1, help="Runs in flight on the device, one process each (with --executor local)."),
    plan_limits: common.PlanLimitOptions = common.PlanLimitOptions(),
    wide: common.Wide = False,
) -> None:
    """Run methods x twins x schedules x budgets x seeds; finished runs are skipped, so a rerun resumes.
    Ends with a summary line (written, failed, diverged, skipped); exit status 1 when a run of the grid is
    recorded as failed (a diverged run is a result of its schedule, counted but not an error)."""
    from harness.cli.progress import RunProgress
    from harness.core.layout import ResultsLayout
    from harness.grid.driver import check_grid, pending, run_grid
    from harness.grid.local import LocalExecutor
    from harness.grid.pool import PoolExecutor
    from harness.grid.selection import expand, select
    from harness.methods.isolation import Isolation
    from harness.prune.latency import LatencySettings
    from harness.run.record import load_records
    from harness.track.definition import load_track
    from harness.train.engines import EngineSettings
    from harness.tune.tuned import TunedExecutor, load_tuning, tuned_params

    loaded = load_track(track)
    executor.check(device)
    steps = EngineSettings(engine, bf16=bf16, group_size=group_size)
    limits = plan_limits.limits()
    if executor.uses_ray and limits != type(limits)():
        raise BenchError("--wall-limit, --cpu-limit and --memory-limit apply with --executor local; "
                         "Ray tasks keep the default plugin limits")
    if executor.uses_ray and (steps != EngineSettings() or workers != 1):
        raise BenchError("--engine, --bf16, --group-size and --workers apply with --executor local; "
                         "Ray tasks run the plain loop")
    if checkpoint_dir is not None and not executor.uses_ray and (steps != EngineSettings() or workers != 1):
        raise BenchError("--checkpoint-dir applies to the plain loop in this process (or to Ray); "
                         "drop --engine/--bf16/--workers to use it")
    selection = select(loaded, full=full, methods=common.split_list(methods), targets=common.split_list(targets),
                       schedules=common.split_list(schedules), budgets=common.split_list(budgets, int),
                       seeds=common.split_list(seeds, int), twins=not no_twins, trained_twins=trained_twins)
    if study_prefix and not tuned:
        raise BenchError("--study-prefix only applies with --tuned")
    layout = ResultsLayout(results)
    histories = load_tuning(layout, loaded, selection, study_prefix) if tuned else {}
    configs = expand(loaded, selection, cell_params=tuned_params(histories), engine=steps.name,
                     precision=steps.precision)
    timing = LatencySettings() if latency else None
    common.set_threads(threads)
    base = (executor.ray(layout, latency=timing, checkpoint_folder=checkpoint_dir) if executor.uses_ray
            else LocalExecutor(layout, device, threads, timing, steps, checkpoint_dir, Isolation(limits)) if workers == 1
            else PoolExecutor(layout, device, workers, threads, timing, steps, limits))
    grid_executor = TunedExecutor(base, histories) if tuned else base
    check_grid(loaded, configs, layout)
    progress = RunProgress(track, quiet=as_json)
    progress.start(len(configs), len(configs) - len(pending(configs, layout, retry_failed)))
    try:
        outcome = run_grid(loaded, configs, layout, grid_executor, on_record=progress.advance, retry_failed=retry_failed)
    except KeyboardInterrupt:
        progress.stop()
        common.err.print("interrupted: every finished run is saved; rerun the same command to resume", highlight=False)
        raise typer.Exit(130) from None
    finally:
        progress.stop()
    wanted = {c.run_id for c in configs}
    records = [r for r in load_records(layout, loaded.name)[0] if r.id in wanted]
    rows = summary_rows(records)
    counts = outcome_counts(outcome, records)
    if as_json:
        common.print_json({"track": loaded.name, "planned": outcome.planned, "skipped": outcome.skipped, **counts,
                           "cells": rows})
    else:
        common.print_table(summary_table(rows, f"{loaded.name}: test accuracy per cell "
                                               f"({outcome.planned} runs, {outcome.skipped} already done, "
                                               f"{len(outcome.written)} new, results in "
                                               f"{layout.track(loaded.name)})"), wide)
        for record in outcome.failed + outcome.diverged:
            reason = (record.error or "non-finite training loss").strip().splitlines()[-1]
            common.err.print(f"{record.status}: {record.config().label}: {reason}", highlight=False)
        common.out.print(summary_line(loaded.name, outcome.planned, counts), highlight=False, soft_wrap=True)
    if counts["failed"] or counts["failed_before"]:
        raise typer.Exit(1)
