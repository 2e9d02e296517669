"""Runs end to end on the real digits data: records, twins, divergence, caching and resume."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO

from harness.core.layout import ResultsLayout
from harness.dense import baseline as dense_module
from harness.grid.driver import run_grid
from harness.grid.local import LocalExecutor
from harness.grid.selection import expand, select
from harness.run.execution import execute
from harness.run.pipeline import Workspace
from harness.run.record import RunConfig, load_records, record_path


def small_grid(track, **changes):
    options = dict(methods=["l1-norm"], targets=["uniform-50"], schedules=["none", "ft", "clr"], budgets=[2],
                   seeds=[0, 1])
    return expand(track, select(track, **{**options, **changes}))


def test_a_run_record_has_every_promised_field(digits_track, trained_results):
    workspace = Workspace(digits_track, ResultsLayout(trained_results))
    config = small_grid(digits_track, schedules=["slr"], seeds=[0])[0]
    record = execute(workspace, config)
    assert record.status == "ok" and record.id == config.run_id
    for field in ("track", "method", "twin", "target", "schedule", "schedule_params", "budget_epochs", "seed",
                  "status", "test_acc", "val_acc", "dense_test_acc", "params_before", "params_after",
                  "macs_before", "macs_after", "curves", "wall_seconds", "env"):
        assert getattr(record, field) is not None, field
    assert record.params_after < record.params_before and record.macs_after < record.macs_before
    assert len(record.curves.val_acc) == len(record.curves.train_loss) == 2
    assert record.retrain_steps == 2 * record.steps_per_epoch
    assert record.dense_test_acc > 0.9
    assert record.protocol.peak_lr == 0.1 and record.protocol.batch_size == 64


def test_the_test_split_is_read_once_per_run_and_only_at_the_end(digits_track, trained_results):
    workspace = Workspace(digits_track, ResultsLayout(trained_results))
    workspace.dense(0)
    reads = workspace.splits.test_reads
    config = small_grid(digits_track, schedules=["ft"], seeds=[0])[0]
    record = execute(workspace, config)
    assert workspace.splits.test_reads == reads + 1
    assert record.val_acc == record.curves.val_acc[-1]


def test_the_random_twin_keeps_the_same_count_in_every_layer(digits_track, trained_results):
    workspace = Workspace(digits_track, ResultsLayout(trained_results))
    method, twin = [c for c in small_grid(digits_track, schedules=["none"], seeds=[0])]
    assert twin.twin and not method.twin
    a, b = execute(workspace, method), execute(workspace, twin)
    assert a.kept == b.kept and a.params_after == b.params_after and a.macs_after == b.macs_after
    assert a.test_acc != b.test_acc


def test_a_diverging_run_is_recorded_and_the_grid_goes_on(digits_track, digits_results):
    good = small_grid(digits_track, schedules=["ft"], seeds=[0])[0]
    exploding = RunConfig(**{**good.model_dump(), "schedule_params": {"lr": 1e6}})
    layout = ResultsLayout(digits_results)
    outcome = run_grid(digits_track, [exploding, good], layout, LocalExecutor(layout))
    statuses = [r.status for r in outcome.written]
    assert statuses == ["diverged", "ok"]
    assert outcome.written[0].test_acc is None
    stored = json.loads(record_path(layout, exploding).read_text())
    assert stored["status"] == "diverged"


def test_the_dense_baseline_is_cached_by_hash(digits_track, trained_results, monkeypatch):
    monkeypatch.setattr(dense_module, "train", lambda *a, **k: pytest.fail("dense baseline retrained"))
    baseline = Workspace(digits_track, ResultsLayout(trained_results)).dense(0)
    assert baseline.test_acc > 0.9


def test_an_interrupted_grid_resumes_without_redoing_anything(digits_track, digits_results):
    layout = ResultsLayout(digits_results)
    configs = small_grid(digits_track)
    seen = []

    def interrupt_after_three(record):
        seen.append(record.id)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_grid(digits_track, configs, layout, LocalExecutor(layout), on_record=interrupt_after_three)
    assert len(load_records(layout)[0]) == 3
    outcome = run_grid(digits_track, configs, layout, LocalExecutor(layout))
    assert outcome.skipped == 3 and len(outcome.written) == len(configs) - 3
    assert not {r.id for r in outcome.written} & set(seen)
    again = run_grid(digits_track, configs, layout, LocalExecutor(layout))
    assert again.skipped == len(configs) and again.written == []


@pytest.mark.slow
def test_a_killed_bench_run_loses_nothing(tmp_path):
    command = [sys.executable, "-m", "harness", "run", "--results", str(tmp_path), "--schedules", "ft",
               "--budgets", "3", "--seeds", "0,1,2,3,4,5", "--json"]
    folder = tmp_path / "digits-cnn"
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(folder.glob("*.json"))) < 3:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    survivors = load_records(ResultsLayout(tmp_path))
    assert survivors[1] == [] and len(survivors[0]) >= 3
    finished = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
    summary = json.loads(finished.stdout)
    assert summary["skipped"] >= len(survivors[0]) and summary["planned"] == 12
    assert summary["skipped"] + summary["written"] == 12
    assert len(load_records(ResultsLayout(tmp_path))[0]) == 12


def test_an_unreadable_record_is_rerun_not_skipped(digits_track, digits_results):
    config = small_grid(digits_track, schedules=["ft"], seeds=[0])[0]
    layout = ResultsLayout(digits_results)
    run_grid(digits_track, [config], layout, LocalExecutor(layout))
    path = record_path(layout, config)
    path.write_text("{truncated")
    outcome = run_grid(digits_track, [config], layout, LocalExecutor(layout))
    assert outcome.skipped == 0 and len(outcome.written) == 1
    assert load_records(layout, "digits-cnn")[1] == []


def test_local_checkpoints_are_removed_once_the_record_is_written(digits_track, trained_results, tmp_path):
    configs = small_grid(digits_track, schedules=["clr"], seeds=[0], twins=False)
    checkpoints = tmp_path / "checkpoints"
    written = []
    executor = LocalExecutor(ResultsLayout(trained_results), checkpoint_folder=checkpoints)
    for record in executor.map(digits_track, configs):
        written.append(record)
        assert list(checkpoints.glob("*.pt")), "the run saved its per-epoch state"
    assert written[0].status == "ok" and not list(checkpoints.glob("*.pt"))
