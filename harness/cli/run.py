"""``bench run``: the grid, with a progress bar, ending in a table of test accuracy per cell."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Optional

import torch
import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from harness.cli.common import (
    DEFAULT_RESULTS,
    check_device,
    err,
    out,
    print_json,
    split_list,
    user_errors,
)
from harness.cli.executor import (
    ADDRESS,
    CPUS_PER_RUN,
    EXECUTOR,
    GPUS_PER_RUN,
    MAX_RETRIES,
    MEMORY_PER_RUN,
    choose_executor,
)
from harness.core.errors import BenchError
from harness.core.layout import ResultsLayout
from harness.grid.driver import pending, run_grid
from harness.grid.local import LocalExecutor
from harness.grid.pool import PoolExecutor
from harness.grid.selection import expand, select
from harness.prune.latency import LatencySettings
from harness.run.cells import group_cells
from harness.run.record import RunRecord, load_records
from harness.track.definition import DEFAULT_TRACK, load_track
from harness.train.engines import DEFAULT_GROUP_SIZE, EngineSettings
from harness.tune.tuned import TunedExecutor, load_tuning, tuned_params


def summary_rows(records: list[RunRecord]) -> list[dict]:
    rows = []
    for key, cell in group_cells(records).items():
        accs = [r.test_acc for r in cell if r.status == "ok" and r.test_acc is not None]
        first = cell[0]
        rows.append({
            "method": key.entry, "target": key.target, "schedule": key.schedule, "budget": key.budget_epochs,
            "n": len(accs), "failed": sum(r.status != "ok" for r in cell),
            "test_acc_mean": statistics.fmean(accs) if accs else None,
            "test_acc_std": statistics.stdev(accs) if len(accs) > 1 else 0.0 if accs else None,
            "macs_kept": first.macs_after / first.macs_before if first.macs_after and first.macs_before else None,
            "dense_test_acc": first.dense_test_acc,
        })
    return rows


def summary_table(rows: list[dict], title: str) -> Table:
    table = Table(title=title)
    for column in ("method", "target", "schedule", "budget", "n", "test acc (mean ± std)", "MACs kept"):
        table.add_column(column, justify="right" if column in ("budget", "n") else "left")
    for row in rows:
        acc = "-" if row["test_acc_mean"] is None else f"{100 * row['test_acc_mean']:.2f} ± {100 * row['test_acc_std']:.2f}"
        if row["failed"]:
            acc += f" ({row['failed']} failed/diverged)"
        kept = "-" if row["macs_kept"] is None else f"{100 * row['macs_kept']:.1f}%"
        table.add_row(row["method"], row["target"], row["schedule"], str(row["budget"]), str(row["n"]), acc, kept)
    return table


@user_errors
def run(
    track: str = typer.Option(DEFAULT_TRACK, help="Track to run."),
    methods: Optional[str] = typer.Option(None, help="Comma-separated methods (default: the track's)."),
    targets: Optional[str] = typer.Option(None, help="Comma-separated target names."),
    schedules: Optional[str] = typer.Option(None, help="Comma-separated schedules."),
    budgets: Optional[str] = typer.Option(None, help="Comma-separated retraining budgets in epochs."),
    seeds: Optional[str] = typer.Option(None, help="Comma-separated run seeds."),
    full: bool = typer.Option(False, "--full", help="The track's full grid instead of its quick grid."),
    no_twins: bool = typer.Option(False, "--no-twins", help="Skip the random-twin controls (not for leaderboard runs)."),
    device: str = typer.Option("cpu", help="cpu or cuda[:N]."),
    results: Path = typer.Option(DEFAULT_RESULTS, help="Results directory (one folder per track)."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Rerun runs recorded as failed."),
    threads: int = typer.Option(1, min=1, help="Intra-op CPU threads; one is fastest for small networks on shared cores."),
    latency: bool = typer.Option(False, "--latency", help="Also time dense vs pruned inference (batch 1) per run."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    tuned: bool = typer.Option(False, "--tuned", help="Each cell's best hyperparameters from `bench tune`."),
    study_prefix: Optional[str] = typer.Option(None, help="With --tuned: the prefix the studies were tuned under."),
    executor: str = EXECUTOR,
    address: Optional[str] = ADDRESS,
    gpus_per_run: float = GPUS_PER_RUN,
    cpus_per_run: float = CPUS_PER_RUN,
    memory_per_run: Optional[float] = MEMORY_PER_RUN,
    max_retries: int = MAX_RETRIES,
    checkpoint_dir: Optional[Path] = typer.Option(
        None, help="Per-epoch checkpoints, so a killed run resumes mid-training (local: only when given; "
                   "ray: default RESULTS/TRACK/checkpoints, writable by every worker)."),
    engine: str = typer.Option("eager", help="Retraining steps: eager (the plain loop), graph (channels-last, fused "
                               "SGD; one CUDA graph per step on a GPU), compile (torch.compile per architecture) or "
                               "fused (runs sharing an architecture train as one batched network)."),
    group_size: Optional[int] = typer.Option(None, help=f"With --engine fused: runs trained as one network, at most "
                                             f"(default {DEFAULT_GROUP_SIZE})."),
    bf16: bool = typer.Option(False, "--bf16", help="bf16 autocast in the fast engines (records say so)."),
    workers: int = typer.Option(1, help="Runs in flight on the device, one process each (with --executor local)."),
) -> None:
    """Run methods x twins x schedules x budgets x seeds; finished runs are skipped, so a rerun resumes."""
    loaded = load_track(track)
    placement = choose_executor(executor, device, address, gpus_per_run, cpus_per_run, memory_per_run, max_retries)
    check_device(placement.device)
    steps = EngineSettings(engine, bf16=bf16, group_size=group_size)
    if placement.uses_ray and (steps != EngineSettings() or workers != 1):
        raise BenchError("--engine, --bf16, --group-size and --workers apply with --executor local; "
                         "Ray tasks run the plain loop")
    if checkpoint_dir is not None and not placement.uses_ray and (steps != EngineSettings() or workers != 1):
        raise BenchError("--checkpoint-dir applies to the plain loop in this process (or to Ray); "
                         "drop --engine/--bf16/--workers to use it")
    selection = select(loaded, full=full, methods=split_list(methods), targets=split_list(targets),
                       schedules=split_list(schedules), budgets=split_list(budgets, int), seeds=split_list(seeds, int),
                       twins=not no_twins)
    if study_prefix and not tuned:
        raise BenchError("--study-prefix only applies with --tuned")
    layout = ResultsLayout(results)
    histories = load_tuning(layout, loaded, selection, study_prefix) if tuned else {}
    configs = expand(loaded, selection, cell_params=tuned_params(histories), engine=steps.name,
                     precision=steps.precision)
    timing = LatencySettings() if latency else None
    torch.set_num_threads(threads)
    base = (placement.ray(layout, latency=timing, checkpoint_folder=checkpoint_dir) if placement.uses_ray
            else LocalExecutor(layout, device, threads, timing, steps, checkpoint_dir) if workers == 1
            else PoolExecutor(layout, device, workers, threads, timing, steps))
    grid_executor = TunedExecutor(base, histories) if tuned else base
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[last]}"),
                        console=err, transient=as_json, disable=not err.is_terminal and as_json)
    with progress:
        task = progress.add_task(f"{track}", total=len(configs), last="")
        outcome = None

        def advance(record: RunRecord) -> None:
            acc = f"{100 * record.test_acc:.2f}%" if record.test_acc is not None else record.status
            progress.update(task, advance=1, last=f"{record.config().label} {acc}")

        progress.update(task, completed=len(configs) - len(pending(configs, layout, retry_failed)))
        try:
            outcome = run_grid(loaded, configs, layout, grid_executor, on_record=advance, retry_failed=retry_failed)
        except KeyboardInterrupt:
            err.print("interrupted: every finished run is saved; rerun the same command to resume", highlight=False)
            raise typer.Exit(130) from None
    wanted = {c.run_id for c in configs}
    records = [r for r in load_records(layout, loaded.name)[0] if r.id in wanted]
    rows = summary_rows(records)
    if as_json:
        print_json({"track": loaded.name, "planned": outcome.planned, "skipped": outcome.skipped,
                    "written": len(outcome.written), "cells": rows})
        return
    out.print(summary_table(rows, f"{loaded.name}: test accuracy per cell "
                                  f"({outcome.planned} runs, {outcome.skipped} already done, "
                                  f"{len(outcome.written)} new, results in {layout.track(loaded.name)})"))
    for record in outcome.failed + outcome.diverged:
        reason = (record.error or "non-finite training loss").strip().splitlines()[-1]
        err.print(f"{record.status}: {record.config().label}: {reason}", highlight=False)
