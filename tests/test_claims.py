"""Claims judged in both directions, claim files, and numbers quoted from papers."""

from __future__ import annotations

import json

import pytest
from audit_fixtures import cell, fair_records, noisy

from harness.audit import audit, import_reported, load_claims, load_reported
from harness.audit.claims import Claim
from harness.core.errors import BenchError
from harness.core.layout import ResultsLayout
from harness.run.record import load_records


def judged(records, *claims, **kwargs):
    result = audit(records, claims=list(claims), **kwargs)
    return {c.name: c for c in result.claims}


def test_a_clear_win_is_supported_and_its_reverse_is_not():
    verdicts = judged(fair_records(),
                      Claim(name="alpha > beta", method="alpha", baseline="beta", schedule="ft", budget=10),
                      Claim(name="beta > alpha", method="beta", baseline="alpha", schedule="ft", budget=10),
                      Claim(name="alpha > twin", method="alpha", baseline="twin", schedule="clr", budget=10))
    assert verdicts["alpha > beta"].verdict == "supported" and verdicts["alpha > beta"].rules_broken == ()
    assert verdicts["beta > alpha"].verdict == "not supported" and "R6" in verdicts["beta > alpha"].rules_broken
    assert "baseline is better" in verdicts["beta > alpha"].reason
    assert verdicts["alpha > twin"].verdict == "supported"
    assert verdicts["alpha > beta"].evidence["pvalue_holm"] < 0.05


def test_a_win_bought_with_more_tuning_trials_is_not_supported():
    from test_audit_rules import study

    claim = Claim(name="alpha > beta", method="alpha", baseline="beta", schedule="ft", budget=10)
    equal = judged(fair_records(), claim, studies=[study("alpha", 20), study("beta", 20)])["alpha > beta"]
    unequal = judged(fair_records(), claim, studies=[study("alpha", 50), study("beta", 5)])["alpha > beta"]
    assert equal.verdict == "supported"
    assert unequal.verdict == "not supported" and unequal.rules_broken == ("R10",)
    assert "not comparable (R10)" in unequal.reason


def test_without_a_schedule_each_entry_gets_its_best_schedule_on_validation():
    records = fair_records()
    claim = Claim(name="alpha > beta", method="alpha", baseline="beta")
    verdict = judged(records, claim)["alpha > beta"]
    assert verdict.verdict == "supported"
    assert verdict.evidence["settings"][0]["setting"] == "half, best schedule on validation @10"
    assert set(verdict.cells) == {"toy/alpha/half/clr@10", "toy/beta/half/clr@10"}  # clr is better on val


def _budget_records():
    records = []
    for method, seed in (("gamma", 1), ("delta", 2)):
        records += cell(method, noisy(0.90, 6, seed), budget=10) + cell(method, noisy(0.93, 6, seed + 10), budget=20)
        records += cell(method, noisy(0.85, 6, seed + 20), budget=10, twin=True)
        records += cell(method, noisy(0.88, 6, seed + 30), budget=20, twin=True)
    return records


def test_a_win_bought_with_a_larger_budget_is_not_supported():
    claim = Claim(name="gamma > delta", method="gamma", baseline="delta", track="toy", target="half", schedule="ft",
                  budget=20, baseline_budget=10, source="Paper C", reported={"method": 0.93, "baseline": 0.90})
    verdict = judged(_budget_records(), claim)["gamma > delta"]
    assert verdict.verdict == "not supported"
    assert "R1" in verdict.rules_broken and "equivalent within the margin in half, ft@10" in verdict.reason
    assert "toy/gamma/half/ft@10" in verdict.cells and "toy/delta/half/ft@20" in verdict.cells  # judged at both


def test_a_win_under_a_different_schedule_breaks_r2():
    records = fair_records()
    claim = Claim(name="beta clr > alpha ft", method="beta", baseline="alpha", schedule="clr", baseline_schedule="ft",
                  budget=10)
    verdict = judged(records, claim)["beta clr > alpha ft"]
    assert verdict.verdict == "not supported" and "R2" in verdict.rules_broken


def test_missing_entries_and_underpowered_ties_are_inconclusive():
    records = fair_records() + cell("gamma", noisy(0.9397, 6, 40, scale=0.01)) + cell(
        "gamma", noisy(0.86, 6, 41), twin=True)
    verdicts = judged(records,
                      Claim(name="missing", method="omega", baseline="alpha", target="half", schedule="ft", budget=10),
                      Claim(name="noisy", method="gamma", baseline="alpha", schedule="ft", budget=10))
    assert verdicts["missing"].verdict == "inconclusive" and "toy/omega/half/ft@10" in verdicts["missing"].reason
    noisy_verdict = verdicts["noisy"]
    assert noisy_verdict.verdict == "inconclusive" and "R6" in noisy_verdict.rules_broken
    assert noisy_verdict.evidence["seeds_needed"] is None or noisy_verdict.evidence["seeds_needed"] > 6


