"""Tuning: only schedule hyperparameters, on validation only, equal and resumable budgets, tuned runs.

A two-epoch digits track (conftest's small track) keeps every study to a few one-epoch trials; its
dense baseline is trained once per module and copied into each test's results directory.
"""

import json

import optuna
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from harness.cli import app
from harness.core.errors import BenchError
from harness.core.layout import ResultsLayout
from harness.grid.selection import expand, select
from harness.run.cells import CellKey
from harness.run.pipeline import Workspace
from harness.run.record import load_records
from harness.track.definition import TRACKS_ENV
from harness.tune.history import study_name
from harness.tune.search import (
    TuneOptions,
    grid_points,
    open_storage,
    search_space,
    tune_cell,
    tune_cells,
)

SMALL_TRACK_CHANGES = {"name": "tiny-digits", "description": "two-epoch digits track for tuning tests"}
EXPORT_KEYS = {"study", "track", "method", "twin", "target", "schedule", "budget_epochs", "sampler", "seed",
               "objective", "split", "n_trials", "trials", "best_params", "best_value"}


class Killed(Exception):
    """Stands in for a worker dying in the middle of a trial."""


def cell(schedule="ft", budget=1, twin=False):
    return CellKey("tiny-digits", "l1-norm", twin, "half", schedule, budget)


def test_the_search_space_is_exactly_the_schedules_declared_tunables(small_track):
    assert [t.name for t in search_space(small_track, "ft")] == ["lr"]
    assert [t.name for t in search_space(small_track, "slr")] == ["peak_lr", "warmup_fraction"]
    assert [t.name for t in search_space(small_track, "clr")] == ["max_lr", "pct_start"]
    assert [t.name for t in search_space(small_track, "clr", ["pct_start"])] == ["pct_start"]


def test_tuning_the_batch_size_is_refused_before_anything_runs(small_track, tmp_path):
    with pytest.raises(BenchError, match=r"cannot tune 'batch_size': schedule 'slr' tunes only peak_lr, "
                                         r"warmup_fraction; .*batch size.* fixed by the track"):
        tune_cells(Workspace(small_track, ResultsLayout(tmp_path)), [cell("slr")],
                   TuneOptions(trials=2, seeds=(0,), params=("batch_size",)))
    assert not (tmp_path / "tiny-digits").exists()


def test_a_schedule_without_tunables_is_a_clear_message(small_track, small_tracks, tmp_path, monkeypatch):
    with pytest.raises(BenchError, match="schedule 'lrw' declares no tunable hyperparameters"):
        search_space(small_track, "lrw")
    monkeypatch.setenv(TRACKS_ENV, str(small_tracks))
    result = CliRunner().invoke(app, ["tune", "--track", "tiny-digits", "--method", "l1-norm", "--schedule",
                                      "none,lrw", "--trials", "2", "--results", str(tmp_path)])
    assert result.exit_code == 2
    assert "lrw declare no tunable hyperparameters" in result.output
    assert "Traceback" not in result.output


def test_tuning_reads_validation_only_and_exports_its_history(small_track, small_results):
    workspace = Workspace(small_track, ResultsLayout(small_results))
    history = tune_cell(workspace, cell("slr", budget=2), TuneOptions(trials=2, seeds=(0,), pruner="none"))
    assert workspace.splits.test_reads == 0
    exported = json.loads(ResultsLayout(small_results).history("tiny-digits", history.study).read_text())
    assert EXPORT_KEYS <= set(exported)
    assert exported["study"] == "tiny-digits.l1-norm.half.slr.2ep" == study_name(cell("slr", budget=2))
    assert (exported["objective"], exported["split"], exported["n_trials"]) == ("val_acc", "val", 2)
    space = {t.name: t for t in search_space(small_track, "slr")}
    for trial in exported["trials"]:
        assert trial["state"] == "COMPLETE"
        assert set(trial["params"]) == set(space)
        assert all(space[k].low <= v <= space[k].high for k, v in trial["params"].items())
        assert len(trial["intermediate"]) == 2  # one seed, two epochs
        assert trial["value"] == trial["intermediate"][-1]
    best = max(exported["trials"], key=lambda t: t["value"])
    assert (exported["best_params"], exported["best_value"]) == (best["params"], best["value"])


def test_a_killed_study_resumes_to_exactly_n_trials_and_the_same_trials(small_track, small_results):
    workspace = Workspace(small_track, ResultsLayout(small_results))
    options = TuneOptions(trials=2, seeds=(0,), pruner="none")
    straight = tune_cell(workspace, cell(), options, study="straight")

    def die_in_second_trial(event):
        if event.event == "epoch" and event.trial == 1:
            raise Killed

    with pytest.raises(Killed):
        tune_cell(workspace, cell(), options, study="killed", on_progress=die_in_second_trial)
    interrupted = json.loads(ResultsLayout(small_results).history("tiny-digits", "killed").read_text())
    assert [t["state"] for t in interrupted["trials"]] == ["COMPLETE", "FAIL"]
    resumed = tune_cell(workspace, cell(), options, study="killed")
    assert (resumed.n_trials, resumed.n_complete, resumed.n_failed) == (2, 2, 1)
    done = [t for t in resumed.trials if t.state == "COMPLETE"]
    assert [(t.params, t.value) for t in done] == [(t.params, t.value) for t in straight.trials]
    assert tune_cell(workspace, cell(), options, study="killed").n_trials == 2  # a finished study runs nothing


