"""The one tuning-history schema: what `bench tune` writes reads back unchanged, the audit and a
submission read it through the same loader, and a history that cannot be reused says why."""

import json
from types import SimpleNamespace

import pytest

from harness.audit.tuning import TuningStudy, load_studies
from harness.core.errors import BenchError
from harness.core.layout import ResultsLayout
from harness.protocols.submit.policy import baseline_histories
from harness.run.cells import CellKey
from harness.tune.history import (
    PROTOCOL,
    StudyHistory,
    TrialRecord,
    export_history,
    load_histories,
    load_history,
)

TRACK = "toy"


def history(method="alpha", **changes):
    trials = [TrialRecord(0, "COMPLETE", 0.9, {"lr": 0.01}, [0.8, 0.9]),
              TrialRecord(1, "PRUNED", None, {"lr": 0.5}, [0.1]),
              TrialRecord(2, "FAIL", None, {"lr": 0.02}, []),
              TrialRecord(3, "COMPLETE", 0.92, {"lr": 0.03}, [0.85, 0.92])]
    fields = dict(
        study=f"{TRACK}.{method}.half.ft.1ep", cell=CellKey(TRACK, method, False, "half", "ft", 1), seeds=[0], dense_hashes=["abc"], sampler="tpe", seed=0, pruner="median",
        space={"lr": {"low": 0.001, "high": 0.1, "log": True}}, split="val", trials_requested=3, n_trials=3,
        n_complete=2, n_pruned=1, n_failed=1, n_running=0, trials=trials, best_params={"lr": 0.03},
        best_value=0.92)
    return StudyHistory(**{**fields, **changes})


def test_an_exported_history_reads_back_unchanged(tmp_path):
    layout = ResultsLayout(tmp_path)
    path = export_history(layout, history())
    assert path == layout.history(TRACK, history().study)
    assert load_history(layout, TRACK, history().study) == history()
    assert set(json.loads(path.read_text())) >= set(PROTOCOL)


def test_the_audit_sees_the_completed_trials_of_the_same_history(tmp_path):
    layout = ResultsLayout(tmp_path)
    path = export_history(layout, history())
    (studies, problems), (histories, _) = load_studies(layout), load_histories(layout, TRACK)
    assert problems == [] and list(histories) == [path]
    assert studies == [TuningStudy.of(histories[path], path)]
    assert (studies[0].values, studies[0].n_trials, studies[0].split, studies[0].objective) == (
        (0.9, 0.92), 3, "val", "val_acc")
    assert studies[0].expected_max(1) == pytest.approx(0.91)  # one trial: the mean of the two completed
    assert studies[0].expected_max(50) == pytest.approx(0.92, abs=1e-6)


def test_counts_and_objective_missing_from_a_file_are_derived():
    raw = history().to_json()
    for key in ("n_complete", "n_pruned", "n_failed", "n_running", "objective"):
        del raw[key]
    assert StudyHistory.from_json(raw) == history()


def test_a_history_without_its_protocol_is_audited_but_not_reused(tmp_path):
    layout = ResultsLayout(tmp_path)
    raw = history().to_json()
    del raw["dense_hashes"]
    path = layout.history(TRACK, history().study)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(raw))
    assert [s.study for s in load_studies(layout)[0]] == [history().study]
    with pytest.raises(BenchError, match=r"is unreadable \(it lacks the key 'dense_hashes'\); rerun `bench tune`"):
        load_history(layout, TRACK, history().study)


def test_submission_and_audit_refuse_the_same_unreadable_file(tmp_path):
    layout = ResultsLayout(tmp_path)
    export_history(layout, history("alpha"))
    export_history(layout, history("beta"))
    track = SimpleNamespace(name=TRACK)  # all baseline_histories reads of a track
    assert [h.cell.method for h in baseline_histories(layout, track, "beta")] == ["alpha"]
    broken = layout.history(TRACK, "broken")
    broken.write_text(json.dumps({"study": "broken", "track": TRACK}))
    histories, problems = load_histories(layout, TRACK)
    assert len(histories) == 2 and [(p.path, p.reason) for p in problems] == [
        (broken, "tuning history lacks the key 'method'")]
    with pytest.raises(BenchError, match=r"broken.json is unreadable \(tuning history lacks the key 'method'\)"):
        baseline_histories(layout, track, "beta")


@pytest.mark.parametrize("text, reason", [
    ("{truncated", "Expecting property name"),
    ("[1, 2]", "a list, not an object"),
    (json.dumps({**history().to_json(), "n_trials": "three"}), "malformed"),
    (json.dumps({**history().to_json(), "trials": [{"state": "COMPLETE"}]}), "malformed"),
])
def test_an_unreadable_file_is_one_problem_naming_why(tmp_path, text, reason):
    layout = ResultsLayout(tmp_path)
    layout.tuning(TRACK).mkdir(parents=True)
    layout.history(TRACK, "bad").write_text(text)
    histories, problems = load_histories(layout, TRACK)
    assert histories == {} and len(problems) == 1 and reason in problems[0].reason
    assert load_histories(ResultsLayout(tmp_path / "nothing"), TRACK) == ({}, [])
