"""The leaderboard: best schedule chosen on validation, equal budgets, shared ranks for ties,
the gap to the random twin, and entries with fail findings marked, not hidden."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from audit_fixtures import cell, fair_records, noisy, replace_cell
from typer.testing import CliRunner

from harness.audit import audit
from harness.cli import app
from harness.core.layout import ResultsLayout
from harness.publish.leaderboard import build_leaderboard
from harness.run.record import write_record


def board(records):
    return build_leaderboard(audit(records))


def test_entries_are_ranked_under_their_best_schedule_with_twin_gaps():
    (table,) = board(fair_records()).tables
    assert (table.track, table.target, table.budget) == ("toy", "half", 10)
    assert [(e.rank, e.tied, e.method, e.schedule) for e in table.entries] == [
        (1, False, "alpha", "clr"), (2, False, "beta", "clr")]
    alpha = table.entries[0]
    assert alpha.n == 6 and alpha.ci_low < alpha.mean < alpha.ci_high
    assert alpha.twin_gap == pytest.approx(alpha.mean - alpha.twin_mean)
    assert alpha.twin_verdict == "better" and alpha.flags == ()


def test_tests_that_cannot_separate_entries_share_a_rank():
    records = fair_records() + cell("gamma", noisy(0.9405, 6, 3, scale=0.006), schedule="clr") + cell(
        "gamma", noisy(0.86, 6, 4), schedule="clr", twin=True) + cell("gamma", noisy(0.80, 6, 5)) + cell(
        "gamma", noisy(0.80, 6, 6), twin=True)
    (table,) = board(records).tables
    ranks = {e.method: (e.rank, e.tied) for e in table.entries}
    assert ranks["alpha"] == ranks["gamma"] == (1, True)  # 0.94 and 0.9405: a tie
    assert ranks["beta"] == (3, False)


def test_the_schedule_is_chosen_on_validation_not_test():
    # gamma's ft runs score best on test but worse on validation: clr is its schedule.
    records = fair_records() + cell("gamma", noisy(0.99, 6, 1), val_values=noisy(0.80, 6, 2)) + cell(
        "gamma", noisy(0.91, 6, 3), schedule="clr") + cell("gamma", noisy(0.85, 6, 4), twin=True) + cell(
        "gamma", noisy(0.85, 6, 5), twin=True, schedule="clr")
    (table,) = board(records).tables
    gamma = next(e for e in table.entries if e.method == "gamma")
    assert gamma.schedule == "clr" and gamma.mean == pytest.approx(0.91, abs=0.01)


def test_budgets_are_never_mixed():
    records = fair_records() + cell("alpha", noisy(0.95, 6, 9), budget=20) + cell(
        "alpha", noisy(0.88, 6, 10), budget=20, twin=True)
    tables = board(records).tables
    assert [(t.budget, [e.method for e in t.entries]) for t in tables] == [(10, ["alpha", "beta"]), (20, ["alpha"])]


def test_structured_and_masked_methods_are_ranked_apart():
    masked = [r.model_copy(update={"sparsity": 0.5, "macs_after": r.macs_before})
              for r in fair_records(methods=("gamma",), means={("gamma", False): 0.99, ("gamma", True): 0.9})]
    tables = board(fair_records() + masked).tables
    assert [(t.family, [e.method for e in t.entries]) for t in tables] == [
        ("structured", ["alpha", "beta"]), ("unstructured", ["gamma"])]


def test_entries_with_a_fail_finding_are_marked_not_hidden():
    records = replace_cell(fair_records(), "beta", "clr", macs_after=50000)
    (table,) = board(records).tables
    beta = next(e for e in table.entries if e.method == "beta")
    assert beta.flags == ("R3",)
    assert next(e for e in table.entries if e.method == "alpha").flags == ()


def test_missing_twins_show_as_no_twin_and_fail_r9():
    records = [r for r in fair_records() if not (r.method == "beta" and r.twin)]
    (table,) = board(records).tables
    beta = next(e for e in table.entries if e.method == "beta")
    assert beta.twin_gap is None and beta.flags == ("R9",)


@pytest.fixture
def results(tmp_path):
    for record in fair_records():
        write_record(ResultsLayout(tmp_path), record)
    return tmp_path


def test_leaderboard_command_prints_json_markdown_and_tables(results):
    runner = CliRunner()
    as_json = runner.invoke(app, ["leaderboard", "--results", str(results), "--json"])
    assert as_json.exit_code == 0, as_json.output
    payload = json.loads(as_json.stdout)
    assert [e["method"] for e in payload["tables"][0]["entries"]] == ["alpha", "beta"]
    assert payload["tables"][0]["entries"][0]["twin_verdict"] == "better"
    markdown = runner.invoke(app, ["leaderboard", "--results", str(results), "--markdown"])
    assert "| 1 | alpha | clr | 6 |" in markdown.stdout
    plain = runner.invoke(app, ["leaderboard", "--results", str(results), "--track", "toy"])
    assert plain.exit_code == 0 and "alpha" in plain.stdout


def test_leaderboard_command_on_a_missing_track_is_one_line(results):
    outcome = CliRunner().invoke(app, ["leaderboard", "--results", str(results), "--track", "nope"])
    assert outcome.exit_code == 2 and "no results for track 'nope'" in outcome.output


def test_only_reference_methods_move_ranks():
    """A submitted (non-reference) method is compared with the references only; it moves no other rank."""
    from harness.audit import AuditConfig
    gamma = cell("gamma", noisy(0.96, 6, 3)) + cell("gamma", noisy(0.86, 6, 4), twin=True) + cell(
        "gamma", noisy(0.97, 6, 5), schedule="clr") + cell("gamma", noisy(0.86, 6, 6), twin=True, schedule="clr")
    config = AuditConfig(references=("alpha", "beta"))
    (before,) = build_leaderboard(audit(fair_records(), config=config)).tables
    (after,) = build_leaderboard(audit(fair_records() + gamma, config=config)).tables
    ranks = {e.method: e.rank for e in after.entries}
    assert {e.method: e.rank for e in before.entries} == {m: r for m, r in ranks.items() if m != "gamma"}
    assert ranks["gamma"] == 1  # no reference beats it (it beats them both, but moves neither)
    assert all("/gamma/" in c.a for c in after.comparisons if "/gamma/" in c.a + c.b)


def test_an_entry_that_trains_shows_its_split_beside_its_schedule():
    from harness.publish.leaderboard import Entry

    entry = Entry(rank=1, tied=False, method="network-slimming", schedule="ft", cell="c", n=5, mean=0.9, std=0.01,
                  ci_low=0.89, ci_high=0.91, val_mean=None, twin_mean=None, twin_gap=None, twin_gap_ci=None,
                  twin_verdict=None, macs_after=None, flags=(), split=(5, 5))
    assert entry.schedule_shown == "ft (5+5)" and entry.as_dict()["budget_split"] == [5, 5]
    assert replace(entry, split=(0, 3, 3, 4)).schedule_shown == "ft (0+3+3+4)"
    assert replace(entry, split=(0, 10)).schedule_shown == "ft"
    assert replace(entry, schedule="none", split=(0, 0, 0, 0)).schedule_shown == "none"  # nothing trained
