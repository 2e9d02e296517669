"""Faults an operator meets, injected for real: absurd budgets, a results path that is a file, a read-only or
full file system, corrupt checkpoints, two grids on one folder, a driver killed with SIGKILL, a kill during
dense training, and a broken plugin file. Each must cost one clear line and lose nothing."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

from harness.core import atomic
from harness.core.errors import BenchError, StorageError
from harness.core.layout import ResultsLayout
from harness.core.locks import acquire
from harness.dense import baseline
from harness.grid.driver import run_grid
from harness.grid.local import LocalExecutor
from harness.grid.selection import expand, select
from harness.run.record import load_records
from harness.track.schedules import (
    MAX_STEPS,
    check_budget,
    get_schedule,
    original_step_values,
    step_values,
)
from harness.train.checkpoints import FileCheckpoint
from harness.train.loop import TrainState

REPO = Path(__file__).resolve().parents[1]
RUN = [sys.executable, "-m", "harness", "run", "--schedules", "ft", "--seeds", "0", "--no-twins"]


def bench(args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, **kwargs)


def grid(track, budgets=(1,)):
    selection = select(track, methods=["l1-norm"], targets=["uniform-50"], schedules=["ft"], budgets=list(budgets),
                       seeds=[0], twins=False)
    return expand(track, selection)


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip() and "0:00" not in line]  # not the progress bar
    assert len(lines) == 1, stderr
    return lines[0]


def mount_tmpfs(folder: Path, size: str, read_only: bool = False) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                          capture_output=True).returncode == 0


@pytest.fixture
def tmpfs(tmp_path):
    mounted = []

    def make(name: str, size: str = "1m", read_only: bool = False) -> Path:
        folder = tmp_path / name
        if os.geteuid() != 0 or not mount_tmpfs(folder, size, read_only):
            pytest.skip("mounting a tmpfs needs root and a kernel that allows it here")
        mounted.append(folder)
        return folder

    yield make
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


# 1. bounded resources --------------------------------------------------------------------------------

def cli(args):
    """``bench ARGS`` in this process (the CLI's one-line errors, without a fresh interpreter's start-up)."""
    from typer.testing import CliRunner

    from harness.cli import app

    return CliRunner().invoke(app, args)


def test_an_oversized_budget_is_refused_in_one_line_before_any_work(tmp_path):
    started = time.monotonic()
    result = cli(RUN[3:] + ["--budgets", "100000000", "--results", str(tmp_path)])
    assert result.exit_code == 2
    assert "over the limit" in one_line(result.stderr) and "--budgets" in result.stderr
    assert time.monotonic() - started < 60 and not list(tmp_path.rglob("*.pt")), "nothing was trained"


def test_schedules_refuse_budgets_past_the_bound():
    from harness.track.definition import load_track

    recipe = load_track("digits-cnn").recipe
    with pytest.raises(BenchError, match="over the limit"):
        step_values(get_schedule("clr"), recipe, MAX_STEPS // 10, 11)
    with pytest.raises(BenchError, match="over the limit"):
        check_budget(10**9)
    assert len(original_step_values(recipe, 23).lr) == recipe.epochs * 23


@pytest.mark.parametrize("schedule", ["ft", "lrw", "slr", "clr"])
def test_a_schedule_costs_no_memory_per_step(schedule):
    """The largest budget allowed is computed when indexed: building it takes kilobytes, not gigabytes."""
    import tracemalloc

    from harness.track.definition import load_track

    recipe = load_track("digits-cnn").recipe
    epochs = recipe.epochs if schedule == "lrw" else 1000
    steps_per_epoch = MAX_STEPS // epochs
    tracemalloc.start()
    try:
        values = step_values(get_schedule(schedule), recipe, epochs, steps_per_epoch)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(values.lr) == epochs * steps_per_epoch > MAX_STEPS * 0.99
    assert peak < 200_000, f"{peak:,} bytes for {len(values.lr):,} steps"
    small = step_values(get_schedule(schedule), recipe, epochs, 1)
    if schedule == "clr":  # a formula of the step: the cycle starts and ends at the same rates at any length
        assert (values.lr[0], values.lr[-1]) == (small.lr[0], small.lr[-1])
    else:
        assert values.per_epoch() == list(small.lr), "every epoch's rate is the one a 1-step-per-epoch schedule has"


# 2. environment faults ------------------------------------------------------------------------------

def test_a_results_path_that_is_a_file_is_one_line(tmp_path):
    path = tmp_path / "results"
    path.write_text("not a folder")
    result = cli(RUN[3:] + ["--budgets", "1", "--results", str(path)])
    assert result.exit_code == 2
    assert "a file stands where a folder is needed" in one_line(result.stderr) and str(path) in result.stderr


def test_a_read_only_results_folder_is_refused_before_any_work(digits_track, tmpfs):
    folder = tmpfs("ro", read_only=True)
    with pytest.raises(StorageError, match="read-only file system"):
        run_grid(digits_track, grid(digits_track), ResultsLayout(folder), LocalExecutor(ResultsLayout(folder)))


def test_a_full_disk_is_one_line_naming_the_path_and_leaves_no_temporary_file(tmpfs):
    folder = tmpfs("full", size="64k")
    with pytest.raises(StorageError, match="no space left on device at .*big.pt"):
        atomic.torch_save_atomic({"w": torch.zeros(64 * 1024)}, folder / "big.pt")  # torch itself says "unexpected pos"
    with pytest.raises(StorageError, match="no space left on device"):
        atomic.write_json_atomic(folder / "big.json", {"x": "y" * 200_000})
    assert list(folder.iterdir()) == []


def test_a_full_disk_mid_grid_keeps_every_finished_record(digits_track, digits_results, monkeypatch):
    """ENOSPC on the third record: the first two are on disk, the grid stops with one line, no temp file."""
    configs = grid(digits_track, budgets=(1, 2, 3))
    layout = ResultsLayout(digits_results)
    real, writes = atomic._write_durably, []

    def writer(tmp, data):
        if tmp.name.endswith(".tmp") and tmp.parent == layout.track(digits_track.name):
            writes.append(tmp)
            if len(writes) == 3:
                raise OSError(errno.ENOSPC, "No space left on device")
        real(tmp, data)

    monkeypatch.setattr(atomic, "_write_durably", writer)
    with pytest.raises(StorageError, match="no space left on device at"):
        run_grid(digits_track, configs, layout, LocalExecutor(layout))
    assert len(load_records(layout, digits_track.name)[0]) == 2
    assert not list(layout.track(digits_track.name).rglob("*.tmp"))
    monkeypatch.setattr(atomic, "_write_durably", real)
    outcome = run_grid(digits_track, configs, layout, LocalExecutor(layout))
    assert (outcome.skipped, len(outcome.written)) == (2, 1)


@pytest.mark.parametrize("content", ["garbage", "foreign"])
def test_a_corrupt_or_foreign_checkpoint_is_refused_in_one_line(tmp_path, content):
    path = tmp_path / "run.pt"
    if content == "garbage":
        path.write_bytes(b"not a checkpoint")
    else:
        torch.save({"model": tempfile.TemporaryDirectory}, path)  # a pickled class: refused by weights_only
    with pytest.raises(BenchError) as caught:
        FileCheckpoint(path).load()
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and "delete it" in message
    assert "weights_only" not in message and path.exists(), "the file is never deleted: it may be someone's"


def test_an_unreadable_dense_baseline_is_retrained_with_a_warning(digits_track, digits_results, capsys):
    layout = ResultsLayout(digits_results)
    weights, _ = layout.dense_files(digits_track.name, baseline.dense_hash(digits_track, 0))
    expected = torch.load(weights, weights_only=True)
    torch.save({"model": tempfile.TemporaryDirectory}, weights)
    from harness.run.pipeline import Workspace

    state = Workspace(digits_track, layout).dense(0).state_dict
    assert "unreadable" in capsys.readouterr().err
    assert all(torch.equal(state[k], expected[k]) for k in expected)



def test_a_changed_dense_baseline_is_never_used(digits_track, digits_results, capsys):
    """Weights edited after training (a readable file of the right shapes) fail their recorded digest."""
    layout = ResultsLayout(digits_results)
    weights, _ = layout.dense_files(digits_track.name, baseline.dense_hash(digits_track, 0))
    expected = torch.load(weights, weights_only=True)
    tampered = {name: tensor.clone() for name, tensor in expected.items()}
    first = next(name for name, tensor in tampered.items() if tensor.is_floating_point())
    tampered[first] += 0.01
    torch.save(tampered, weights)
    from harness.run.pipeline import Workspace

    state = Workspace(digits_track, layout).dense(0).state_dict
    assert "does not match the digest recorded when it was trained" in capsys.readouterr().err
    assert all(torch.equal(state[k], expected[k]) for k in expected)

# 3. concurrency -------------------------------------------------------------------------------------

def test_a_run_claimed_by_another_process_is_skipped(digits_track, digits_results):
    configs = grid(digits_track, budgets=(1, 2))
    layout = ResultsLayout(digits_results)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from harness.core.locks import acquire; "
        f"lock = acquire({str(layout.lock(digits_track.name, configs[0].run_id))!r}); "
        "print(lock is not None, flush=True); time.sleep(60)")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "True"
        outcome = run_grid(digits_track, configs, layout, LocalExecutor(layout))
    finally:
        holder.kill()
        holder.wait()
    assert [r.id for r in outcome.written] == [configs[1].run_id] and outcome.elsewhere == 1
    assert acquire(layout.lock(digits_track.name, configs[0].run_id)) is not None, "a dead holder frees its claim"


def test_two_grids_on_one_folder_compute_every_run_once(digits_results):
    command = RUN + ["--budgets", "1,2,3", "--results", str(digits_results), "--json"]
    processes = [subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
    outputs = [p.communicate(timeout=180) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], [err for _, err in outputs]
    summaries = [json.loads(out) for out, _ in outputs]
    assert sum(s["written"] for s in summaries) == 3, summaries
    assert all(s["written"] + s["skipped"] == 3 for s in summaries)
    assert len(load_records(ResultsLayout(digits_results), "digits-cnn")[0]) == 3


def test_stale_temporary_files_are_removed_on_start_but_not_fresh_or_live_ones(digits_track, digits_results):
    layout = ResultsLayout(digits_results)
    folder = layout.track(digits_track.name)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    old, fresh, mine = (folder / f".x.json.{dead.pid}.a.tmp", folder / f".y.json.{dead.pid}.b.tmp",
                        layout.dense(digits_track.name) / f".z.pt.{os.getppid()}.c.tmp")
    for path in (old, fresh, mine):
        path.write_bytes(b"{}")
    os.utime(old, (time.time() - 120, time.time() - 120))
    os.utime(mine, (time.time() - 120, time.time() - 120))
    run_grid(digits_track, [], layout, LocalExecutor(layout))
    assert not old.exists() and fresh.exists() and mine.exists(), "only the killed writer's old file goes"


def test_discard_leaves_a_live_writers_temporary_file(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    checkpoint = FileCheckpoint.for_run(tmp_path, "abc")
    live = tmp_path / f".abc.pt.{sleeper.pid}.x1.tmp"
    stale = tmp_path / f".abc.pt.{dead.pid}.x2.tmp"
    for path in (checkpoint.path, live, stale):
        path.write_bytes(b"")
        os.utime(path, (time.time() - 120, time.time() - 120))  # older than STALE_SECONDS
    try:
        checkpoint.discard()
        assert sorted(p.name for p in tmp_path.iterdir()) == [live.name]
    finally:
        sleeper.kill()
        sleeper.wait()


# 4. no orphans --------------------------------------------------------------------------------------

def children(pid: int) -> set[int]:
    """Every live descendant of ``pid``, from /proc."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids) -> set[int]:
    living = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            living.add(pid)
    return living


