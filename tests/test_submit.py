"""``bench submit``: the example plugin goes through the whole protocol on a small digits track and
comes out with sealed records, a verdict table against the existing entry and an audit report."""

import hashlib
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.audit import audit_results
from harness.cli import app
from harness.core.errors import BenchError
from harness.core.layout import ResultsLayout
from harness.grid.driver import run_grid
from harness.grid.local import LocalExecutor
from harness.grid.selection import expand, select
from harness.protocols.submit import equal_tuning, submission_seeds, submit
from harness.run.record import load_records
from harness.track.definition import load_track, load_track_file
from harness.tune.search import TuneOptions

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "bench" / "methods" / "example_apoz.py"
TRACK = "mini-digits"


def mini_track(folder: Path) -> Path:
    """The digits track, made small: a 4-epoch recipe, budget 1, three schedules, one target."""
    text = (REPO / "bench" / "tracks" / "digits-cnn.toml").read_text().split("[quick]")[0]
    text = text.replace('name = "digits-cnn"\ndescription', f'name = "{TRACK}"\ndescription', 1)
    text = text.replace("epochs = 40\nmilestones = [20, 30]", "epochs = 4\nmilestones = [2, 3]")
    text = text.replace("budgets = [10, 20, 30]", "budgets = [1]")
    text = text.replace('schedules = ["none", "ft", "lrw", "slr", "clr"]', 'schedules = ["none", "ft", "clr"]')
    text = re.sub(r"targets = \[\n.*?\n\]\n", 'targets = [{ name = "uniform-50", kind = "ratio", ratio = 0.5 }]\n',
                  text, flags=re.S)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{TRACK}.toml").write_text(text)
    return folder


@pytest.fixture(scope="module")
def leaderboard(tmp_path_factory):
    """The small track's tracks folder and a results folder holding l1-norm's full grid (the existing entry)."""
    root = tmp_path_factory.mktemp("submit")
    tracks = mini_track(root / "tracks")
    track = load_track(TRACK, tracks)
    results = root / "results"
    run_grid(track, expand(track, select(track, full=True, methods=["l1-norm"])), ResultsLayout(results), LocalExecutor(ResultsLayout(results)))
    return tracks, results


def test_the_small_track_keeps_the_digits_protocol(tmp_path):
    track = load_track_file(mini_track(tmp_path) / f"{TRACK}.toml")
    assert track.retraining.schedules == ("none", "ft", "clr") and track.retraining.budgets == (1,)
    assert [t.name for t in track.pruning.targets] == ["uniform-50"] and track.seeds.runs == (0, 1, 2, 3, 4)


def test_a_dry_run_states_the_runs_to_do_and_their_cost(leaderboard, monkeypatch):
    tracks, results = leaderboard
    monkeypatch.setenv("PRUNE_BENCH_TRACKS", str(tracks))
    before = sorted(p.name for p in (results / TRACK).iterdir())
    outcome = CliRunner().invoke(app, ["submit", str(EXAMPLE), "--track", TRACK, "--results", str(results),
                                       "--dry-run", "--json", "--workers", "2"])
    assert outcome.exit_code == 0, outcome.output
    payload = json.loads(outcome.stdout)
    assert (payload["to_run"], payload["done"]) == (30, 0) and payload["tracks"][0]["stale"] == []
    l1 = [r for r in load_records(ResultsLayout(results), TRACK)[0]]
    per_cell = {}
    for r in l1:
        per_cell.setdefault((r.schedule, r.budget_epochs), []).append(r.wall_seconds)
    expected = sum(10 * sum(v) / len(v) for v in per_cell.values()) / 2  # 5 seeds x (method, twin) per cell
    assert payload["estimated_seconds"] == pytest.approx(expected)
    assert sorted(p.name for p in (results / TRACK).iterdir()) == before  # nothing ran


