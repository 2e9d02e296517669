"""The audit of methods that train before pruning and prune in rounds: the budget R1 compares is the total
(pre-pruning, rounds and final retraining), R15 warns when compared entries split it differently, and R2
compares a schedule's peak lr and warm-up only among entries that retrain as long after the final pruning."""

from __future__ import annotations

from audit_fixtures import STEPS_PER_EPOCH, fair_records, replace_cell

from harness.audit import audit
from harness.audit.claims import Claim
from harness.audit.reported import ReportedResult, to_records
from harness.run.record import Phases

BUDGET = 10


def phases(pre: int, *rounds: int, pre_steps: int | None = None) -> Phases:
    """A split of the budget, each epoch ``STEPS_PER_EPOCH`` steps (``pre_steps`` overrides the phase's)."""
    pre_steps = pre * STEPS_PER_EPOCH if pre_steps is None else pre_steps
    round_steps = [r * STEPS_PER_EPOCH for r in rounds]
    return Phases(pre_pruning_epochs=pre, pre_pruning_steps=pre_steps, round_epochs=list(rounds),
                  round_steps=round_steps, total_epochs=pre + sum(rounds), total_steps=pre_steps + sum(round_steps))


def trained(records, method: str, split: Phases, schedule: str = "ft", **updates):
    """One cell's records as a training method's: its split, and retraining steps for its rounds only."""
    return replace_cell(records, method, schedule, phases=split, retrain_steps=sum(split.round_steps), **updates)


def rule(records, rule_id: str, **kwargs):
    return [f for f in audit(records, **kwargs).findings if f.rule == rule_id]


# -- R1: the total budget ----------------------------------------------------------------------

def test_r1_passes_a_training_method_whose_total_steps_equal_the_others():
    records = trained(fair_records(), "beta", phases(5, 5))
    beta = [r for r in records if (r.method, r.schedule, r.twin) == ("beta", "ft", False)]
    assert all(r.retrain_steps == 100 and r.total_steps == 200 for r in beta)
    assert rule(records, "R1") == []


def test_r1_fails_a_training_method_whose_total_steps_differ():
    records = trained(fair_records(), "beta", phases(5, 5, pre_steps=50))
    [finding] = rule(records, "R1")
    assert finding.severity == "fail" and finding.cells == ("toy/beta/half/ft@10",)
    assert finding.message == ("toy/beta/half/ft@10 trained for 150 total steps where the other 10-epoch entries "
                               "of toy used 200 (25.0% off)")
    assert finding.evidence["total_steps"] == 150 and finding.evidence["reference_steps"] == 200


def test_r1_judges_a_claim_on_total_steps():
    # stated across schedules, so the audit checks the stated comparison's budget
    claim = Claim(name="beta beats alpha", method="beta", baseline="alpha", schedule="ft", baseline_schedule="clr",
                  budget=BUDGET)
    assert rule(trained(fair_records(), "beta", phases(5, 5)), "R1", claims=[claim]) == []
    unequal = [f for f in rule(trained(fair_records(), "beta", phases(5, 5, pre_steps=50)), "R1", claims=[claim])
               if f.claim]
    assert [f.message for f in unequal] == [
        "claim 'beta beats alpha' compares 10 epochs (150 total steps) against 10 epochs (200 total steps)"]
    assert unequal[0].evidence["total_steps_a"] == 150 and unequal[0].evidence["total_steps_b"] == 200


def test_r1_reads_a_reported_numbers_retraining_steps_as_its_total():
    result = ReportedResult(track="toy", method="alpha", target="half", schedule="ft", budget_epochs=BUDGET,
                            test_acc=0.93, retrain_steps=100)
    reported = to_records(result, "Paper A")
    assert reported[0].total_steps == 100
    [finding] = rule(fair_records() + reported, "R1")
    assert finding.severity == "warn" and finding.evidence["total_steps"] == 100


# -- R15: the split ----------------------------------------------------------------------------

