"""The CLI is thin: each command's output and exit status, driven through Typer's runner; its help
answers without loading torch or the statistics stack."""

import io
import json
import subprocess
import sys

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from harness.cli import app, common

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


HEAVY = ("torch", "scipy", "optuna", "ray", "matplotlib", "fvcore", "torchvision", "torch_pruning", "sklearn", "numpy",
         "pydantic")
"""Libraries a command may run with but its help must not load (pydantic is typer's way of coercing option
values, which no help needs)."""


def command_paths(group=None, prefix=()):
    """Every command and group of the app, as argument lists: ``[], ["run"], ..., ["schedules", "show"]``."""
    group = group or get_command(app)
    yield list(prefix)
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from command_paths(command, (*prefix, name))
        else:
            yield [*prefix, name]


HELP_OF_EVERY_COMMAND = """
import sys, harness.cli
from typer.main import get_command

def paths(group, prefix=()):
    yield list(prefix)
    for name, command in group.commands.items():
        yield from paths(command, (*prefix, name)) if hasattr(command, "commands") else [[*prefix, name]]

cli = get_command(harness.cli.app)
for path in paths(cli):
    try:
        cli.main([*path, "--help"], prog_name="bench", standalone_mode=False)
    except SystemExit as exit:
        assert exit.code in (0, None), (path, exit.code)
print("loaded:", *sorted(set(sys.argv[1:]) & set(sys.modules)))
"""


def test_help_of_every_command_loads_no_heavy_library():
    result = subprocess.run([sys.executable, "-c", HELP_OF_EVERY_COMMAND, *HEAVY], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert "--json" in result.stdout and "--trials" in result.stdout and "--per-step" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "loaded:"


AUDIT_AND_LEADERBOARD = """
import sys
from harness.cli import app

results, report = sys.argv[1:3]
for args in (["audit", "--results", results, "--out", report], ["leaderboard", "--results", results]):
    try:
        app(args, prog_name="bench")
    except SystemExit as exit:
        assert exit.code in (0, 1, None), (args, exit.code)
print("loaded:", *sorted({"torch", "optuna", "ray", "fvcore", "torchvision"} & set(sys.modules)))
"""


def test_audit_and_leaderboard_load_no_torch(tmp_path):
    # the built-in methods' files are checked from their syntax tree: torch costs seconds and 650 MB to import
    from audit_fixtures import fair_records

    from harness.core.layout import ResultsLayout
    from harness.run.record import record_path, seal

    for record in fair_records():
        path = record_path(ResultsLayout(tmp_path / "results"), record)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(seal(record).model_dump(mode="json")))
    result = subprocess.run([sys.executable, "-c", AUDIT_AND_LEADERBOARD, str(tmp_path / "results"),
                             str(tmp_path / "report")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "report" / "REPORT.md").is_file()
    assert result.stdout.strip().splitlines()[-1] == "loaded:"


@pytest.mark.parametrize("columns", [80, 100, 200])
def test_help_shows_no_type_on_flags_and_cuts_no_text(columns):
    runner = CliRunner(env={"COLUMNS": str(columns)})
    for path in command_paths():
        result = runner.invoke(app, [*path, "--help"], terminal_width=columns)
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.output, path
        assert "\u2026" not in result.output, (path, columns)


def test_shared_options_read_the_same_in_every_command():
    helps = {}
    for path in command_paths():
        command = get_command(app)
        for name in path:
            command = command.commands[name]
        for param in command.params:
            for opt in param.opts:
                helps.setdefault(opt, set()).add(param.help)
    for option in ("--results", "--device", "--threads", "--json", "--wide"):
        assert len(helps[option]) == 1, (option, helps[option])


def test_identifier_columns_fold_instead_of_cutting_names():
    from rich.console import Console

    from harness.cli.run import summary_table

    name = "random twin of a-very-long-method-name-that-needs-more-room-than-eighty-columns-give"
    row = {"method": name, "target": "ratio-0.5-with-a-long-name", "schedule": "lrw", "budget": 1, "n": 2,
           "failed": 1, "test_acc_mean": 0.9, "test_acc_std": 0.01, "macs_kept": 0.5}
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(summary_table([row], "cells"))
    text = console.export_text()
    assert "\u2026" not in text and max(len(line) for line in text.splitlines()) <= 80
    method_column = "".join(line.split("│")[1].strip() for line in text.splitlines() if line.startswith("│"))
    assert method_column.replace(" ", "") == name.replace(" ", "")
    wide = Console(width=80, file=io.StringIO())
    common.out, saved = wide, common.out
    try:
        common.print_table(summary_table([row], "cells"), wide=True)
    finally:
        common.out = saved
    assert name in wide.file.getvalue()
