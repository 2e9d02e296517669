"""The Ray executor on a local two-CPU Ray instance, started once for the module.

It must give the local executor's records; retry a run whose worker process was killed (the
retry continues from the run's checkpoint); record a run's own failure once, with its traceback;
let a killed `bench run --executor ray` resume; and tune cells in parallel worker processes
against one storage with exactly the requested trials -- the same trials as tuning sequentially.
A small digits track (four dense epochs) keeps every run to a fraction of a second.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

ray = pytest.importorskip("ray")

from conftest import REPO  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from harness.cli import app  # noqa: E402
from harness.core.errors import BenchError  # noqa: E402
from harness.core.layout import ResultsLayout
from harness.grid.driver import run_grid  # noqa: E402
from harness.grid.local import LocalExecutor
from harness.grid.ray import RayExecutor  # noqa: E402
from harness.grid.selection import expand, select  # noqa: E402
from harness.methods import get_method, register_method  # noqa: E402
from harness.run.cells import CellKey  # noqa: E402
from harness.run.execution import execute  # noqa: E402
from harness.run.pipeline import Workspace  # noqa: E402
from harness.run.record import RunConfig, load_records  # noqa: E402
from harness.track.definition import TRACKS_ENV  # noqa: E402
from harness.train.checkpoints import FileCheckpoint  # noqa: E402
from harness.tune.search import TuneOptions, tune_cells  # noqa: E402

SMALL_TRACK_CHANGES = {
    "name": "ray-digits", "description": "four-epoch digits track for the Ray executor tests",
    "data": {"val_size": 0.25, "test_size": 0.25}, "recipe": {"epochs": 4, "milestones": [2]},
    "retraining": {"budgets": [2]}, "seeds": {"dense": [0, 1]},
}


@pytest.fixture(scope="module")
def local_ray():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def grid(small_track, methods=("l1-norm",), **changes):
    options = dict(targets=["half"], schedules=["ft", "clr"], budgets=[2], seeds=[0, 1], twins=True)
    return expand(small_track, select(small_track, methods=list(methods), **{**options, **changes}))


def outcome_of(record):
    return (record.status, record.test_acc, record.val_acc, record.curves, record.kept, record.params_after,
            record.macs_after, record.dense_test_acc, record.retrain_steps)


def test_a_grid_on_ray_gives_the_local_executors_records(small_track, local_ray, small_results, tmp_path):
    configs = grid(small_track)
    local_results = shutil.copytree(small_results, tmp_path / "local")
    on_ray = run_grid(small_track, configs, ResultsLayout(small_results), RayExecutor(ResultsLayout(small_results)))
    local = run_grid(small_track, configs, ResultsLayout(local_results), LocalExecutor(ResultsLayout(local_results)))
    assert len(configs) == 8 and on_ray.failed == [] and on_ray.skipped == 0
    assert {r.id: outcome_of(r) for r in on_ray.written} == {r.id: outcome_of(r) for r in local.written}
    assert {r.id for r in load_records(ResultsLayout(small_results))[0]} == {c.run_id for c in configs}
    assert not any(ResultsLayout(small_results).checkpoints(small_track.name).glob("*"))


def exit_once_checkpointed(path):
    """Stands in for a worker dying mid-run: the process ends as soon as the run saved an epoch."""
    while not path.exists():
        time.sleep(0.001)
    os._exit(1)


def test_a_worker_killed_mid_run_is_retried_and_continues_from_its_checkpoint(small_track, local_ray, small_results,
                                                                               tmp_path):
    attempts = tmp_path / "attempts"
    folder = tmp_path / "checkpoints"
    l1_norm = get_method("l1-norm")

    @register_method("ray-test-dies-once")
    def dies_once(context):
        """l1-norm, in a worker that dies after the first epoch of its first attempt."""
        saved = FileCheckpoint(checkpoint).load()
        with attempts.open("a") as log:
            log.write(f"{os.getpid()} {saved.epochs_done if saved else 0}\n")
        if saved is None:
            threading.Thread(target=exit_once_checkpointed, args=(checkpoint,), daemon=True).start()
        return l1_norm.select(context)

    dying = grid(small_track, methods=["ray-test-dies-once"], schedules=["ft"], budgets=[30], seeds=[0], twins=False)[0]
    checkpoint = FileCheckpoint.for_run(folder, dying.run_id).path
    others = grid(small_track, schedules=["ft"], seeds=[1])
    layout = ResultsLayout(small_results)
    executor = RayExecutor(layout, max_retries=1, checkpoint_folder=folder)
    outcome = run_grid(small_track, [dying, *others], layout, executor)

    assert [r.status for r in outcome.written].count("ok") == 3
    (first_pid, first_epochs), (second_pid, resumed_at) = [line.split() for line in attempts.read_text().splitlines()]
    assert first_pid != second_pid and first_epochs == "0" and 1 <= int(resumed_at) < 30
    straight = execute(Workspace(small_track, layout), RunConfig(**{**dying.model_dump(), "method": "l1-norm"}))
    record = next(r for r in outcome.written if r.id == dying.run_id)
    assert (record.test_acc, record.curves) == (straight.test_acc, straight.curves)
    assert list(folder.iterdir()) == []


def test_a_runs_own_failure_is_recorded_once_with_its_traceback(small_track, local_ray, small_results, tmp_path):
    calls = tmp_path / "calls"

    @register_method("ray-test-raises")
    def raises(context):
        """Fails in the method itself."""
        with calls.open("a") as log:
            log.write("raises\n")
        raise ValueError("planted failure")

    @register_method("ray-test-counted")
    def counted(context):
        """l1-norm, counting its calls; its run fails later, in retraining."""
        with calls.open("a") as log:
            log.write("counted\n")
        return get_method("l1-norm").select(context)

    failing = grid(small_track, methods=["ray-test-raises"], schedules=["ft"], seeds=[0], twins=False)[0]
    counted_run = grid(small_track, methods=["ray-test-counted"], schedules=["ft"], seeds=[0], twins=False)[0]
    bad_schedule = RunConfig(**{**counted_run.model_dump(), "schedule_params": {"no_such_param": 1.0}})
    layout = ResultsLayout(small_results)
    outcome = run_grid(small_track, [failing, bad_schedule], layout, RayExecutor(layout, max_retries=2))

    assert sorted(calls.read_text().split()) == ["counted", "raises"]
    by_id = {r.id: r for r in outcome.written}
    assert [r.status for r in outcome.written] == ["failed", "failed"]
    assert "ValueError: planted failure" in by_id[failing.run_id].error
    assert "in resolve_params" in by_id[bad_schedule.run_id].error  # a frame of the worker's traceback
    assert by_id[bad_schedule.run_id].error.endswith("has no hyperparameter 'no_such_param' (tunable: lr); "
                                                     "everything else is fixed by the track")
    again = run_grid(small_track, [failing, bad_schedule], layout, RayExecutor(layout))
    assert again.skipped == 2 and sorted(calls.read_text().split()) == ["counted", "raises"]


def test_a_killed_bench_run_on_ray_resumes(small_tracks, local_ray, tmp_path, monkeypatch):
    """Killed with the local Ray instance it started; rerun (in this process, on the module's instance) it resumes."""
    arguments = ["run", "--executor", "ray", "--track", "ray-digits", "--results", str(tmp_path), "--schedules", "ft",
                 "--budgets", "3", "--seeds", "0,1,2,3,4,5", "--json"]
    monkeypatch.setenv(TRACKS_ENV, str(small_tracks))
    folder = tmp_path / "ray-digits"
    driver = subprocess.Popen([sys.executable, "-m", "harness", *arguments], cwd=REPO, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(folder.glob("*.json"))) < 3:
        time.sleep(0.05)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    survivors, problems = load_records(ResultsLayout(tmp_path))
    assert problems == [] and len(survivors) >= 3
    written_before = {path: path.read_text() for path in folder.glob("*.json")}
    rerun = CliRunner().invoke(app, arguments)
    assert rerun.exit_code == 0, rerun.output
    summary = json.loads(rerun.stdout)
    assert summary["planned"] == 12 and summary["skipped"] == len(survivors)
    assert summary["skipped"] + summary["written"] == 12
    assert all(path.read_text() == text for path, text in written_before.items())
    assert len(load_records(ResultsLayout(tmp_path))[0]) == 12
    assert not any(ResultsLayout(tmp_path).checkpoints("ray-digits").glob("*"))


def test_tuning_workers_share_one_storage_and_run_exactly_the_requested_trials(small_tracks, small_track, local_ray,
                                                                                 small_results, tmp_path, monkeypatch):
    """Two cells tuned by two Ray worker processes at once against one SQLite file, as sequential tuning would."""
    monkeypatch.setenv(TRACKS_ENV, str(small_tracks))
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    invoked = CliRunner().invoke(app, [
        "tune", "--executor", "ray", "--track", "ray-digits", "--method", "l1-norm", "--schedule", "ft",
        "--budget", "2", "--trials", "3", "--pruner", "none", "--storage", storage, "--results", str(small_results),
        "--json"])
    assert invoked.exit_code == 0, invoked.output
    studies = json.loads(invoked.stdout)["studies"]
    assert [(s["study"], s["n_trials"], s["n_complete"], s["n_failed"], s["n_running"]) for s in studies] == [
        ("ray-digits.l1-norm.half.ft.2ep", 3, 3, 0, 0), ("ray-digits.l1-norm+twin.half.ft.2ep", 3, 3, 0, 0)]
    exported = [json.loads(ResultsLayout(small_results).history("ray-digits", s["study"]).read_text()) for s in studies]
    cells = [CellKey("ray-digits", "l1-norm", twin, "half", "ft", 2) for twin in (False, True)]
    one_machine = TuneOptions(trials=3, seeds=(0,), pruner="none", storage=f"sqlite:///{tmp_path / 'one.db'}")
    sequential = tune_cells(Workspace(small_track, ResultsLayout(small_results)), cells, one_machine)
    assert [[(t["params"], t["value"]) for t in e["trials"]] for e in exported] == [
        [(t.params, t.value) for t in h.trials] for h in sequential]


def test_ray_options_are_checked_before_anything_runs(small_tracks, small_track, local_ray, small_results, monkeypatch):
    monkeypatch.setenv(TRACKS_ENV, str(small_tracks))
    base = ["run", "--track", "ray-digits", "--results", str(small_results), "--schedules", "ft", "--seeds", "0"]
    cases = {
        ("--address", "auto"): "--address only applies with --executor ray",
        ("--executor", "ray", "--gpus-per-run", "1"): "torch sees no CUDA device",
        ("--executor", "ray", "--device", "cuda"): "add --gpus-per-run",
        ("--executor", "ray", "--cpus-per-run", "0"): "--cpus-per-run must be positive",
        ("--executor", "dask"): "unknown executor 'dask'",
    }
    for extra, message in cases.items():
        invoked = CliRunner().invoke(app, [*base, *extra])
        assert invoked.exit_code == 2 and message in invoked.output, (extra, invoked.output)
    with pytest.raises(BenchError, match="asks for more than the Ray cluster's 0 GPU"):
        next(RayExecutor(ResultsLayout(small_results), gpus_per_run=0.5).map(small_track, grid(small_track)))
    assert load_records(ResultsLayout(small_results))[0] == []