def test_the_example_plugin_submits_end_to_end(leaderboard, monkeypatch):
    tracks, results = leaderboard
    monkeypatch.setenv("PRUNE_BENCH_TRACKS", str(tracks))
    before = {p.name: p.read_bytes() for p in (results / TRACK).glob("*.json")}
    entries_before = audit_results(ResultsLayout(results), TRACK)
    outcome = CliRunner().invoke(app, ["submit", str(EXAMPLE), "--track", TRACK, "--results", str(results), "--json"])
    assert outcome.exit_code == 0, outcome.output
    payload = json.loads(outcome.stdout)
    digest = hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    assert (payload["method"], payload["kind"], payload["passed"], payload["method_digest"]) == (
        "example-apoz", "structured", True, digest)
    (track,) = payload["tracks"]
    assert (track["planned"], track["ran"], track["failures"], track["seeds"]) == (30, 30, [], [0, 1, 2, 3, 4])
    assert [(r["schedule"], r["budget_epochs"], r["n"]) for r in track["rows"]] == [("none", 0, 5), ("ft", 1, 5),
                                                                                    ("clr", 1, 5)]
    for row in track["rows"]:
        assert row["twin_verdict"] in ("better", "tie", "equivalent", "worse") and row["fails"] == []
        assert row["better_than"] + row["tied_with"] + row["worse_than"] == ["l1-norm"]
        assert 0 < row["ci_low"] <= row["mean"] <= row["ci_high"] < 1
    assert all(f["severity"] != "fail" for f in track["findings"])
    report = Path(track["report"])
    assert report == results / TRACK / "submissions" / "example-apoz" / "REPORT.md"
    assert "example-apoz" in report.read_text() and (report.parent / "audit.json").exists()
    assert report.read_text().startswith("# Submission of example-apoz to mini-digits: passed")
    assert '<section id="submission">' in (report.parent / "report.html").read_text()
    for row in track["rows"]:
        assert [v["against"] for v in row["versus"]] == ["random twin", "l1-norm"]
        for v in row["versus"]:
            assert v["ci_low"] <= v["difference"] <= v["ci_high"] and v["minimum_detectable_difference"] > 0
    assert json.loads((report.parent / "submission.json").read_text())["rows"] == track["rows"]
    entries_after = audit_results(ResultsLayout(results), TRACK)
    others = {(c.a, c.b): c for c in entries_after.comparisons if "example-apoz" not in c.a + c.b}
    assert {(c.a, c.b): c for c in entries_before.comparisons} == others, "no other entry's comparison moved"
    assert [c for c in entries_before.cells] == [c for c in entries_after.cells if c.key.method != "example-apoz"]
    assert track["other_verdicts"] == {"compared": len(others), "changed": []} and len(others) == 3
    records, problems = load_records(ResultsLayout(results), TRACK)
    new = [r for r in records if r.method == "example-apoz"]
    assert problems == [] and len(new) == 30 and {r.method_digest for r in new} == {digest}
    assert sum(r.twin for r in new) == 15 and all(r.status == "ok" for r in new)
    assert {p.name: p.read_bytes() for p in (results / TRACK).glob("*.json") if p.name in before} == before
    verified = CliRunner().invoke(app, ["verify", "--results", str(results), "--json"])
    assert verified.exit_code == 0 and json.loads(verified.stdout)["checked"] == 60
    again = submit(EXAMPLE, [TRACK], layout=ResultsLayout(results), tracks_dir=tracks)
    assert again.passed and again.tracks[0].ran == 0
    assert json.loads(json.dumps(again.as_dict()))["tracks"][0]["rows"] == track["rows"]


def test_fewer_than_five_seeds_are_refused(tmp_path):
    result = CliRunner().invoke(app, ["submit", str(EXAMPLE), "--seeds", "4", "--results", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.strip() == ("error: --seeds 4 is too few: a submission runs at least 5 seeds (the audit "
                                     "fails cells under 3 and warns under 5)")


def test_more_seeds_extend_the_tracks_run_seeds(digits_track):
    assert submission_seeds(digits_track, 5) == (0, 1, 2, 3, 4)
    assert submission_seeds(digits_track, 7) == (0, 1, 2, 3, 4, 5, 6)


def history(track, method, twin, trials, prefix="base"):
    cell = f"{track}.{method}{'+twin' if twin else ''}.uniform-50.ft.1ep"
    return {"study": f"{prefix}.{cell}", "track": track, "method": method, "twin": twin, "target": "uniform-50",
            "schedule": "ft", "budget_epochs": 1, "seeds": [0, 1], "dense_hashes": ["a", "b"], "sampler": "tpe",
            "seed": 3, "pruner": "median", "space": {"lr": {"low": 1e-4, "high": 0.1, "log": True}},
            "objective": "val_acc", "split": "val", "trials_requested": trials, "n_trials": trials,
            "n_complete": trials, "n_pruned": 0, "n_failed": 0, "n_running": 0, "trials": [],
            "best_params": {"lr": 0.01}, "best_value": 0.9}


def test_tuning_uses_exactly_the_baselines_trial_budget_and_protocol(tmp_path):
    track = load_track(TRACK, mini_track(tmp_path / "tracks"))
    folder = tmp_path / "results" / TRACK / "tuning"
    with pytest.raises(BenchError, match="no entry on track 'mini-digits' was tuned"):
        equal_tuning(ResultsLayout(tmp_path / "results"), track, "example-apoz", 4)
    folder.mkdir(parents=True)
    for twin in (False, True):
        (folder / f"l1-{twin}.json").write_text(json.dumps(history(TRACK, "l1-norm", twin, 4)))
    (folder / "own.json").write_text(json.dumps(history(TRACK, "example-apoz", False, 9)))
    options, prefix = equal_tuning(ResultsLayout(tmp_path / "results"), track, "example-apoz", 4)
    assert (options, prefix) == (TuneOptions(trials=4, seeds=(0, 1), sampler="tpe", seed=3, pruner="median",
                                             study_prefix="base"), "base")
    with pytest.raises(BenchError) as raised:
        equal_tuning(ResultsLayout(tmp_path / "results"), track, "example-apoz", 8)
    assert str(raised.value) == ("--tune-trials 8 differs from the 4 trials every baseline on track 'mini-digits' "
                                 "was tuned with; pass --tune-trials 4")
    (folder / "other.json").write_text(json.dumps(history(TRACK, "l2-norm", False, 6)))
    with pytest.raises(BenchError, match=r"tuned with unequal budgets \[4, 6\]"):
        equal_tuning(ResultsLayout(tmp_path / "results"), track, "example-apoz", 4)
