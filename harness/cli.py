"""The ``bench`` command: a thin Typer + rich layer over the library.

Every command is a call into ``harness``; this module only parses options, shows progress
and prints tables (or ``--json``). A user-fixable problem is one line on stderr and exit 2.
"""

from __future__ import annotations

import functools
import json
import statistics
import sys
from pathlib import Path
from typing import Callable, Optional

import torch
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from harness.cells import group_cells
from harness.errors import BenchError
from harness.data import training_examples
from harness.executors import LocalExecutor, pending, run_grid
from harness.grid import expand, select
from harness.records import RunRecord, load_records
from harness.runner import data_spec
from harness.schedules import SCHEDULES, get_schedule, resolve_params, step_values
from harness.tracks import DEFAULT_TRACK, list_tracks, load_track
from harness.train import steps_per_epoch

app = typer.Typer(add_completion=False, no_args_is_help=True, help="prune-bench: fair, audited benchmarks of pruning methods.")
schedules_app = typer.Typer(help="Retraining schedules.")
app.add_typer(schedules_app, name="schedules")

out = Console()
err = Console(stderr=True)

DEFAULT_RESULTS = Path("results")


def user_errors(command: Callable) -> Callable:
    """Turn a BenchError into one line on stderr and a non-zero exit."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except BenchError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper


def print_json(payload) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, sort_keys=False) + "\n")


def _split(values: Optional[str], cast=str) -> list | None:
    if not values:
        return None
    try:
        return [cast(v.strip()) for v in values.split(",") if v.strip()]
    except ValueError:
        raise BenchError(f"cannot read {values!r} as a comma-separated list of {cast.__name__}s") from None


@app.command()
@user_errors
def tracks(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    tracks_dir: Optional[Path] = typer.Option(None, help="Folder of track files (default: ./bench/tracks)."),
) -> None:
    """List the benchmark tracks."""
    found = list_tracks(tracks_dir)
    rows = [{
        "name": t.name, "dataset": t.data.dataset, "model": t.model.name,
        "recipe": f"lr {t.recipe.lr}, {t.recipe.epochs} ep, batch {t.recipe.batch_size}",
        "budgets": list(t.retraining.budgets), "schedules": list(t.retraining.schedules),
        "methods": list(t.pruning.methods), "targets": [x.name for x in t.pruning.targets],
        "dense_seeds": list(t.seeds.dense), "run_seeds": list(t.seeds.runs),
        "description": t.description, "default": t.name == DEFAULT_TRACK,
    } for t in found]
    if as_json:
        print_json(rows)
        return
    table = Table(title="Tracks")
    for column in ("name", "dataset", "model", "recipe", "budgets", "targets", "seeds"):
        table.add_column(column)
    for row in rows:
        name = row["name"] + (" (default)" if row["default"] else "")
        table.add_row(name, row["dataset"], row["model"], row["recipe"], ", ".join(map(str, row["budgets"])),
                      ", ".join(row["targets"]), str(len(row["run_seeds"])))
    out.print(table)


@schedules_app.callback(invoke_without_command=True)
@user_errors
def schedules(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    track: str = typer.Option(DEFAULT_TRACK, help="Track whose recipe gives the defaults."),
) -> None:
    """List the retraining schedules and their tunable hyperparameters."""
    if ctx.invoked_subcommand is not None:
        return
    recipe = load_track(track).recipe
    rows = [{
        "name": s.name, "title": s.title, "summary": s.summary, "stepped": s.stepped,
        "tunables": [{"name": t.name, "low": t.low, "high": t.high, "log": t.log, "default": t.default,
                      "help": t.help} for t in s.tunables(recipe)],
    } for s in SCHEDULES.values()]
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"Schedules (defaults from the {track} recipe)")
    for column in ("name", "schedule", "stepped per", "tunable (default, range)"):
        table.add_column(column)
    for row in rows:
        tunables = "\n".join(f"{t['name']} = {t['default']:g} [{t['low']:g}, {t['high']:g}]{' log' if t['log'] else ''}"
                             for t in row["tunables"]) or "-"
        table.add_row(row["name"], f"{row['title']}: {row['summary']}", row["stepped"], tunables)
    out.print(table)


@schedules_app.command("show")
@user_errors
def schedules_show(
    name: str = typer.Argument(..., help="Schedule name."),
    track: str = typer.Option(DEFAULT_TRACK, help="Track whose recipe the schedule derives from."),
    epochs: int = typer.Option(..., help="Retraining budget in epochs."),
    per_step: bool = typer.Option(False, "--per-step", help="Every iteration's rate, not each epoch's first."),
    param: list[str] = typer.Option([], "--param", help="Override a tunable hyperparameter, NAME=VALUE."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show the learning rate a schedule applies during each epoch (or step) of a budget."""
    loaded = load_track(track)
    schedule = get_schedule(name)
    overrides = {}
    for item in param:
        key, sep, value = item.partition("=")
        try:
            overrides[key] = float(value) if sep else float("nan")
        except ValueError:
            raise BenchError(f"--param {item!r}: expected NAME=NUMBER") from None
    per_epoch = steps_per_epoch(training_examples(data_spec(loaded)), loaded.recipe.batch_size)
    values = step_values(schedule, loaded.recipe, 0 if name == "none" else epochs, per_epoch, overrides)
    lrs = list(values.lr) if per_step else values.per_epoch()
    payload = {"schedule": name, "epochs": 0 if name == "none" else epochs, "lr": lrs}
    if per_step:
        payload["steps_per_epoch"] = per_epoch
        if values.momentum is not None:
            payload["momentum"] = list(values.momentum)
    payload["params"] = resolve_params(schedule, loaded.recipe, overrides) if name != "none" else {}
    if as_json:
        print_json(payload)
        return
    table = Table(title=f"{name} on {track} for {payload['epochs']} epochs")
    table.add_column("step" if per_step else "epoch", justify="right")
    table.add_column("lr", justify="right")
    for index, lr in enumerate(lrs):
        table.add_row(str(index), f"{lr:.6g}")
    out.print(table)


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