def test_too_few_seeds_make_a_claim_inconclusive():
    records = [r for r in fair_records() if not (r.method == "beta" and r.seed == 2)]
    records = [r for r in records if not (r.method == "beta" and r.dense_seed == 1)]
    verdict = judged(records, Claim(name="c", method="alpha", baseline="beta", schedule="ft", budget=10))["c"]
    assert verdict.verdict == "inconclusive" and "R5" in verdict.rules_broken


def test_no_loss_claims_in_both_directions():
    keeper = [0.9505 + d for d in (-0.0004, 0.0003, -0.0002, 0.0004, -0.0003, 0.0002)]
    loser = [0.93 + d for d in (-0.0004, 0.0003, -0.0002, 0.0004, -0.0003, 0.0002)]
    wobbly = [0.947 + d for d in (-0.01, 0.012, -0.008, 0.009, -0.011, 0.005)]
    records = fair_records() + cell("keeper", keeper) + cell("loser", loser) + cell("wobbly", wobbly)
    claims = [Claim(name=m, kind="no-loss", method=m, schedule="ft", budget=10, margin=0.005)
              for m in ("keeper", "loser", "wobbly")]
    verdicts = judged(records, *claims)
    assert verdicts["keeper"].verdict == "supported"
    assert verdicts["loser"].verdict == "not supported" and "R8" in verdicts["loser"].rules_broken
    assert verdicts["wobbly"].verdict == "inconclusive" and "R8" in verdicts["wobbly"].rules_broken
    setting = verdicts["keeper"].evidence["settings"][0]
    assert setting["noninferiority_pvalue"] < 0.05 and verdicts["keeper"].evidence["margin_stated"]


def test_claimed_numbers_are_checked_against_the_reproduced_runs():
    claim = Claim(name="alpha > beta", method="alpha", baseline="beta", track="toy", target="half", schedule="ft",
                  budget=10, source="Paper D",
                  reported={"method": {"test_acc": 0.97, "std": 0.002, "n": 3}, "baseline": 0.90})
    result = audit(fair_records(), claims=[claim])
    (verdict,) = result.claims
    assert verdict.verdict == "supported"  # the records show it, though not by the claimed margin
    assert "R11" in verdict.rules_broken and "R5" in verdict.rules_broken
    reported = [c for c in result.cells if not c.reproduced]
    assert {c.key.source for c in reported} == {"reported: Paper D"}


def _two_tracks(beta_wins_on_second: bool):
    swapped = {("alpha", False): 0.90, ("beta", False): 0.93, ("alpha", True): 0.86, ("beta", True): 0.855}
    return fair_records() + fair_records(track="toy2", means=swapped if beta_wins_on_second else None)


def test_cross_track_claims_rest_on_probability_of_improvement():
    claim = Claim(name="overall", method="alpha", baseline="beta", track="*")
    verdict = judged(_two_tracks(False), claim)["overall"]
    assert verdict.verdict == "supported" and verdict.evidence["probability_of_improvement"] == 1.0
    split = judged(_two_tracks(True), claim)["overall"]
    assert split.verdict == "inconclusive" and "R13" in split.rules_broken
    assert split.evidence["probability_of_improvement"] == pytest.approx(0.5)


def test_cross_track_statements_never_compare_structured_with_unstructured_pruning():
    masked = [r.model_copy(update={"sparsity": 0.5}) for r in _two_tracks(False) if r.method == "beta"]
    records = [r for r in _two_tracks(False) if r.method == "alpha"] + masked
    result = audit(records, claims=[Claim(name="overall", method="alpha", baseline="beta", track="*")])
    (verdict,) = result.claims
    assert verdict.verdict == "inconclusive" and "structured and unstructured" in verdict.reason
    tasks = {m.method: m.tasks for m in result.method_aggregates}
    assert tasks == {"alpha": (("toy", "half", "structured"), ("toy2", "half", "structured")),
                     "beta": (("toy", "half", "unstructured"), ("toy2", "half", "unstructured"))}
    assert result.pair_aggregates == ()


def test_a_claim_without_a_track_needs_one_track_in_the_records():
    with pytest.raises(BenchError, match="names no track"):
        audit(_two_tracks(False), claims=[Claim(name="c", method="alpha", baseline="beta")])


def test_claim_files_in_toml_and_json(tmp_path):
    toml = tmp_path / "claims.toml"
    toml.write_text(
        '[[claim]]\nmethod = "alpha"\nbaseline = "random twin"\ntrack = "toy"\ntarget = "half"\n'
        '[[claim]]\nname = "no loss"\nkind = "no-loss"\nmethod = "alpha"\ntrack = "toy"\ntarget = "half"\nschedule = "ft"\nbudget = 10\nmargin = 0.01\n'
        'source = "Paper E"\n[claim.reported]\nmethod = [0.93, 0.94, 0.95]\n')
    claims = load_claims(toml)
    assert [c.name for c in claims] == ["claim 1", "no loss"]
    assert claims[0].baseline == "twin" and claims[1].reported.method.values == (0.93, 0.94, 0.95)
    as_json = tmp_path / "claims.json"
    as_json.write_text(json.dumps({"claim": [c.model_dump(exclude_none=True) for c in claims]}))
    assert load_claims(as_json) == claims


