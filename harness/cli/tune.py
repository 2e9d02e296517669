"""``bench tune``: one Optuna study per cell over the schedule's tunables, the same trial budget for every method."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import typer

from harness.cli import common
from harness.cli.executor import ExecutorOptions
from harness.core.errors import BenchError

if TYPE_CHECKING:
    from rich.table import Table

    from harness.core.layout import ResultsLayout
    from harness.tune.history import StudyHistory


def summary_row(history: StudyHistory, layout: ResultsLayout) -> dict:
    return {
        "study": history.study, "method": history.cell.entry, "target": history.cell.target,
        "schedule": history.cell.schedule, "budget": history.cell.budget_epochs, "n_trials": history.n_trials,
        "trials_requested": history.trials_requested, "n_complete": history.n_complete,
        "n_pruned": history.n_pruned, "n_failed": history.n_failed, "n_running": history.n_running,
        "best_val_acc": history.best_value, "best_params": history.best_params,
        "history": str(layout.history(history.cell.track, history.study)),
    }


def summary_table(rows: list[dict], title: str) -> Table:
    view = common.table(title, ["method", "target", "schedule", "budget", "trials", "pruned", "best val acc",
                                "best params"], identifiers=("method", "target", "schedule"),
                        right=("budget", "trials", "pruned"))
    for row in rows:
        acc = "-" if row["best_val_acc"] is None else f"{100 * row['best_val_acc']:.2f}"
        params = ", ".join(f"{k}={v:.4g}" for k, v in (row["best_params"] or {}).items()) or "-"
        view.add_row(row["method"], row["target"], row["schedule"], str(row["budget"]),
                     f"{row['n_trials']}/{row['trials_requested']}", str(row["n_pruned"]), acc, params)
    return view


@common.user_errors
def tune(
    trials: int = typer.Option(..., help="Trials per study; pruned trials count, failed (interrupted) ones are redone."),
    track: common.TrackName = common.DEFAULT_TRACK,
    methods: Optional[str] = typer.Option(None, "--method", "--methods", help="Comma-separated methods to tune."),
    all_methods: bool = typer.Option(False, "--all-methods", help="Every method of the track, same trials for each."),
    targets: common.Targets = None,
    schedules: common.Schedules = None,
    budgets: common.Budgets = None,
    seeds: Optional[str] = typer.Option(None, help="Seeds the objective averages over (default: the track's first)."),
    params: Optional[str] = typer.Option(None, help="Tune only these of the schedule's tunables (default: all)."),
    sampler: str = typer.Option("tpe", help=f"Sampler: {', '.join(common.SAMPLERS)}."),
    seed: int = typer.Option(0, help="Sampler seed: a sequential study is reproducible."),
    pruner: str = typer.Option("median", help=f"Stops bad trials early: {', '.join(common.PRUNERS)}."),
    storage: Optional[str] = typer.Option(None, help="SQLAlchemy URL of the studies (default: the SQLite file "
                                                     "optuna.db in RESULTS/TRACK)."),
    study: Optional[str] = typer.Option(None, help="Study name when tuning a single cell (default: from the cell)."),
    study_prefix: Optional[str] = typer.Option(None, help="Prefix of derived study names; pass it to bench run --tuned."),
    heartbeat: Optional[int] = typer.Option(None, help="Seconds between heartbeats; trials of dead workers are retried."),
    no_twins: bool = typer.Option(False, "--no-twins", help="Skip the random twins (their runs then stay untuned)."),
    full: common.Full = False,
    device: common.Device = "cpu",
    threads: common.Threads = 1,
    results: common.ResultsDir = common.DEFAULT_RESULTS,
    as_json: common.AsJson = False,
    executor: ExecutorOptions = ExecutorOptions(),
    wide: common.Wide = False,
) -> None:
    """Tune each cell's schedule hyperparameters on the validation split; rerun the same command to resume.
    Histories go to RESULTS/TRACK/tuning/. With --executor ray, every cell's study is one Ray task: cells in
    parallel, each study sequential."""
    from harness.cli.progress import progress_bar
    from harness.core.layout import ResultsLayout
    from harness.grid.selection import select
    from harness.run.pipeline import Workspace
    from harness.track.definition import load_track
    from harness.tune.search import (
        TuneOptions,
        TuneProgress,
        check_cells,
        open_storage,
        tune_cells,
        tuning_cells,
    )

    loaded = load_track(track)
    executor.check(device)
    if executor.address is not None and storage is None:
        raise BenchError("tuning on a Ray cluster needs a storage every node reaches; pass --storage "
                         "postgresql://USER:PASSWORD@HOST/DB (see docs/cluster.md)")
    if all_methods == bool(methods):
        raise BenchError("name the methods to tune with --method M[,M2] or tune them all with --all-methods")
    selection = select(loaded, full=full,
                       methods=loaded.pruning.methods if all_methods else common.split_list(methods),
                       targets=common.split_list(targets), schedules=common.split_list(schedules),
                       budgets=common.split_list(budgets, int), twins=not no_twins)
    options = TuneOptions(trials=trials, seeds=tuple(common.split_list(seeds, int) or loaded.seeds.runs[:1]),
                          sampler=sampler, seed=seed, pruner=pruner,
                          params=tuple(common.split_list(params) or ()) or None,
                          storage=storage, heartbeat=heartbeat, study_prefix=study_prefix)
    cells, skipped = tuning_cells(loaded, selection)
    if not cells:
        raise BenchError(f"schedule(s) {', '.join(skipped)} declare no tunable hyperparameters, so there is nothing "
                         "to tune; pick a schedule that does (bench schedules shows them)")
    check_cells(loaded, cells, options, study)
    layout = ResultsLayout(results)
    storage_url = options.storage or layout.storage(loaded.name)
    storage_handle = open_storage(storage_url, options.heartbeat)
    common.set_threads(threads)
    workspace = Workspace(loaded, layout, device=device)
    finished: dict[str, int] = {}
    progress = progress_bar(transient=as_json, disable=not common.err.is_terminal and as_json)
    with progress:
        task = progress.add_task(f"tune {loaded.name}", total=len(cells) * trials, last="")

        def show(event: TuneProgress) -> None:
            finished[event.study] = event.finished
            last = f"{event.study} trial {event.trial}" if event.trial is not None else event.study
            if event.value is not None:
                last += f" val {100 * event.value:.2f}%"
            progress.update(task, completed=sum(min(n, trials) for n in finished.values()), last=last)

        def study_done(history: StudyHistory) -> None:
            show(TuneProgress(history.study, "trial", history.n_trials, trials, value=history.best_value))

        try:
            if executor.uses_ray:
                from harness.tune.ray import tune_on_ray

                histories = tune_on_ray(executor.ray(layout), loaded, cells, options, storage_url, study, study_done)
            else:
                histories = tune_cells(workspace, cells, options, study, storage_handle, on_progress=show)
        except KeyboardInterrupt:
            common.err.print("interrupted: finished trials are saved; rerun the same command to resume",
                             highlight=False)
            raise typer.Exit(130) from None
    rows = [summary_row(h, layout) for h in histories]
    if as_json:
        common.print_json({"track": loaded.name, "storage": storage_url,
                           "trials": trials, "skipped_schedules": skipped, "studies": rows})
        return
    common.print_table(summary_table(rows, f"{loaded.name}: best validation accuracy per study ({trials} trials "
                                           f"each, histories in {layout.tuning(loaded.name)})"), wide)
    if skipped:
        common.err.print(f"skipped {', '.join(skipped)}: no tunable hyperparameters", highlight=False)
    for history in histories:
        if history.n_running:
            common.err.print(f"{history.study}: {history.n_running} trial(s) still running elsewhere or left by a "
                             "killed worker; rerun after they finish, or use --heartbeat so dead workers' trials are "
                             "retried", highlight=False)
