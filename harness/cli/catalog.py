"""Catalog commands: what tracks and schedules exist, and what a schedule does over a budget."""

from __future__ import annotations

import typer

from harness.cli import common
from harness.core.errors import BenchError


@common.user_errors
def tracks(as_json: common.AsJson = False, tracks_dir: common.TracksDir = None, wide: common.Wide = False) -> None:
    """List the benchmark tracks."""
    from harness.track.definition import list_tracks

    found = list_tracks(tracks_dir)
    rows = [{
        "name": t.name, "dataset": t.data.dataset, "model": t.model.name,
        "recipe": f"lr {t.recipe.lr}, {t.recipe.epochs} ep, batch {t.recipe.batch_size}",
        "budgets": list(t.retraining.budgets), "schedules": list(t.retraining.schedules),
        "methods": list(t.pruning.methods), "targets": [x.name for x in t.pruning.targets],
        "dense_seeds": list(t.seeds.dense), "run_seeds": list(t.seeds.runs),
        "description": t.description, "default": t.name == common.DEFAULT_TRACK,
    } for t in found]
    if as_json:
        common.print_json(rows)
        return
    view = common.table("Tracks", ["name", "dataset", "model", "recipe", "budgets", "targets", "seeds"],
                        identifiers=("name", "dataset", "model"), right=("seeds",))
    for row in rows:
        name = row["name"] + ("\n(default)" if row["default"] else "")
        view.add_row(name, row["dataset"], row["model"], row["recipe"], ", ".join(map(str, row["budgets"])),
                     ", ".join(row["targets"]), str(len(row["run_seeds"])))
    common.print_table(view, wide)


@common.user_errors
def schedules(
    ctx: typer.Context, as_json: common.AsJson = False, track: common.TrackName = common.DEFAULT_TRACK,
    wide: common.Wide = False,
) -> None:
    """List the retraining schedules and their tunable hyperparameters (defaults from the track's recipe)."""
    if ctx.invoked_subcommand is not None:
        return
    from harness.track.definition import load_track
    from harness.track.schedules import SCHEDULES

    recipe = load_track(track).recipe
    rows = [{
        "name": s.name, "title": s.title, "summary": s.summary, "stepped": s.stepped,
        "tunables": [{"name": t.name, "low": t.low, "high": t.high, "log": t.log, "default": t.default,
                      "help": t.help} for t in s.tunables(recipe)],
    } for s in SCHEDULES.values()]
    if as_json:
        common.print_json(rows)
        return
    view = common.table(f"Schedules (defaults from the {track} recipe)",
                        ["name", "schedule", "stepped per", "tunable (default, range)"], identifiers=("name",))
    for row in rows:
        tunables = "\n".join(f"{t['name']} = {t['default']:g} [{t['low']:g}, {t['high']:g}]{' log' if t['log'] else ''}"
                             for t in row["tunables"]) or "-"
        view.add_row(row["name"], f"{row['title']}: {row['summary']}", row["stepped"], tunables)
    common.print_table(view, wide)


@common.user_errors
def schedules_show(
    name: str = typer.Argument(..., help="Schedule name."),
    track: common.TrackName = common.DEFAULT_TRACK,
    epochs: int = typer.Option(..., min=0, help="Retraining budget in epochs (at least 1 except for none)."),
    per_step: bool = typer.Option(False, "--per-step", help="Every iteration's rate, not each epoch's first."),
    param: list[str] = typer.Option([], "--param", show_default=False,
                                    help="Override a tunable hyperparameter, NAME=VALUE; repeat for several."),
    as_json: common.AsJson = False,
) -> None:
    """Show the learning rate a schedule applies during each epoch (or step) of a budget, derived from the
    track's recipe."""
    from harness.data import training_examples
    from harness.run.pipeline import data_spec
    from harness.track.definition import load_track
    from harness.track.schedules import get_schedule, resolve_params, step_values
    from harness.train.loop import steps_per_epoch

    loaded = load_track(track)
    schedule = get_schedule(name)
    overrides = {}
    for item in param:
        key, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            overrides[key] = float(value)
        except ValueError:
            raise BenchError(f"--param {item!r}: expected NAME=NUMBER") from None
    if name != "none" and epochs < 1:
        raise BenchError(f"--epochs must be at least 1 for schedule '{name}', got {epochs}")
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
        common.print_json(payload)
        return
    unit = "step" if per_step else "epoch"
    view = common.table(f"{name} on {track} for {payload['epochs']} epochs", [unit, "lr"], right=(unit, "lr"))
    for index, lr in enumerate(lrs):
        view.add_row(str(index), f"{lr:.6g}")
    common.out.print(view)