@pytest.mark.parametrize("body,message", [
    ('[[claim]]\nmethod = "alpha"\n', "names its baseline"),
    ('[[claim]]\nmethod = "a"\nbaseline = "b"\n[[claim]]\nmethod = "a"\nbaseline = "c"\nname = "claim 1"\n',
     "used twice"),
    ('[[claim]]\nmethod = "a"\nbaseline = "b"\ntrack = "toy"\ntarget = "half"\nschedule = "ft"\nbudget = 10\n'
     '[claim.reported]\nmethod = 93.1\n', "fraction"),
    ('[[claim]]\nmethod = "a"\nbaseline = "b"\nbogus = 1\n', "bogus"),
    ('[[claim]\n', "not valid TOML"),
])
def test_bad_claim_files_are_one_clear_error(tmp_path, body, message):
    path = tmp_path / "claims.toml"
    path.write_text(body)
    with pytest.raises(BenchError, match=message) as error:
        load_claims(path)
    assert str(path) in str(error.value)


REPORTED = """source = "Li et al. 2017, Table 2"

[[result]]
track = "toy"
method = "alpha"
target = "half"
schedule = "ft"
budget_epochs = 10
test_acc = 0.9306
std = 0.002
n = 3
dense_test_acc = 0.9504

[[result]]
track = "toy"
method = "beta"
target = "half"
schedule = "ft"
budget_epochs = 10
values = [0.90, 0.91, 0.92]
"""


def test_import_reported_writes_loadable_reported_records(tmp_path):
    source = tmp_path / "paper.toml"
    source.write_text(REPORTED)
    paths = import_reported(source, ResultsLayout(tmp_path / "results"))
    assert len(paths) == 4 and import_reported(source, ResultsLayout(tmp_path / "results")) == paths  # idempotent
    records, problems = load_records(ResultsLayout(tmp_path / "results"))
    assert problems == [] and {r.source for r in records} == {"reported"}
    alpha = next(r for r in records if r.method == "alpha")
    assert alpha.env == {"citation": "Li et al. 2017, Table 2", "reported_std": 0.002, "reported_n": 3}
    assert sorted(r.test_acc for r in records if r.method == "beta") == [0.90, 0.91, 0.92]
    assert load_reported(source) == sorted(records, key=lambda r: (r.method, r.seed))


def test_reported_files_reject_percentages_and_ambiguous_entries(tmp_path):
    path = tmp_path / "paper.toml"
    path.write_text(REPORTED.replace("0.9306", "93.06"))
    with pytest.raises(BenchError, match=r"fraction .*0\.9306"):
        load_reported(path)
    path.write_text(REPORTED.replace("values = [0.90, 0.91, 0.92]", "values = [0.9]\ntest_acc = 0.9"))
    with pytest.raises(BenchError, match="exactly one of test_acc"):
        load_reported(path)



def test_a_stated_schedule_without_a_budget_uses_the_budgets_that_schedule_ran_at():
    one_shot = [("alpha", False, 0.5), ("beta", False, 0.4), ("alpha", True, 0.3), ("beta", True, 0.3)]
    records = fair_records()
    for index, (method, twin, mean) in enumerate(one_shot):
        records += cell(method, noisy(mean, 6, index), twin=twin, schedule="none", budget=0)
    claim = Claim(name="one-shot", method="alpha", baseline="beta", schedule="none")
    verdict = judged(records, claim)["one-shot"]
    assert verdict.verdict == "supported" and verdict.statement == "alpha beats beta under none at every shared budget"
    assert [s["setting"] for s in verdict.evidence["settings"]] == ["half, none@0"]


@pytest.mark.parametrize("field, value, what", [
    ("method", "alpah", "method 'alpah'"), ("baseline", "betta", "method 'betta'"),
    ("track", "no-such-track", "track 'no-such-track'"), ("target", "uniform-99", "target 'uniform-99'"),
])
def test_a_claim_naming_what_no_record_has_is_an_error(tmp_path, field, value, what):
    from harness.audit import audit_results
    from harness.run.record import write_record

    layout = ResultsLayout(tmp_path / "results")
    records = fair_records()
    for record in records:
        write_record(layout, record)
    good = dict(name="typo", method="alpha", baseline="beta", track=records[0].track, target=records[0].target)
    claims = tmp_path / "claims.json"
    claims.write_text(json.dumps({"claim": [good]}))
    assert [v.name for v in audit_results(layout, claims_path=claims).claims] == ["typo"]
    claims.write_text(json.dumps({"claim": [{**good, field: value}]}))
    with pytest.raises(BenchError, match=f"claim 'typo' names {what}, which has no records here"):
        audit_results(layout, claims_path=claims)