def test_pruned_trials_count_against_the_budget(small_track, small_results):
    workspace = Workspace(small_track, ResultsLayout(small_results))
    tune_cell(workspace, cell(), TuneOptions(trials=1, seeds=(0,)))
    storage = ResultsLayout(small_results).storage("tiny-digits")
    study = optuna.load_study(study_name=study_name(cell()), storage=storage)
    lr = search_space(small_track, "ft")[0]
    pruned = study.ask({"lr": optuna.distributions.FloatDistribution(lr.low, lr.high, log=True)})
    pruned.report(0.1, 0)
    study.tell(pruned, state=TrialState.PRUNED)
    history = tune_cell(workspace, cell(), TuneOptions(trials=3, seeds=(0,)))
    assert (history.n_trials, history.n_complete, history.n_pruned) == (3, 2, 1)
    assert [t.intermediate for t in history.trials if t.state == "PRUNED"] == [[0.1]]


def test_resuming_with_other_options_is_refused(small_track, small_results):
    workspace = Workspace(small_track, ResultsLayout(small_results))
    tune_cell(workspace, cell(), TuneOptions(trials=1, seeds=(0,)))
    with pytest.raises(BenchError, match=r"was run with sampler='tpe', not 'random'; .*new --study"):
        tune_cell(workspace, cell(), TuneOptions(trials=2, seeds=(0,), sampler="random"))


def test_the_grid_sampler_visits_distinct_grid_points(small_track, small_results):
    assert [grid_points(1, 1), grid_points(9, 2), grid_points(10, 2), grid_points(8, 3)] == [2, 3, 4, 2]
    workspace = Workspace(small_track, ResultsLayout(small_results))
    history = tune_cell(workspace, cell(), TuneOptions(trials=2, seeds=(0,), sampler="grid"))
    lr = search_space(small_track, "ft")[0]
    assert sorted(t.params["lr"] for t in history.trials) == pytest.approx([lr.low, lr.high])


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_heartbeats_fail_and_retry_the_trial_of_a_dead_worker(small_track, small_results):
    workspace = Workspace(small_track, ResultsLayout(small_results))
    tune_cell(workspace, cell(), TuneOptions(trials=1, seeds=(0,), heartbeat=1))
    storage = open_storage(ResultsLayout(small_results).storage("tiny-digits"), heartbeat=1)
    study = optuna.load_study(study_name=study_name(cell()), storage=storage)
    lr = search_space(small_track, "ft")[0]
    orphan = study.ask({"lr": optuna.distributions.FloatDistribution(lr.low, lr.high, log=True)})
    storage.record_heartbeat(orphan._trial_id)  # then the worker dies: no more beats
    history = tune_cell(workspace, cell(), TuneOptions(trials=2, seeds=(0,), heartbeat=1))
    assert [t.state for t in history.trials] == ["COMPLETE", "FAIL", "COMPLETE"]
    assert history.trials[2].params == orphan.params
    assert (history.n_trials, history.n_failed, history.n_running) == (2, 1, 0)


def test_cell_params_override_one_cell_only(small_track):
    selection = select(small_track, methods=["l1-norm"], schedules=["ft"], budgets=[1, 2], seeds=[0])
    configs = expand(small_track, selection, cell_params={("l1-norm", True, "half", "ft", 2): {"lr": 0.05}})
    lrs = {(c.twin, c.budget_epochs): c.schedule_params["lr"] for c in configs}
    assert lrs == {(False, 1): 0.01, (False, 2): 0.01, (True, 1): 0.01, (True, 2): 0.05}


def test_all_methods_get_equal_trials_and_tuned_runs_carry_them(small_tracks, small_results, monkeypatch):
    monkeypatch.setenv(TRACKS_ENV, str(small_tracks))
    runner = CliRunner()
    common = ["--track", "tiny-digits", "--schedules", "ft", "--budgets", "1", "--results", str(small_results),
              "--json"]
    tuned = runner.invoke(app, ["tune", "--all-methods", "--trials", "2", *common])
    assert tuned.exit_code == 0, tuned.output
    studies = json.loads(tuned.stdout)["studies"]
    assert [(s["method"], s["n_trials"]) for s in studies] == [("l1-norm", 2), ("random twin of l1-norm", 2)]
    histories = {s["study"]: json.loads(open(s["history"]).read()) for s in studies}
    assert [h["n_trials"] for h in histories.values()] == [2, 2]

    ran = runner.invoke(app, ["run", "--tuned", "--seeds", "0", *common])
    assert ran.exit_code == 0, ran.output
    records, problems = load_records(ResultsLayout(small_results), "tiny-digits")
    assert not problems and len(records) == 2
    for record in records:
        history = histories[study_name(cell(twin=record.twin))]
        assert record.schedule_params == history["best_params"]
        assert record.tuning["study"] == history["study"]
        assert (record.tuning["n_trials"], record.tuning["split"]) == (2, "val")
        assert record.tuning["params"] == history["best_params"]

    untuned = runner.invoke(app, ["run", "--tuned", "--track", "tiny-digits", "--schedules", "ft", "--budgets", "2",
                                  "--seeds", "0", "--results", str(small_results)])
    assert untuned.exit_code == 2
    assert "no tuning history" in untuned.output
