"""The CLI is thin: each command's output and exit status, driven through Typer's runner."""

import json

from typer.testing import CliRunner

from harness.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, list(args))


def test_schedules_show_prints_the_lr_of_every_epoch():
    result = invoke("schedules", "show", "lrw", "--track", "cifar10-resnet56", "--epochs", "72", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["schedule"] == "lrw" and payload["epochs"] == 72
    assert payload["lr"] == [0.01] * 32 + [0.001] * 40


def test_schedules_show_per_step_gives_every_iteration_of_one_cycle():
    result = invoke("schedules", "show", "clr", "--track", "cifar10-resnet56", "--epochs", "2", "--per-step", "--json")
    payload = json.loads(result.stdout)
    assert payload["steps_per_epoch"] == 704 and len(payload["lr"]) == 2 * 704
    assert payload["lr"][0] == payload["lr"][0] and abs(payload["lr"][0] - 0.001) < 1e-12
    assert len(payload["momentum"]) == len(payload["lr"])


def test_schedules_and_tracks_list_as_json():
    names = [s["name"] for s in json.loads(invoke("schedules", "--json").stdout)]
    assert names == ["none", "ft", "lrw", "slr", "clr"]
    tracks = json.loads(invoke("tracks", "--json").stdout)
    assert [t["name"] for t in tracks if t["default"]] == ["digits-cnn"]


def test_a_bad_option_is_one_line_and_exit_2():
    result = invoke("run", "--track", "nope")
    assert result.exit_code == 2
    assert "unknown track 'nope'" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    result = invoke("schedules", "show", "slr", "--epochs", "10", "--param", "batch_size=3")
    assert result.exit_code == 2 and "no hyperparameter 'batch_size'" in result.stderr


def test_bench_run_ends_in_a_summary_and_resumes(trained_results):
    args = ("run", "--results", str(trained_results), "--schedules", "none,ft", "--budgets", "1", "--seeds", "0,1")
    first = invoke(*args, "--json")
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    assert summary["planned"] == 8 and summary["skipped"] + summary["written"] == 8
    cells = {(c["method"], c["schedule"]): c for c in summary["cells"]}
    assert cells[("random twin of l1-norm", "ft")]["n"] == 2
    second = invoke(*args)
    assert second.exit_code == 0 and "8 already done" in second.stdout.replace("\n", " ")


def test_malformed_list_and_parameter_options_are_refused():
    for args, message in ((("run", "--budgets", ","), "is empty"),
                          (("run", "--seeds", "a,b"), "comma-separated list"),
                          (("schedules", "show", "slr", "--epochs", "10", "--param", "peak_lr"), "NAME=NUMBER"),
                          (("schedules", "show", "clr", "--epochs", "0"), "at least 1"),
                          (("run", "--threads", "0"), "")):
        result = invoke(*args)
        assert result.exit_code == 2 and message in result.stderr, (args, result.stderr)