@app.command()
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
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Run methods x twins x schedules x budgets x seeds; finished runs are skipped, so a rerun resumes."""
    loaded = load_track(track)
    _check_device(device)
    selection = select(loaded, full=full, methods=_split(methods), targets=_split(targets),
                       schedules=_split(schedules), budgets=_split(budgets, int), seeds=_split(seeds, int),
                       twins=not no_twins)
    configs = expand(loaded, selection)
    executor = LocalExecutor(results, device)
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[last]}"),
                        console=err, transient=as_json, disable=not err.is_terminal and as_json)
    with progress:
        task = progress.add_task(f"{track}", total=len(configs), last="")
        outcome = None

        def advance(record: RunRecord) -> None:
            acc = f"{100 * record.test_acc:.2f}%" if record.test_acc is not None else record.status
            progress.update(task, advance=1, last=f"{record.config().label} {acc}")

        progress.update(task, completed=len(configs) - len(pending(configs, results, retry_failed)))
        try:
            outcome = run_grid(loaded, configs, results, executor, on_record=advance, retry_failed=retry_failed)
        except KeyboardInterrupt:
            err.print("interrupted: every finished run is saved; rerun the same command to resume", highlight=False)
            raise typer.Exit(130) from None
    wanted = {c.run_id for c in configs}
    records = [r for r in load_records(results, loaded.name)[0] if r.id in wanted]
    rows = summary_rows(records)
    if as_json:
        print_json({"track": loaded.name, "planned": outcome.planned, "skipped": outcome.skipped,
                    "written": len(outcome.written), "cells": rows})
        return
    out.print(summary_table(rows, f"{loaded.name}: test accuracy per cell "
                                  f"({outcome.planned} runs, {outcome.skipped} already done, "
                                  f"{len(outcome.written)} new, results in {results / loaded.name})"))
    for record in outcome.failed + outcome.diverged:
        err.print(f"{record.status}: {record.config().label}: {(record.error or '').splitlines()[-1:] or ''}",
                  highlight=False)


def _check_device(device: str) -> None:
    if device != "cpu" and not device.startswith("cuda"):
        raise BenchError(f"unknown device {device!r}; use cpu or cuda[:N]")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BenchError("--device cuda asked for, but torch sees no CUDA device; use --device cpu")


def main() -> None:
    app()