def wait_for(condition, timeout: float, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    return condition()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_pool_workers_die_with_a_killed_driver(digits_results):
    driver = subprocess.Popen(RUN + ["--budgets", "5,6", "--workers", "2", "--results", str(digits_results)],
                              cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = wait_for(lambda: alive(children(driver.pid)) if len(alive(children(driver.pid))) >= 2 else set(), 60)
    assert len(workers) >= 2, "the pool started its workers"
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    assert wait_for(lambda: not alive(workers), 10), f"workers {alive(workers)} outlived their driver"


SLEEPY = '''
import time
from harness.methods import register_method


@register_method("sleepy-plugin", kind="structured")
def sleepy(ctx):
    time.sleep(120)
'''


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_an_isolated_plugin_child_dies_with_a_killed_driver_and_leaves_no_folder(digits_results, tmp_path):
    methods, scratch = tmp_path / "methods", tmp_path / "scratch"
    methods.mkdir()
    scratch.mkdir()
    (methods / "sleepy.py").write_text(SLEEPY)
    env = {**os.environ, "PRUNE_BENCH_METHODS": str(methods), "TMPDIR": str(scratch)}
    driver = subprocess.Popen(RUN + ["--methods", "sleepy-plugin", "--targets", "uniform-50", "--budgets", "1",
                                     "--results", str(digits_results)],
                              cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                              start_new_session=True)
    folders = wait_for(lambda: list(scratch.glob("bench-method-*")), 60)
    child = wait_for(lambda: alive(children(driver.pid)), 30)
    assert folders and child, "the plugin's isolated child started"
    time.sleep(0.5)
    os.killpg(driver.pid, signal.SIGKILL)  # the whole process group: the child has its own session
    driver.wait()
    assert wait_for(lambda: not alive(child), 10), f"isolated child {alive(child)} outlived its driver"
    assert wait_for(lambda: not list(scratch.glob("bench-method-*")), 5), "its temporary folder was removed"


# 5. dense training resumes --------------------------------------------------------------------------

class Killed(Exception):
    """Stands in for a kill after an epoch of dense training."""


def test_dense_training_resumes_from_its_last_epoch_bit_for_bit(digits_track, trained_results, tmp_path, monkeypatch):
    layout = ResultsLayout(tmp_path)
    key = baseline.dense_hash(digits_track, 0)
    real_train, resumed_from = baseline.train, []

    def killed_after_epoch_5(*args, **kwargs):
        def on_epoch(epoch, loss, acc):
            if epoch + 1 == 5:
                raise Killed

        return real_train(*args, on_epoch=on_epoch, **kwargs)

    from harness.run.pipeline import Workspace

    workspace = Workspace(digits_track, layout)
    monkeypatch.setattr(baseline, "train", killed_after_epoch_5)
    with pytest.raises(Killed):
        workspace.dense(0)
    saved = FileCheckpoint(layout.dense_checkpoint(digits_track.name, key)).load()
    assert isinstance(saved, TrainState) and saved.epochs_done == 5

    real_load = FileCheckpoint.load

    def spy(self):
        state = real_load(self)
        resumed_from.append(state and state.epochs_done)
        return state

    monkeypatch.setattr(baseline, "train", real_train)
    monkeypatch.setattr(FileCheckpoint, "load", spy)
    resumed = workspace.dense(0)
    assert resumed_from == [5]
    uninterrupted = ResultsLayout(trained_results).dense_files(digits_track.name, key)[0]
    expected = torch.load(uninterrupted, weights_only=True)
    assert all(torch.equal(resumed.state_dict[k].cpu(), expected[k]) for k in expected)
    weights = layout.dense_files(digits_track.name, key)[0]
    assert weights.read_bytes() == uninterrupted.read_bytes(), "identical tensors, identical bytes"
    assert not layout.dense_checkpoint(digits_track.name, key).exists(), "the checkpoint goes once cached"


# 6. a bad plugin file -------------------------------------------------------------------------------

def test_an_unparsable_plugin_is_one_warning_and_blocks_no_command(tmp_path, trained_results):
    methods = tmp_path / "methods"
    methods.mkdir()
    shutil.copy(REPO / "bench" / "methods" / "example_apoz.py", methods)
    (methods / "broken.py").write_text("def broken(:\n")
    env = {**os.environ, "PRUNE_BENCH_METHODS": str(methods)}
    tracks = bench(["tracks"], env=env)
    assert tracks.returncode == 0, tracks.stderr
    warning = one_line(tracks.stderr)
    assert warning.startswith("warning:") and "broken.py" in warning and "skipped" in warning
    audit = bench(["audit", "--results", str(trained_results)], env=env)
    assert "Traceback" not in audit.stderr and "error: " + str(methods) not in audit.stderr
    assert audit.stderr.count("broken.py") == 1


def test_claims_past_the_open_file_limit_still_run_every_configuration(digits_track, digits_results, monkeypatch):
    """A held claim is an open file: a grid larger than the file limit claims what fits and runs the rest too."""
    from harness.grid import driver

    monkeypatch.setattr(driver, "_open_file_room", lambda wanted: driver.Claims.SPARE_FILES + 1)
    layout = ResultsLayout(digits_results)
    outcome = run_grid(digits_track, grid(digits_track, budgets=(1, 2, 3)), layout, LocalExecutor(layout))
    assert len(outcome.written) == 3 and outcome.elsewhere == 0


def test_atomic_writes_honour_the_umask_and_leave_no_temporary_file(tmp_path):
    previous = os.umask(0o027)
    try:
        atomic.write_json_atomic(tmp_path / "a.json", {"x": 1})
        atomic.torch_save_atomic({"w": torch.ones(2)}, tmp_path / "b.pt")
    finally:
        os.umask(previous)
    assert {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()} == {"a.json": 0o640, "b.pt": 0o640}


# 1 and 7. limits as options, exit codes and JSON errors -------------------------------------------------

def test_run_and_submit_share_the_plugin_limit_options():
    for command in ("run", "submit"):
        shown = cli([command, "--help"]).output
        assert all(option in shown for option in ("--wall-limit", "--cpu-limit", "--memory-limit")), shown
    refused = cli(["run", "--cpu-limit", "0"])
    assert refused.exit_code == 2 and "must be positive" in one_line(refused.output)


@pytest.mark.parametrize("args, words", [
    (["--seeds=-1"], "seeds must be whole numbers from 0 to 4294967295, got [-1]"),
    (["--seeds", "5000000000"], "got [5000000000]"),
    (["--seeds", ",".join(map(str, range(30_000))), "--schedules", "ft", "--budgets", "1,2"],
     "the grid has 120,000 runs, more than the 100,000 one command takes"),
])
def test_seeds_and_grid_sizes_past_their_limits_are_one_line(tmp_path, args, words):
    refused = cli(["run", "--results", str(tmp_path), *args])
    assert refused.exit_code == 2 and words in one_line(refused.output)
    assert not any(tmp_path.iterdir())


def test_with_json_a_user_error_is_also_one_json_object_on_stdout(tmp_path):
    refused = bench(["run", "--results", str(tmp_path), "--seeds=-1", "--json"])
    assert refused.returncode == 2
    assert json.loads(refused.stdout) == {
        "error": "seeds must be whole numbers from 0 to 4294967295, got [-1]; give seeds in that range "
                 "(for example --seeds 0,1,2)",
        "fix": "give seeds in that range (for example --seeds 0,1,2)"}
    assert one_line(refused.stderr).startswith("error: seeds must be")


def test_verify_of_a_folder_without_records_is_exit_2(tmp_path):
    empty = bench(["verify", "--results", str(tmp_path)])
    assert empty.returncode == 2 and "nothing to verify" in one_line(empty.stderr)


def test_a_failed_method_makes_run_exit_1_after_its_summary_line(digits_results, tmp_path):
    """A plugin that hangs is stopped by --wall-limit (so bench run can lower the 600 s), its run is recorded
    as failed, the last line counts it, and the exit status is 1."""
    methods = tmp_path / "methods"
    methods.mkdir()
    (methods / "hang.py").write_text(
        "import time\nfrom harness.methods import register_method\n\n\n"
        "@register_method('plugin-hang', kind='structured')\ndef hang(ctx):\n    time.sleep(600)\n")
    env = {**os.environ, "PRUNE_BENCH_METHODS": str(methods)}
    done = bench([*RUN[3:], "--methods", "plugin-hang", "--budgets", "1", "--results", str(digits_results),
                  "--wall-limit", "3"], env=env)
    assert done.returncode == 1, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last == "digits-cnn: 1 runs: 1 written (1 failed, 0 diverged), 0 already done, 0 done or running elsewhere"
    again = bench([*RUN[3:], "--methods", "plugin-hang", "--budgets", "1", "--results", str(digits_results),
                   "--json"], env=env)
    summary = json.loads(again.stdout)
    assert again.returncode == 1 and (summary["written"], summary["failed_before"]) == (0, 1)


def test_a_reused_tuning_history_outside_its_declared_space_is_refused(digits_track):
    from harness.run.cells import CellKey
    from harness.tune.history import StudyHistory
    from harness.tune.tuned import check_space

    def history(**changes):
        fields = dict(study="s", cell=CellKey("digits-cnn", "l1-norm", False, "uniform-50", "ft", 1), seeds=[0], dense_hashes=["abc"], sampler="tpe", seed=0,
                      pruner="median", space={"lr": {"low": 0.0001, "high": 0.1, "log": True}}, split="val",
                      trials_requested=1, n_trials=1, n_complete=1, n_pruned=0, n_failed=0, n_running=0, trials=[],
                      best_params={"lr": 0.01}, best_value=0.9)
        return StudyHistory(**{**fields, **changes})

    check_space(history(), digits_track, "ft")
    for changes, words in (({"best_params": {"lr": 1e6}}, "outside schedule 'ft''s declared space"),
                           ({"best_params": {"lr": float("nan")}}, "outside"),
                           ({"best_params": {"momentum": 0.5}}, "which schedule 'ft' does not tune"),
                           ({"space": {"lr": {"low": 0.0001, "high": 1e6, "log": True}}}, "declared space")):
        with pytest.raises(BenchError, match="retune the cell"):
            check_space(history(**changes), digits_track, "ft")
        with pytest.raises(BenchError) as refused:
            check_space(history(**changes), digits_track, "ft")
        assert words in str(refused.value)
