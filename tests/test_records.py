"""Run records: identity by configuration hash, atomic writes, validation on load."""

import json

import pytest

from harness.core.layout import ResultsLayout
from harness.run.record import (
    RunConfig,
    RunRecord,
    load_records,
    read_record,
    record_path,
    write_record,
)


def config(**changes):
    fields = dict(track="digits-cnn", dense_hash="abc", method="l1-norm", target="uniform-50", schedule="ft",
                  schedule_params={"lr": 0.001}, budget_epochs=10, seed=0, harness_version="0.1.0")
    return RunConfig(**{**fields, **changes})


def record(**changes):
    cfg = config(**changes)
    return RunRecord(**cfg.model_dump(), id=cfg.run_id, status="ok", test_acc=0.97, val_acc=0.96)


def test_the_hash_covers_every_configuration_field_and_nothing_else():
    assert config().run_id == config().run_id
    for change in ({"seed": 1}, {"twin": True}, {"budget_epochs": 20}, {"schedule_params": {"lr": 0.01}},
                   {"dense_hash": "abd"}, {"harness_version": "0.2.0"}, {"method_params": {"k": 1}}):
        assert config(**change).run_id != config().run_id
    assert record().run_id == config().run_id


def test_adding_a_field_at_its_default_keeps_the_hash():
    assert config(twin=False).run_id == config().run_id


def test_round_trip(tmp_path):
    original = record()
    path = write_record(ResultsLayout(tmp_path), original)
    assert path == record_path(ResultsLayout(tmp_path), original) and path.name == f"{original.id}.json"
    assert read_record(path) == original
    assert not [p for p in path.parent.iterdir() if p.suffix == ".tmp"]


def test_edited_content_no_longer_matches_its_name(tmp_path):
    path = write_record(ResultsLayout(tmp_path), record())
    raw = json.loads(path.read_text())
    raw["seed"] = 7
    path.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="does not match its id"):
        read_record(path)


def test_load_records_reports_bad_files_and_keeps_good_ones(tmp_path):
    good = write_record(ResultsLayout(tmp_path), record())
    (good.parent / "broken.json").write_text("{not json")
    (good.parent / "schema.json").write_text(json.dumps({"track": "digits-cnn"}))
    renamed = good.parent / "0000000000000000.json"
    renamed.write_text(write_record(ResultsLayout(tmp_path), record(seed=3)).read_text())
    records, problems = load_records(ResultsLayout(tmp_path))
    assert len(records) == 2
    reasons = {p.path.name: p.reason for p in problems}
    assert "not readable JSON" in reasons["broken.json"]
    assert "fails the record schema" in reasons["schema.json"]
    assert "file name does not match" in reasons["0000000000000000.json"]


def test_an_empty_results_folder_gives_no_records(tmp_path):
    assert load_records(ResultsLayout(tmp_path / "missing")) == ([], [])
