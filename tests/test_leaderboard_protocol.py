"""The leaderboard's protocol as data (issue 15): the digits file names exactly the cells the committed
reference results hold; a working-directory track never silently replaces a shipped one; stale records
are listed with their reason and set aside where the audit never looks; identical schedules are told."""

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.core.errors import BenchError
from harness.core.layout import ResultsLayout
from harness.protocols.clean import quarantine, stale_records
from harness.run.record import read_record, write_record
from harness.track.definition import load_track
from harness.track.leaderboard import LeaderboardProtocol, load_protocol
from harness.track.schedules import same_rates

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"


def test_the_digits_protocol_is_the_committed_reference_grid():
    track = load_track("digits-cnn")
    protocol = load_protocol(track)
    assert protocol.source == REPO / "bench" / "leaderboards" / "digits-cnn.toml" and protocol.version == 2
    assert (protocol.targets, protocol.budgets, protocol.seeds, protocol.twins) == (
        ("uniform-50", "uniform-75"), (10, 20), (0, 1, 2, 3, 4), True)
    assert protocol.schedules == ("none", "ft", "lrw", "slr", "clr")
    held = set()
    for path in ResultsLayout(RESULTS).records("digits-cnn"):
        raw = json.loads(path.read_text())
        if raw["status"] == "ok":
            held.add((raw["method"], raw["target"], raw["schedule"], raw["budget_epochs"], raw["twin"], raw["seed"]))
    missing = protocol.cells() - held
    assert not missing, f"{len(missing)} cells of the protocol have no committed record, e.g. {sorted(missing)[:3]}"
    assert len(protocol.cells()) == 14 * 2 * 9 * 2 * 5  # 14 methods (4 that train), 2 targets, 9 cells, twins, 5 seeds


def test_a_protocol_naming_what_the_track_lacks_is_refused(tmp_path):
    (tmp_path / "tracks").mkdir()
    shutil.copy(REPO / "bench" / "tracks" / "digits-cnn.toml", tmp_path / "tracks")
    (tmp_path / "leaderboards").mkdir()
    text = (REPO / "bench" / "leaderboards" / "digits-cnn.toml").read_text().replace("budgets = [10, 20]",
                                                                                      "budgets = [10, 40]")
    (tmp_path / "leaderboards" / "digits-cnn.toml").write_text(text)
    with pytest.raises(BenchError, match=r"key 'budgets': \[40\] not among"):
        load_protocol(load_track("digits-cnn", tmp_path / "tracks"), tmp_path / "tracks")


def test_a_working_directory_track_that_differs_from_the_shipped_one_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("PRUNE_BENCH_TRACKS", raising=False)
    monkeypatch.chdir(tmp_path)
    local = tmp_path / "bench" / "tracks"
    local.mkdir(parents=True)
    shipped = REPO / "bench" / "tracks" / "digits-cnn.toml"
    (local / "digits-cnn.toml").write_bytes(shipped.read_bytes())
    assert load_track("digits-cnn").name == "digits-cnn"  # an identical copy shadows nothing
    (local / "digits-cnn.toml").write_text(shipped.read_text().replace("budgets = [10, 20, 30]", "budgets = [1]"))
    with pytest.raises(BenchError) as error:
        load_track("digits-cnn")
    assert str(local / "digits-cnn.toml") in str(error.value) and str(shipped) in str(error.value)
    monkeypatch.setenv("PRUNE_BENCH_TRACKS", str(local))  # named on purpose, it is used
    assert load_track("digits-cnn").retraining.budgets == (1,)


def test_ft_and_lrw_are_one_schedule_within_the_recipes_last_stage():
    recipe = load_track("digits-cnn").recipe
    assert same_rates(recipe, "ft", "lrw", 10, 21)
    assert not same_rates(recipe, "ft", "lrw", 20, 21)
    assert not same_rates(recipe, "ft", "slr", 10, 21)


def _other_version(path: Path):
    """The record at ``path`` as another harness version would have made it (the version is in its id)."""
    record = read_record(path).model_copy(update={"harness_version": "0.0.1"})
    return record.model_copy(update={"id": record.config().run_id})


def _copy_records(results: Path, count: int) -> list[Path]:
    source = ResultsLayout(RESULTS).records("digits-cnn")[:count]
    (results / "digits-cnn").mkdir(parents=True)
    return [Path(shutil.copy(path, results / "digits-cnn")) for path in source]


def test_records_outside_the_protocol_are_listed_and_quarantined(tmp_path):
    results = tmp_path / "results"
    copied = _copy_records(results, 12)
    layout = ResultsLayout(results)
    odd_path = write_record(layout, _other_version(copied[0]))
    protocol = load_protocol(load_track("digits-cnn"))
    narrow = LeaderboardProtocol(**{**protocol.__dict__, "budgets": (10,)})
    stale = stale_records(layout, narrow)
    outside = {read_record(p).id for p in copied if read_record(p).budget_epochs == 20}
    reasons = {item.path.name: item.reason for item in stale}
    assert reasons[odd_path.name] == "made by harness 0.0.1, this is 0.1.0"
    assert {read_record(p).id for p in layout.records("digits-cnn") if p.name in reasons} >= outside
    assert all("outside the leaderboard protocol v2" in reasons[f"{i}.json"] for i in outside)
    moved = quarantine(layout, "digits-cnn", stale)
    assert {p.name for p in moved} == set(reasons) and all(p.parent == layout.quarantine("digits-cnn") for p in moved)
    assert layout.tracks() == ["digits-cnn"] and not any(p.name in reasons for p in layout.records("digits-cnn"))


def test_bench_results_clean_dry_run_lists_and_moves_nothing(tmp_path):
    results = tmp_path / "results"
    copied = _copy_records(results, 3)
    layout = ResultsLayout(results)
    write_record(layout, _other_version(copied[0]))
    outcome = CliRunner().invoke(app, ["results", "clean", "--results", str(results), "--dry-run", "--json"])
    assert outcome.exit_code == 0, outcome.output
    payload = json.loads(outcome.stdout)
    assert [s["reason"] for s in payload["stale"]] == ["made by harness 0.0.1, this is 0.1.0"] and payload["moved"] == []
    assert len(layout.records("digits-cnn")) == 4
    moved = CliRunner().invoke(app, ["results", "clean", "--results", str(results)])
    assert moved.exit_code == 0 and "1 stale records; moved them to" in moved.stdout
    assert len(layout.records("digits-cnn")) == 3 and len(list(layout.quarantine("digits-cnn").glob("*.json"))) == 1
