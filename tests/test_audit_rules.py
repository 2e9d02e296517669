"""The audit rules R1-R15 (each quiet on a fair record set, each firing on its crafted unfair
one) and the statistics under them (vectorized tests equal harness.stats, exact power values)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from audit_fixtures import (
    SEEDS,
    TARGET,
    TRACK,
    cell,
    dense_hash,
    fair_records,
    noisy,
    record,
    replace_cell,
)
from scipy import stats as scipy_stats

from harness import stats
from harness.audit import AuditConfig, audit, vectorized
from harness.audit.claims import Claim
from harness.audit.comparisons import (
    adjust,
    build_cells,
    compare_pairs,
    verdict,
)
from harness.audit.families import same_protocol, table_comparisons
from harness.audit.reported import ReportedResult, to_records
from harness.audit.rules import RULE_FUNCTIONS, AuditInput
from harness.audit.tuning import TuningStudy, load_studies
from harness.core.errors import BenchError
from harness.core.layout import ResultsLayout
from harness.run.cells import CellKey
from harness.run.record import Curves, Protocol

CONFIG = AuditConfig()


def findings(records, rule=None, **kwargs):
    found = audit(records, **kwargs).findings
    return [f for f in found if rule is None or f.rule == rule]


def only(found, severity=None):
    assert len(found) == 1, [f.message for f in found]
    if severity:
        assert found[0].severity == severity
    return found[0]


def study(method, trials, split="val", twin=False, schedule="ft", values=None):
    values = tuple(values if values is not None else np.linspace(0.90, 0.93, trials))
    return TuningStudy(study=f"{method}.{schedule}", path=f"{method}.json",
                       cell=CellKey(TRACK, method, twin, TARGET, schedule, 10), split=split, objective="val_acc",
                       n_trials=trials, values=values, best_value=max(values))


# -- the fair set ------------------------------------------------------------------------------

def test_fair_set_is_quiet_for_every_rule():
    result = audit(fair_records(), studies=[study(m, 20, twin=t, schedule=s) for m in ("alpha", "beta")
                                            for t in (False, True) for s in ("ft", "clr")])
    cells = tuple(result.cells)
    audit_input = AuditInput(cells, result.comparisons, (), result.studies)
    for rule in RULE_FUNCTIONS:
        assert rule(audit_input, CONFIG) == [], rule.__name__
    assert result.findings == () and result.exit_code == 0


def test_fair_set_comparisons_are_paired_and_separated():
    result = audit(fair_records())
    assert len(result.comparisons) == 6  # per schedule: two methods vs twins, and alpha vs beta
    assert all(c.paired and c.test == "paired-t" for c in result.comparisons)
    # a comparison of two methods belongs to the later one's family: beta (by name, no protocol) against alpha
    assert all(c.verdict == ("worse" if c.kind == "methods" else "better") for c in result.comparisons)
    assert all(c.family == c.a and c.correction == "holm" for c in result.comparisons)
    assert {c.kind for c in result.comparisons} == {"twin", "methods"}


# -- R1 ----------------------------------------------------------------------------------------

def test_r1_fires_when_one_entry_retrains_fewer_steps():
    records = replace_cell(fair_records(), "beta", "ft", retrain_steps=150)
    finding = only(findings(records, "R1"), "fail")
    assert finding.cells == ("toy/beta/half/ft@10",)
    assert finding.evidence["total_steps"] == 150 and finding.evidence["reference_steps"] == 200
    assert finding.evidence["relative_difference"] == pytest.approx(0.25)


def test_r1_tolerates_five_percent():
    assert findings(replace_cell(fair_records(), "beta", "ft", retrain_steps=191), "R1") == []


# -- R2 ----------------------------------------------------------------------------------------

def test_r2_fires_on_a_different_weight_decay():
    protocol = Protocol(**{**fair_records()[0].protocol.model_dump(), "weight_decay": 5e-4})
    finding = only(findings(replace_cell(fair_records(), "beta", "clr", protocol=protocol), "R2"), "fail")
    assert finding.cells == ("toy/beta/half/clr@10",)
    assert finding.evidence["differences"] == {"weight_decay": {"entry": 5e-4, "reference": 1e-4}}


def test_r2_allows_tuned_values_for_tuned_entries():
    if "tuning" not in type(fair_records()[0]).model_fields:
        pytest.skip("records without a tuning field")
    protocol = Protocol(**{**fair_records()[0].protocol.model_dump(), "peak_lr": 0.3})
    records = replace_cell(fair_records(), "beta", "clr", protocol=protocol, tuning={"study": "x", "n_trials": 5})
    assert findings(records, "R2") == []


# -- R3 ----------------------------------------------------------------------------------------

def test_r3_fires_on_five_percent_more_macs():
    finding = only(findings(replace_cell(fair_records(), "alpha", "ft", macs_after=43882), "R3"), "fail")
    assert finding.cells == ("toy/alpha/half/ft@10",)
    assert finding.evidence["reference_macs_after"] == 41792


def test_r3_fires_on_sparsity_one_point_off():
    if "sparsity" not in type(fair_records()[0]).model_fields:
        pytest.skip("records without a sparsity field")
    records = [r.model_copy(update={"sparsity": 0.5}) for r in fair_records()]
    records = replace_cell(records, "beta", "ft", sparsity=0.51)
    finding = only(findings(records, "R3"), "fail")
    assert finding.evidence["difference"] == pytest.approx(0.01)


def _masked(records):
    """The records as unstructured (masked) runs: every MAC kept, half the weights zeroed."""
    return [r.model_copy(update={"sparsity": 0.5, "macs_after": r.macs_before}) for r in records]


def test_r3_checks_structured_and_masked_entries_within_their_own_family():
    masked = _masked(fair_records(methods=("gamma", "delta"), means={("gamma", False): 0.92, ("delta", False): 0.91,
                                                                     ("gamma", True): 0.86, ("delta", True): 0.85}))
    result = audit(fair_records() + masked)
    assert [f for f in result.findings if f.rule == "R3"] == []
    pairs = {(c.a.split("/")[1], c.b.split("/")[1]) for c in result.comparisons if c.kind == "methods"}
    assert pairs == {("beta", "alpha"), ("gamma", "delta")}  # never across families
    claim = Claim(name="gamma beats beta", method="gamma", baseline="beta", schedule="ft", budget=10)
    finding = only([f for f in audit(fair_records() + masked, claims=[claim]).findings if f.rule == "R3"], "fail")
    assert (finding.evidence["family_a"], finding.evidence["family_b"]) == ("unstructured", "structured")


# -- R4 ----------------------------------------------------------------------------------------

def test_r4_fires_when_an_entry_starts_from_another_dense_checkpoint():
    records = [r.model_copy(update={"dense_hash": "retrained-dense"})
               if (r.method, r.schedule, r.twin, r.dense_seed) == ("beta", "ft", False, 0) else r
               for r in fair_records()]
    finding = only(findings(records, "R4"), "fail")
    assert finding.cells == ("toy/beta/half/ft@10",)
    assert "seed 0: retrained-dense" in finding.evidence["dense_checkpoints"]


def test_r4_warns_when_a_paper_starts_from_a_better_dense_model():
    reported = to_records(ReportedResult(track=TRACK, method="alpha", target=TARGET, schedule="ft", budget_epochs=10,
                                         test_acc=0.93, dense_test_acc=0.97), "Paper A")
    finding = only(findings(fair_records() + reported, "R4"), "warn")
    assert finding.evidence["difference"] == pytest.approx(0.97 - 0.9505)


# -- R5 ----------------------------------------------------------------------------------------

def test_r5_fails_below_three_seeds_and_warns_below_five():
    records = fair_records()
    two = [r for r in records if not (r.method == "beta" and r.schedule == "ft" and not r.twin and r.seed != 0)]
    assert only(findings(two, "R5"), "fail").evidence["n"] == 2
    four = [r for r in records if not (r.method == "beta" and r.schedule == "ft" and not r.twin
                                       and (r.dense_seed, r.seed) in SEEDS[4:])]
    assert only(findings(four, "R5"), "warn").evidence["n"] == 4


def test_r5_counts_diverged_runs_against_the_cell():
    records = [r.model_copy(update={"status": "diverged", "test_acc": None})
               if (r.method, r.schedule, r.twin, r.seed) == ("alpha", "ft", False, 2) else r for r in fair_records()]
    finding = only(findings(records, "R5"), "warn")
    assert (finding.evidence["n"], finding.evidence["n_failed"]) == (4, 2)


# -- R6, R7, R8: claims --------------------------------------------------------------------------

def test_r6_fires_when_the_claimed_direction_is_wrong_and_not_otherwise():
    wrong = Claim(name="beta wins", method="beta", baseline="alpha", schedule="ft", budget=10)
    right = Claim(name="alpha wins", method="alpha", baseline="beta", schedule="ft", budget=10)
    found = findings(fair_records(), "R6", claims=[wrong, right])
    finding = only(found, "fail")
    assert finding.claim == "beta wins" and finding.evidence["difference"] < 0


def test_r6_fires_on_a_difference_within_noise():
    records = fair_records() + cell("gamma", noisy(0.93, 6, seed=7)) + cell("gamma", noisy(0.86, 6, seed=8), twin=True)
    claim = Claim(name="gamma beats alpha", method="gamma", baseline="alpha", schedule="ft", budget=10)
    finding = only(findings(records, "R6", claims=[claim]), "fail")
    assert finding.evidence["pvalue"] > 0.05


def _borderline(method: str, schedule: str) -> list:
    """A cell whose paired t test against a constant 0.90 cell gives p of about 0.04."""
    z = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]) / np.std([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5], ddof=1)
    return cell(method, list(0.90 + 0.01 + 0.0088 * z), schedule=schedule)


def test_r7_fires_when_claims_do_not_survive_holm():
    records = [*_borderline("gamma", "ft"), *cell("delta", [0.90] * 6, schedule="ft"),
               *_borderline("gamma", "clr"), *cell("delta", [0.90] * 6, schedule="clr")]
    claims = [Claim(name=f"gamma beats delta under {s}", method="gamma", baseline="delta", schedule=s, budget=10)
              for s in ("ft", "clr")]
    found = findings(records, "R7", claims=claims)
    assert len(found) == 2 and all(f.severity == "fail" for f in found)
    raw = scipy_stats.ttest_rel([r.test_acc for r in _borderline("gamma", "ft")], [0.90] * 6).pvalue
    assert found[0].evidence["pvalue"] == pytest.approx(raw / 2)  # claims are one-sided
    assert found[0].evidence["pvalue_holm"] == pytest.approx(raw)  # Holm over two one-sided p-values
    assert 0.025 < raw < 0.05


def test_r7_notes_table_comparisons_lost_to_benjamini_hochberg():
    records = [*_borderline("gamma", "ft"), *cell("delta", [0.90] * 6, schedule="ft"),
               *cell("epsilon", [0.90 + 0.0005 * (-1) ** i for i in range(6)], schedule="ft")]
    finding = only(findings(records, "R7"), "info")
    assert finding.evidence == {"comparisons": 3, "significant_uncorrected": 2, "significant_corrected": 0}


def test_r8_fires_on_no_loss_claimed_from_a_non_significant_drop():
    values = [0.95 - 0.003 + d for d in (-0.01, 0.012, -0.008, 0.009, -0.011, 0.005)]
    records = fair_records() + cell("gamma", values)
    claim = Claim(name="gamma keeps accuracy", kind="no-loss", method="gamma", schedule="ft", budget=10, margin=0.005)
    finding = only([f for f in findings(records, "R8", claims=[claim]) if f.severity == "fail"])
    assert finding.evidence["naive_pvalue"] > 0.05 and finding.evidence["noninferiority_pvalue"] > 0.05
    assert "not evidence of none" in finding.message


def test_r8_is_quiet_on_a_shown_no_loss_and_warns_without_margin():
    values = [0.9505 + d for d in (-0.0004, 0.0003, -0.0002, 0.0004, -0.0003, 0.0002)]
    records = fair_records() + cell("gamma", values)
    shown = Claim(name="gamma keeps accuracy", kind="no-loss", method="gamma", schedule="ft", budget=10, margin=0.005)
    assert findings(records, "R8", claims=[shown]) == []
    unstated = Claim(name="no margin", kind="no-loss", method="gamma", schedule="ft", budget=10)
    assert only(findings(records, "R8", claims=[unstated]), "warn").evidence["margin"] == CONFIG.equivalence_margin


# -- R9 ----------------------------------------------------------------------------------------

def test_r9_warns_when_a_method_is_no_better_than_its_twin():
    records = fair_records() + cell("gamma", noisy(0.90, 6, seed=11)) + cell("gamma", noisy(0.90, 6, seed=12), twin=True)
    finding = only(findings(records, "R9"), "warn")
    assert finding.cells == ("toy/gamma/half/ft@10", "toy/gamma+twin/half/ft@10")
    assert finding.evidence["verdict"] in ("tie", "equivalent")


def test_r9_leaves_single_seed_cells_to_r5():
    records = fair_records() + cell("gamma", [0.9], seeds=[(0, 0)]) + cell("gamma", [0.95], seeds=[(0, 0)], twin=True)
    assert findings(records, "R9") == []
    assert len(findings(records, "R5")) == 2


def test_r9_fails_without_twin_runs_and_skips_random_methods():
    records = fair_records() + cell("gamma", noisy(0.90, 6, seed=11)) + cell("random", noisy(0.85, 6, seed=13))
    finding = only(findings(records, "R9"), "fail")
    assert finding.cells == ("toy/gamma/half/ft@10",)


# -- R10 ---------------------------------------------------------------------------------------

def test_r10_warns_on_unequal_trial_counts_with_expected_max_at_equal_trials():
    tuned = study("alpha", 50, values=np.linspace(0.80, 0.95, 50))
    finding = only(findings(fair_records(), "R10", studies=[tuned]), "warn")
    assert finding.evidence["trials"]["toy/alpha/half/ft@10"] == 50
    assert finding.evidence["trials"]["toy/beta/half/ft@10"] == 1
    expected = finding.evidence["expected_best_val_acc_at_equal_trials"]["toy/alpha/half/ft@10"]
    assert expected == pytest.approx(np.mean(np.linspace(0.80, 0.95, 50)))  # one trial: the mean trial


def test_r10_fails_on_selection_on_the_test_split():
    studies = [study(m, 20, twin=t, schedule=s, split="test" if (m, t, s) == ("beta", False, "ft") else "val")
               for m in ("alpha", "beta") for t in (False, True) for s in ("ft", "clr")]
    finding = only(findings(fair_records(), "R10", studies=studies), "fail")
    assert finding.cells == ("toy/beta/half/ft@10",) and finding.evidence["split"] == "test"


def test_tuning_histories_are_read_and_bad_ones_reported(tmp_path):
    folder = tmp_path / TRACK / "tuning"
    folder.mkdir(parents=True)
    history = {"study": "s1", "track": TRACK, "method": "alpha", "twin": False, "target": TARGET, "schedule": "ft",
               "budget_epochs": 10, "sampler": "tpe", "seed": 0, "objective": "val_acc", "split": "val",
               "n_trials": 3, "trials": [{"number": i, "state": s, "value": v, "params": {}, "intermediate": []}
                                         for i, (s, v) in enumerate([("COMPLETE", 0.9), ("PRUNED", None),
                                                                     ("COMPLETE", 0.92)])],
               "best_params": {}, "best_value": 0.92}
    (folder / "s1.json").write_text(json.dumps(history))
    (folder / "broken.json").write_text(json.dumps({"study": "broken"}))
    studies, problems = load_studies(ResultsLayout(tmp_path))
    assert [(s.study, s.n_trials, s.values) for s in studies] == [("s1", 3, (0.9, 0.92))]
    assert problems[0].path.name == "broken.json" and "lacks the key" in problems[0].reason
    assert load_studies(ResultsLayout(tmp_path / "missing")) == ([], [])


# -- R11 ---------------------------------------------------------------------------------------

def _reported(value: float, **kwargs):
    result = ReportedResult(track=TRACK, method="alpha", target=TARGET, schedule="ft", budget_epochs=10,
                            test_acc=value, **kwargs)
    return to_records(result, "Paper A, Table 1")


def test_r11_warns_when_a_paper_reports_more_than_reproduced():
    finding = only(findings(fair_records() + _reported(0.96), "R11"), "warn")
    assert finding.evidence["gap"] == pytest.approx(0.96 - np.mean([r.test_acc for r in fair_records()
                                                                      if (r.method, r.schedule, r.twin) ==
                                                                      ("alpha", "ft", False)]))
    assert finding.cells[0] == "toy/alpha/half/ft@10 [reported: Paper A, Table 1]"


def test_r11_is_quiet_on_a_matching_number_and_notes_unreproduced_ones():
    reproduced_mean = np.mean([r.test_acc for r in fair_records() if (r.method, r.schedule, r.twin) ==
                               ("alpha", "ft", False)])
    assert findings(fair_records() + _reported(round(float(reproduced_mean), 4)), "R11") == []
    unmatched = to_records(ReportedResult(track=TRACK, method="omega", target=TARGET, schedule="ft", budget_epochs=10,
                                          test_acc=0.9), "Paper B")
    assert only(findings(fair_records() + unmatched, "R11"), "info")


def test_reported_records_are_never_pooled_with_reproduced_ones():
    result = audit(fair_records() + _reported(0.96))
    alpha = [c for c in result.cells if (c.key.method, c.key.schedule, c.key.twin) == ("alpha", "ft", False)]
    assert sorted(c.n for c in alpha) == [1, 6]
    assert all("reported" not in c.a + c.b for c in result.comparisons)


# -- R12 ---------------------------------------------------------------------------------------

def test_r12_notes_cells_with_a_single_dense_checkpoint():
    records = [r for r in fair_records() if r.dense_seed == 0]
    finding = only(findings(records, "R12"), "info")
    assert finding.evidence["cells"] == 8 and finding.evidence["dense_seeds"] == [0]


def test_r12_warns_when_different_seeds_give_identical_runs():
    records = [r.model_copy(update={"test_acc": 0.93, "curves": Curves(val_acc=[0.5, 0.9])})
               if (r.method, r.schedule, r.twin) == ("alpha", "ft", False) else r for r in fair_records()]
    finding = only(findings(records, "R12"), "warn")
    assert finding.cells == ("toy/alpha/half/ft@10",)


# -- R13 ---------------------------------------------------------------------------------------

def test_r13_warns_when_a_method_misses_a_track_and_is_quiet_with_full_coverage():
    both = fair_records() + fair_records(track="toy2")
    assert findings(both, "R13") == []
    partial = fair_records() + fair_records(track="toy2", methods=("alpha",))
    finding = only(findings(partial, "R13"), "warn")
    assert finding.evidence == {"method": "beta", "tracks": ["toy"], "missing_tracks": ["toy2"]}


def test_cross_track_aggregates_are_computed_with_two_tracks():
    result = audit(fair_records() + fair_records(track="toy2"))
    assert [m.method for m in result.method_aggregates] == ["alpha", "beta"]
    alpha = result.method_aggregates[0]
    assert alpha.iqm.ci_method == "stratified-percentile-bootstrap" and alpha.iqm.n_tasks == 2
    (pair,) = result.pair_aggregates
    assert (pair.a, pair.b) == ("alpha", "beta") and pair.probability_of_improvement.estimate == 1.0


# -- exit status and configuration ----------------------------------------------------------------

def test_exit_status_is_one_with_a_fail_finding():
    assert audit(replace_cell(fair_records(), "beta", "ft", retrain_steps=150)).exit_code == 1
    assert audit(fair_records() + cell("gamma", noisy(0.9, 6, 1)) + cell("gamma", noisy(0.9, 6, 2), twin=True)
                 ).exit_code == 0  # warnings do not fail


def test_thresholds_are_configurable_and_validated():
    records = replace_cell(fair_records(), "beta", "ft", retrain_steps=185)
    assert findings(records, "R1") != []
    assert findings(records, "R1", config=AuditConfig(budget_tolerance=0.1)) == []
    with pytest.raises(BenchError, match="min_seeds"):
        AuditConfig(min_seeds=6)


# -- comparisons and their statistics -------------------------------------------------------------

@pytest.mark.parametrize("n_a,n_b", [(5, 5), (3, 4), (2, 2), (1, 4), (8, 8)])
def test_vectorized_independent_tests_equal_harness_stats(n_a, n_b):
    rng = np.random.default_rng(n_a * 10 + n_b)
    x = np.round(rng.normal(0.9, 0.01, (25, n_a)) * 359) / 359  # accuracies on a 359-image test set: ties
    y = np.round(rng.normal(0.9, 0.01, (25, n_b)) * 359) / 359
    x[0], y[0] = 0.9, 0.91  # both constant
    seeds = list(range(25))
    batch = vectorized.independent(x, y, margin=0.005, alpha=0.05, seeds=seeds, n_resamples=9999)
    for i in range(25):
        welch = stats.welch_test(x[i], y[i])
        permutation = stats.permutation_test(x[i], y[i], seed=seeds[i])
        for got, want in [(batch.pvalue[i], welch.pvalue), (batch.statistic[i], welch.statistic),
                          (batch.df[i], welch.df), (batch.permutation_pvalue[i], permutation.pvalue),
                          (batch.equivalence_pvalue[i], stats.tost(x[i], y[i], 0.005).pvalue),
                          (batch.hedges_g[i], stats.hedges_g(x[i], y[i])),
                          (batch.cliffs_delta[i], stats.cliffs_delta(x[i], y[i]))]:
            assert got == pytest.approx(want, rel=1e-9, nan_ok=True)


@pytest.mark.parametrize("n", [2, 3, 5, 6, 14])
def test_vectorized_paired_tests_equal_harness_stats(n):
    rng = np.random.default_rng(n)
    x = np.round(rng.normal(0.9, 0.01, (20, n)) * 359) / 359
    y = np.round((x + rng.normal(0.003, 0.005, (20, n))) * 359) / 359
    y[0] = x[0] - 0.01  # constant differences
    seeds = list(range(20))
    batch = vectorized.paired(x, y, margin=0.005, alpha=0.05, seeds=seeds, n_resamples=9999)
    for i in range(20):
        for got, want in [(batch.pvalue[i], stats.paired_t_test(x[i], y[i]).pvalue),
                          (batch.permutation_pvalue[i], stats.paired_permutation_test(x[i], y[i], seed=seeds[i]).pvalue),
                          (batch.equivalence_pvalue[i], stats.tost(x[i], y[i], 0.005, paired=True).pvalue)]:
            assert got == pytest.approx(want, rel=1e-9, nan_ok=True)
    assert batch.permutation_exact.all() == (2**n <= 9999)


def test_paired_power_matches_published_values():
    # G*Power, one-sample/paired t test, two-sided alpha 0.05: d = 1, n = 10 -> power 0.8031;
    # power 0.8 at n = 10 needs d = 0.996; d = 0.5 at power 0.8 needs n = 34 (two-sample: 64 per group).
    assert stats.paired_power(1.0, 1.0, 10, 0.05) == pytest.approx(0.80310, abs=1e-5)
    assert stats.minimum_detectable_difference(1.0, 10, 0.05, 0.8, paired=True) == pytest.approx(0.9960, abs=1e-4)
    assert stats.seeds_needed(0.5, 1.0, 0.05, 0.8, paired=True) == 34
    assert stats.seeds_needed(0.5, 1.0, 0.05, 0.8) == 64
    assert stats.minimum_detectable_difference(0.01, 5, 0.05, 0.8, paired=False) == pytest.approx(
        stats.minimum_detectable_difference(0.01, 5))
    assert stats.minimum_detectable_difference(0.01, 1, 0.05, 0.8, paired=True) == math.inf


def test_paired_power_matches_simulation():
    rng = np.random.default_rng(0)
    differences = rng.normal(0.5, 1.0, (100_000, 8))
    t = differences.mean(axis=1) / (differences.std(axis=1, ddof=1) / math.sqrt(8))
    simulated = np.mean(np.abs(t) > scipy_stats.t.isf(0.025, 7))
    assert stats.paired_power(0.5, 1.0, 8, 0.05) == pytest.approx(simulated, abs=0.005)


def test_table_comparisons_are_holm_corrected_within_each_methods_family():
    records = fair_records() + fair_records(track="toy2")
    cells = build_cells(records, CONFIG)
    comparisons = table_comparisons(cells, CONFIG)
    families = {c.family for c in comparisons}
    assert families == {c.a for c in comparisons}
    for family in families:
        mine = [c for c in comparisons if c.family == family]
        expected = stats.holm([c.pvalue for c in mine])
        assert [c.pvalue_adjusted for c in mine] == pytest.approx(list(expected))
        assert all(c.correction == "holm" and c.family_size == len(mine) for c in mine)


def test_unpaired_cells_use_welch():
    records = fair_records() + cell("gamma", noisy(0.9, 6, 5), seeds=[(0, s) for s in range(10, 16)])
    cells = {c.label: c for c in build_cells(records, CONFIG)}
    (comparison,) = compare_pairs([(cells["toy/gamma/half/ft@10"], cells["toy/alpha/half/ft@10"], "x")], CONFIG)
    assert not comparison.paired and comparison.test == "welch"
    expected = scipy_stats.ttest_ind(cells["toy/gamma/half/ft@10"].values, cells["toy/alpha/half/ft@10"].values,
                                     equal_var=False)
    assert comparison.pvalue == pytest.approx(expected.pvalue)
    low, high = expected.confidence_interval(0.95)
    assert (comparison.ci_low, comparison.ci_high) == pytest.approx((low, high))


def test_holm_adjustment_and_undefined_tests():
    records = fair_records() + [record(method="gamma", test_acc=0.9, seed=0)]
    cells = {c.label: c for c in build_cells(records, CONFIG)}
    pairs = [(cells["toy/alpha/half/ft@10"], cells["toy/beta/half/ft@10"], "x"),
             (cells["toy/alpha/half/ft@10"], cells["toy/alpha+twin/half/ft@10"], "x"),
             (cells["toy/gamma/half/ft@10"], cells["toy/beta/half/ft@10"], "x")]
    adjusted = adjust(compare_pairs(pairs, CONFIG), "holm", 0.05)
    assert [c.pvalue_adjusted for c in adjusted[:2]] == pytest.approx(list(stats.holm([c.pvalue for c in adjusted[:2]])))
    assert math.isnan(adjusted[2].pvalue_adjusted) and adjusted[2].verdict == "tie"


def test_verdicts_come_from_the_corrected_test_alone():
    assert verdict(0.02, 0.001, 0.01, 0.9, 0.05) == "better"
    assert verdict(-0.02, 0.001, 0.01, 0.9, 0.05) == "worse"
    assert verdict(0.005, 0.001, 0.01, 0.9, 0.05) == "better"  # below the detectable difference: reported, no gate
    assert verdict(0.005, 0.06, 0.01, 0.9, 0.05) == "tie"
    assert verdict(0.001, 0.4, 0.01, 0.01, 0.05) == "equivalent"
    assert verdict(0.02, math.nan, 0.01, math.nan, 0.05) == "tie"


def test_cell_intervals_follow_harness_stats():
    cells = {c.label: c for c in build_cells(fair_records(), CONFIG)}
    alpha = cells["toy/alpha/half/ft@10"]
    assert alpha.summary == stats.summarize(alpha.values)
    assert alpha.pairing == tuple((dense_hash(TRACK, d), d, s) for d, s in SEEDS)


# -- partial pairing, seeds to detect, fixed families (issue 13) -----------------------------------------

def test_cells_pair_on_their_shared_runs_when_enough_are_shared():
    records = fair_records(schedules=("ft",))
    twin = [r for r in records if r.twin and r.method == "alpha"]
    records = [r for r in records if r not in twin[:1]]  # one twin run lost: 5 of 6 shared
    result = audit(records)
    c = next(c for c in result.comparisons if c.kind == "twin" and "/alpha/" in c.a)
    cells = {cell.label: cell for cell in result.cells}
    a, b = cells[c.a], cells[c.b]
    shared = set(a.pairing) & set(b.pairing)
    x = [v for k, v in zip(a.pairing, a.values) if k in shared]
    y = [v for k, v in zip(b.pairing, b.values) if k in shared]
    assert c.paired and c.partial and c.n_pairs == 5 and (c.n_a, c.n_b) == (6, 5)
    assert c.pairing == "paired on 5 of 6/5 runs" and c.test == "paired-t"
    assert c.pvalue == pytest.approx(scipy_stats.ttest_rel(x, y).pvalue)
    assert c.difference == pytest.approx(np.mean(x) - np.mean(y))
    # fewer shared runs than min_seeds: Welch on every run
    few = [r for r in records if not (r.twin and r.method == "alpha" and r.dense_seed == 1)] + [
        r.model_copy(update={"seed": r.seed + 10}) for r in twin if r.dense_seed == 1]
    c = next(c for c in audit(few, config=AuditConfig(min_seeds=4)).comparisons
             if c.kind == "twin" and "/alpha/" in c.a)
    assert not c.paired and not c.partial and c.n_pairs == 0 and c.test == "welch"


def test_every_comparison_reports_the_seeds_that_would_detect_its_gap():
    for c in audit(fair_records()).comparisons:
        expected = stats.seeds_needed(abs(c.difference), c.noise_std, 0.05, 0.8, max_n=1000, paired=c.paired)
        assert c.seeds_to_detect == expected and math.isfinite(c.minimum_detectable_difference)


def test_a_new_methods_comparisons_live_in_its_own_family():
    base = fair_records()
    newcomer = cell("gamma", noisy(0.935, 6, 3)) + cell("gamma", noisy(0.86, 6, 4), twin=True) + cell(
        "gamma", noisy(0.935, 6, 5), schedule="clr") + cell("gamma", noisy(0.86, 6, 6), twin=True, schedule="clr")
    config = AuditConfig(references=("alpha", "beta"))
    before = audit(base, config=config).comparisons
    after = audit(base + newcomer, config=config).comparisons
    mine = [c for c in after if "/gamma" in c.a or "/gamma" in c.b]
    assert mine and all(c.family == c.a and "/gamma" in c.a for c in mine)  # gamma owns them all
    assert {c.b.split("/")[1] for c in mine if c.kind == "methods"} == {"alpha", "beta"}
    assert [c for c in after if c not in mine] == list(before)


def _comparisons_without(result, method):
    return {(c.a, c.b): c for c in result.comparisons if f"/{method}/" not in c.a + "/" and f"/{method}/" not in c.b
            and f"/{method}+twin/" not in c.a and f"/{method}+twin/" not in c.b}


def _ranks_without(result, method):
    from harness.publish.leaderboard import build_leaderboard
    return {(t.track, t.target, t.budget, t.family, e.method): (e.rank, e.cell)
            for t in build_leaderboard(result).tables for e in t.entries if e.method != method}


@pytest.mark.slow
def test_adding_removing_or_rerunning_a_method_changes_no_other_methods_results_on_committed_records():
    from harness.audit.families import declared_references
    from harness.run.record import load_records
    records, _ = load_records(ResultsLayout("results"), "digits-cnn")
    records = [r for r in records if r.method != "example-apoz"]  # committed reference records only
    assert len(records) == 2520
    # hrank as a newly submitted method (not a declared reference), and the last declared reference as is
    declared = declared_references("digits-cnn")
    submitted = AuditConfig(references=tuple(m for m in declared if m != "hrank"))
    for config, method in ((submitted, "hrank"), (AuditConfig(), declared[-1])):
        full = audit(records, config=config)
        without = audit([r for r in records if r.method != method], config=config)
        rng = np.random.default_rng(0)  # a rerun: other accuracies, still whole test images (1/359)
        rerun = audit([r.model_copy(update={"test_acc": float(np.clip(r.test_acc + rng.integers(-3, 4) / 359, 0, 1))})
                       if r.method == method and r.test_acc is not None else r for r in records], config=config)
        expected = _comparisons_without(full, method)
        assert len(expected) > 300
        for other in (without, rerun):
            assert _comparisons_without(other, method) == expected
            if config is submitted:  # a reference's verdicts move ranks: only references do
                assert _ranks_without(other, method) == _ranks_without(full, method)


def test_schedules_that_train_identically_are_one_protocol():
    # digits: ft and lrw at 10 epochs both hold the recipe's last rate (0.001); at 20, lrw replays 0.01 first
    def runs(method, schedule, budget, **params):
        return [record(method=method, test_acc=0.95, seed=s, track="digits-cnn", target="uniform-50",
                       schedule=schedule, budget=budget, schedule_params=params) for s in range(3)]

    records = [*runs("alpha", "ft", 10), *runs("alpha", "lrw", 10), *runs("alpha", "ft", 20), *runs("alpha", "lrw", 20),
               *runs("alpha", "slr", 10), *runs("beta", "ft", 10, lr=0.002)]
    cells = {(c.key.method, c.key.schedule, c.key.budget_epochs): c for c in audit(records).cells}
    ft10, lrw10 = cells[("alpha", "ft", 10)], cells[("alpha", "lrw", 10)]
    assert same_protocol(ft10, lrw10) and same_protocol(lrw10, ft10) and same_protocol(ft10, ft10)
    assert not same_protocol(cells[("alpha", "ft", 20)], cells[("alpha", "lrw", 20)])
    assert not same_protocol(ft10, cells[("alpha", "slr", 10)])
    assert not same_protocol(cells[("beta", "ft", 10)], lrw10), "a tuned rate is another protocol"