def test_r15_warns_when_a_five_plus_five_entry_is_compared_with_a_zero_plus_ten_one():
    [finding] = rule(trained(fair_records(), "beta", phases(5, 5)), "R15")
    assert finding.severity == "warn" and finding.cells == ("toy/beta/half/ft@10",)
    assert finding.message == ("toy/beta/half/ft@10 spends 5 of its 10 epochs before pruning (split 5+5) where "
                               "alpha retrains all 10 after one pruning (split 0+10)")
    assert finding.evidence == {
        "split": "5+5", "pre_pruning_epochs": 5, "round_epochs": [5], "reference_split": "0+10",
        "reference_pre_pruning_epochs": 0, "reference_round_epochs": [10],
        "reference_entries": ["toy/alpha/half/ft@10"]}
    assert "whole methods at equal total budget" in finding.fix


def test_r15_names_rounds_and_is_quiet_where_the_splits_are_equal():
    records = fair_records(methods=("alpha", "beta", "gamma"))
    rounds = rule(trained(records, "gamma", phases(0, 5, 5)), "R15")
    assert [f.message for f in rounds] == [(
        "toy/gamma/half/ft@10 prunes in 2 rounds (split 0+5+5) where alpha and beta retrain all 10 after one "
        "pruning (split 0+10)")]
    both = trained(trained(fair_records(), "alpha", phases(5, 5)), "beta", phases(5, 5))
    assert rule(both, "R15") == []  # the random twins retrain the whole budget by design: not flagged
    assert rule(fair_records(), "R15") == []


# -- R2: the protocol of the final retraining --------------------------------------------------

def _lrw(method: str, split: Phases, peak_lr: float, **protocol):
    """At lrw@20 (one schedule): ``method`` trains with ``split`` and records the rewind's ``peak_lr``."""
    records = fair_records(schedules=("lrw",), budget=20)
    changed = records[0].protocol.model_copy(update={"peak_lr": peak_lr, **protocol})
    return trained(records, method, split, schedule="lrw", protocol=changed)


def test_r2_allows_the_peak_rate_of_a_shorter_final_retraining():
    records = _lrw("beta", phases(10, 10), peak_lr=0.01)
    assert rule(records, "R2") == [] and rule(records, "R1") == []
    assert [f.cells for f in rule(records, "R15")] == [("toy/beta/half/lrw@20",)]


def test_r2_still_fails_a_lone_split_entrys_recipe_and_a_peak_rate_off_its_peers():
    [finding] = rule(_lrw("beta", phases(10, 10), peak_lr=0.01, weight_decay=5e-4), "R2")
    assert finding.cells == ("toy/beta/half/lrw@20",)
    assert finding.evidence["differences"] == {"weight_decay": {"entry": 5e-4, "reference": 1e-4}}
    peers = fair_records(methods=("alpha", "beta", "gamma", "delta"), schedules=("lrw",), budget=20)
    for method, peak_lr in (("beta", 0.01), ("gamma", 0.01), ("delta", 0.02)):
        peers = trained(peers, method, phases(10, 10), schedule="lrw",
                        protocol=peers[0].protocol.model_copy(update={"peak_lr": peak_lr}))
    [off] = rule(peers, "R2")
    assert off.cells == ("toy/delta/half/lrw@20",) and off.evidence["final_retraining_epochs"] == 10
    assert off.evidence["differences"] == {"peak_lr": {"entry": 0.02, "reference": 0.01}}


def test_r2_judges_a_claims_peak_rate_only_at_equal_final_retraining():
    """A claim across budgets is R1's to fail; its two rewinds' peak rates differ by design."""
    claim = Claim(name="beta beats alpha", method="beta", baseline="alpha", schedule="lrw", budget=20,
                  baseline_budget=10)
    short = fair_records(methods=("alpha",), schedules=("lrw",))
    for weight_decay, differences in ((1e-4, []), (5e-4, ["weight_decay"])):
        protocol = short[0].protocol.model_copy(update={"peak_lr": 0.05, "weight_decay": weight_decay})
        long = fair_records(methods=("beta",), schedules=("lrw",), budget=20, protocol=protocol)
        found = [f for f in rule(short + long, "R2", claims=[claim]) if f.claim]
        assert [list(f.evidence["differences"]) for f in found] == ([differences] if differences else [])
