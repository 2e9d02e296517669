"""The record index and the plot cache only save time: never a source of truth (issue 16, item 4)."""

import json

import pytest

from harness.core import signing
from harness.core.layout import ResultsLayout
from harness.run import record as record_module
from harness.run.record import RunConfig, RunRecord, load_records, write_record


@pytest.fixture(autouse=True)
def index_key(tmp_path, monkeypatch):
    path = tmp_path / "key" / "index.key"
    monkeypatch.setenv(signing.KEY_ENV, str(path))
    return path


def make(seed: int, test_acc: float = 0.97) -> RunRecord:
    cfg = RunConfig(track="digits-cnn", dense_hash="abc", method="l1-norm", target="uniform-50", schedule="ft",
                    budget_epochs=10, seed=seed, harness_version="0.1.0")
    return RunRecord(**cfg.model_dump(), id=cfg.run_id, status="ok", test_acc=test_acc, val_acc=0.96)


@pytest.fixture
def layout(tmp_path):
    layout = ResultsLayout(tmp_path / "results")
    for seed in range(3):
        write_record(layout, make(seed))
    return layout


def reasons(problems):
    return sorted((p.path.name, p.reason) for p in problems)


def test_the_index_lists_the_verified_files_and_a_second_load_gives_the_same_records(layout):
    first = load_records(layout)
    index = json.loads(layout.record_index("digits-cnn").read_text())
    assert sorted(index["files"]) == sorted(p.name for p in layout.records("digits-cnn"))
    second = load_records(layout)
    assert second[0] == first[0] and [r.content_digest for r in second[0]] == [r.content_digest for r in first[0]]
    assert second[1] == first[1] == []
    assert layout.tracks() == ["digits-cnn"]  # the cache folder is never a track


def test_an_edited_record_is_checked_again_and_refused_although_the_index_listed_it(layout):
    load_records(layout)
    path = layout.records("digits-cnn")[0]
    raw = json.loads(path.read_text())
    raw["test_acc"] = 0.99
    path.write_text(json.dumps(raw))
    records, problems = load_records(layout)
    assert len(records) == 2
    assert [p.path for p in problems] == [path] and "content digest mismatch" in problems[0].reason
    assert path.name not in json.loads(layout.record_index("digits-cnn").read_text())["files"]


def test_added_and_removed_files_are_seen(layout):
    before = {r.id for r in load_records(layout)[0]}
    removed = layout.records("digits-cnn")[0]
    removed.unlink()
    write_record(layout, make(7))
    records, problems = load_records(layout)
    assert {r.id for r in records} == before - {removed.stem} | {make(7).id}
    assert problems == []
    assert len(json.loads(layout.record_index("digits-cnn").read_text())["files"]) == 3


@pytest.mark.parametrize("content", ["", "not json", "[]", '{"files": 3}', '{"files": {}, "signature": 1}'])
def test_a_corrupt_index_is_ignored(layout, content):
    expected = load_records(layout)
    layout.record_index("digits-cnn").write_text(content)
    assert load_records(layout) == expected


def test_a_forged_index_is_ignored_so_a_tampered_record_is_still_refused(layout, index_key):
    """An index whose signature is not this machine's (hand-written, or copied with a results folder
    from elsewhere) lists nothing: the tampered file's seal is checked and fails."""
    import hashlib

    load_records(layout)
    path = layout.records("digits-cnn")[0]
    raw = json.loads(path.read_text())
    raw["test_acc"] = 0.5
    path.write_text(json.dumps(raw))
    index_path = layout.record_index("digits-cnn")
    index = json.loads(index_path.read_text())
    index["files"][path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    index_path.write_text(json.dumps(index))  # the old signature no longer matches
    assert [p.path for p in load_records(layout)[1]] == [path]
    index_key.write_text("another machine's key, long enough to be used as one")
    index_path.write_text(json.dumps(index))
    assert [p.path for p in load_records(layout)[1]] == [path]


def test_a_results_folder_that_cannot_be_written_still_loads(layout, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("read-only")

    monkeypatch.setattr(record_module, "write_json_atomic", refuse)
    records, problems = load_records(layout)
    assert len(records) == 3 and problems == []
    assert not layout.record_index("digits-cnn").exists()


def test_no_key_means_no_index(layout, monkeypatch):
    monkeypatch.setattr(record_module, "machine_key", lambda: None)
    assert len(load_records(layout)[0]) == 3
    assert not layout.record_index("digits-cnn").exists()


def test_a_cached_report_is_byte_identical_and_draws_nothing(tmp_path, monkeypatch):
    """The second report from the same audit reads every plot from the cache (matplotlib's drawing is
    never called) and writes the same bytes; a corrupt cache entry is drawn again."""
    from audit_fixtures import fair_records

    from harness.audit import audit
    from harness.publish.report import write_report
    from harness.publish.report.plots import canvas

    result = audit(fair_records())
    cache = tmp_path / "cache"

    def files(folder):
        return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}

    write_report(result, tmp_path / "plain")
    write_report(result, tmp_path / "first", plot_cache=cache)
    entries = sorted(cache.iterdir())
    assert entries
    monkeypatch.setattr(canvas, "_render", lambda figure: pytest.fail("a cached plot was drawn again"))
    write_report(result, tmp_path / "second", plot_cache=cache)
    assert files(tmp_path / "first") == files(tmp_path / "second") == files(tmp_path / "plain")
    monkeypatch.undo()
    entries[0].write_text("{ truncated")
    write_report(result, tmp_path / "third", plot_cache=cache)
    assert files(tmp_path / "third") == files(tmp_path / "plain")


def test_a_plot_cache_from_another_machine_is_drawn_again(tmp_path, monkeypatch):
    """A forged or foreign plot entry (its name is a digest anyone can compute) never reaches a report."""
    from audit_fixtures import fair_records

    from harness.audit import audit
    from harness.publish.report import write_report
    from harness.publish.report.plots import canvas

    result = audit(fair_records())
    cache = tmp_path / "cache"
    write_report(result, tmp_path / "first", plot_cache=cache)
    monkeypatch.setenv(signing.KEY_ENV, str(tmp_path / "another machine" / "index.key"))
    drawn = []
    render = canvas._render
    monkeypatch.setattr(canvas, "_render", lambda figure: drawn.append(1) or render(figure))
    write_report(result, tmp_path / "second", plot_cache=cache)
    assert drawn
