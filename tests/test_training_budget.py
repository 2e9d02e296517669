"""A run's budget is its total training: a method that trains spends part of it before pruning or between
rounds, its random twin and every other method retrain it all after one pruning."""

from dataclasses import replace

import pytest

from harness.core.layout import ResultsLayout
from harness.grid.selection import expand, grid_size, select
from harness.methods import registry
from harness.methods.training import BudgetSplit, TrainingPhase, round_counts, split_budget
from harness.run import pipeline
from harness.run.execution import execute
from harness.run.pipeline import Workspace, budget_split, prune, retraining_steps
from harness.train.loop import TrainResult


def config_of(track, method, schedule, budget, target="uniform-50", twin=False):
    selection = select(track, methods=[method], targets=[target], schedules=[schedule], budgets=[budget], seeds=[0],
                       twins=twin)
    return next(c for c in expand(track, selection) if c.twin == twin)


@pytest.fixture(scope="module")
def workspace(digits_track, trained_results):
    return Workspace(digits_track, ResultsLayout(trained_results))


def steps_of(workspace, epochs):
    return epochs * retraining_steps(workspace, config_of(workspace.track, "l1-norm", "ft", 1)).steps_per_epoch


def test_the_budget_is_split_before_pruning_and_shared_by_the_rounds():
    phase = TrainingPhase(0.5, hook=lambda context: None)
    assert split_budget(10, phase, 1) == BudgetSplit(5, (5,))
    assert split_budget(7, phase, 1) == BudgetSplit(3, (4,))
    assert split_budget(10, None, 3) == BudgetSplit(0, (3, 3, 4))
    assert split_budget(0, phase, 3) == BudgetSplit(0, (0, 0, 0))
    assert all(split_budget(b, phase, r).total == b for b in range(0, 25) for r in (1, 2, 3, 5))


def test_round_counts_fall_geometrically_to_the_target():
    counts = round_counts({"a": 1000, "b": 10}, {"a": 125, "b": 1}, 3)
    assert counts == [{"a": 500, "b": 5}, {"a": 250, "b": 2}, {"a": 125, "b": 1}]


def test_a_training_method_spends_its_budget_before_and_after_pruning(workspace):
    slimming = execute(workspace, config_of(workspace.track, "network-slimming", "ft", 4))
    plain = execute(workspace, config_of(workspace.track, "l1-norm", "ft", 4))
    assert slimming.phases.pre_pruning_epochs == 2 and slimming.phases.round_epochs == [2]
    assert slimming.phases.pre_pruning_steps == slimming.retrain_steps == steps_of(workspace, 2)
    assert len(slimming.phases.pre_pruning_loss) == 2
    assert plain.phases is None and plain.retrain_steps == steps_of(workspace, 4)
    assert slimming.total_steps == plain.total_steps == steps_of(workspace, 4)
    shown = slimming.model_dump(mode="json")["phases"]
    assert (shown["total_epochs"], shown["total_steps"]) == (4, steps_of(workspace, 4))


def test_the_twin_of_a_training_method_retrains_the_whole_budget_with_the_methods_counts(workspace):
    """Under a channel target slimming's threshold chooses each layer's count after its phase; the twin keeps
    the same counts, drawn at random, and spends the whole budget as plain retraining."""
    method = execute(workspace, config_of(workspace.track, "network-slimming", "ft", 4, target="channels-50"))
    twin = execute(workspace, config_of(workspace.track, "network-slimming", "ft", 4, target="channels-50",
                                        twin=True))
    assert twin.kept == method.kept
    assert twin.phases is None and twin.retrain_steps == twin.total_steps == method.total_steps


def test_with_nothing_to_spend_a_training_method_is_its_criterion_on_the_dense_model(workspace):
    slimming = prune(workspace, config_of(workspace.track, "network-slimming", "none", 1))
    criterion = prune(workspace, config_of(workspace.track, "bn-scale", "none", 1))
    assert slimming.plan == criterion.plan
    assert slimming.phases.pre_pruning_epochs == 0 and slimming.phases.round_epochs == [0]


def test_the_phase_is_deterministic(workspace):
    config = config_of(workspace.track, "network-slimming", "ft", 2)
    first, second = prune(workspace, config), prune(workspace, config)
    assert first.plan == second.plan
    assert all((a == b).all() for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()))


def test_lrw_rewinds_each_round_to_the_recipes_rate_at_the_matching_epoch(workspace, monkeypatch):
    """Renda et al.'s iterative setting: every round replays the last epochs of the original schedule, as many
    as the round retrains."""
    magnitude = registry.get_method("magnitude-global")
    monkeypatch.setitem(registry._METHODS, "magnitude-rounds", replace(magnitude, name="magnitude-rounds", rounds=2))
    rates = []

    def recorded(model, train_split, val_split, recipe, values, generator, **kwargs):
        rates.append(values.per_epoch())
        epochs = len(rates[-1])
        return TrainResult("ok", [0.0] * epochs, [0.0] * epochs, rates[-1], len(values.lr))

    monkeypatch.setattr(pipeline, "train", recorded)
    config = config_of(workspace.track, "magnitude-global", "lrw", 30).model_copy(update={"method": "magnitude-rounds"})
    record = execute(workspace, config)
    recipe = workspace.track.recipe
    rewound = [recipe.lr_at_epoch(recipe.epochs - 15 + epoch) for epoch in range(15)]
    assert budget_split(config) == BudgetSplit(0, (15, 15))
    assert rates == [rewound, rewound] and rewound[0] != rewound[-1]
    assert record.phases.round_epochs == [15, 15] and record.retrain_steps == steps_of(workspace, 30)
    assert record.protocol.peak_lr == rewound[0]


def test_a_method_that_prunes_in_rounds_runs_under_the_fused_engine(digits_track, trained_results):
    """Between rounds a run retrains alone (a fused group forms only after the final pruning)."""
    from harness.run.execution import execute_many
    from harness.train.engines import EngineSettings

    fused = Workspace(digits_track, ResultsLayout(trained_results), engine=EngineSettings("fused"))
    configs = [config_of(digits_track, "imp", "ft", 3, twin=twin).model_copy(update={"engine": "fused"})
               for twin in (False, True)]
    records = list(execute_many(fused, configs))
    assert [r.status for r in records] == ["ok", "ok"]
    method = next(r for r in records if not r.twin)
    assert method.phases.round_epochs == [1, 1, 1] and method.total_steps == steps_of(fused, 3)


def test_a_phase_that_diverges_is_a_diverged_record_not_a_failure(workspace, monkeypatch):
    slimming = registry.get_method("network-slimming")
    exploding = TrainingPhase(0.5, penalty=lambda phase: sum(p.sum() for p in phase.model.parameters()) * float("inf"))
    monkeypatch.setitem(registry._METHODS, "exploding", replace(slimming, name="exploding", training=exploding))
    config = config_of(workspace.track, "network-slimming", "ft", 2).model_copy(update={"method": "exploding"})
    record = execute(workspace, config)
    assert record.status == "diverged" and "pre-pruning phase diverged" in record.error


def test_a_trained_twin_runs_the_methods_own_training_and_draws_its_units_at_random(workspace):
    """The second control: the same phase (same seeds, so the same trained model) and split, the method's counts,
    units at random, so the method and it differ in the criterion alone."""
    method = prune(workspace, config_of(workspace.track, "network-slimming", "ft", 4))
    trained = prune(workspace, config_of(workspace.track, "network-slimming", "ft", 4, twin=True)
                    .model_copy(update={"twin_trains": True}))
    assert trained.phases == method.phases and trained.phases.pre_pruning_epochs == 2
    assert trained.plan.counts() == method.plan.counts() and trained.plan != method.plan


def test_trained_twins_are_asked_for_and_compared_in_the_methods_family(digits_track, trained_results):
    from harness.audit import audit
    from harness.audit.families import table_pairs

    selection = select(digits_track, methods=["network-slimming", "l1-norm"], targets=["uniform-50"],
                       schedules=["ft"], budgets=[2], seeds=[0, 1, 2], trained_twins=True)
    configs = expand(digits_track, selection)
    kinds = {(c.method, c.twin, c.twin_trains) for c in configs}
    assert ("network-slimming", True, True) in kinds and ("l1-norm", True, True) not in kinds
    assert len(configs) == grid_size(selection) == 3 * 5
    records = [execute(Workspace(digits_track, ResultsLayout(trained_results)), c) for c in configs]
    result = audit(records)
    pairs = {(a.label, b.label, kind) for a, b, kind in table_pairs(result.cells)}
    assert ("digits-cnn/network-slimming/uniform-50/ft@2", "digits-cnn/network-slimming+trained-twin/uniform-50/ft@2",
            "trained-twin") in pairs
    assert not [f for f in result.findings if f.rule == "R1"]


def test_only_a_twin_can_train():
    from pydantic import ValidationError

    from harness.run.record import RunConfig

    with pytest.raises(ValidationError, match="twin_trains describes a random twin"):
        RunConfig(track="t", dense_hash="d", method="m", target="x", schedule="ft", budget_epochs=1, seed=0,
                  harness_version="0", twin_trains=True)


def test_a_structured_method_prunes_in_rounds_by_surgery_and_keeps_the_dense_models_indices(workspace, monkeypatch):
    """Each round removes channels from the network the previous rounds left; the record's plan names the dense
    model's channels, so the twin and the counts read as for a one-shot plan."""
    l1 = registry.get_method("l1-norm")
    monkeypatch.setitem(registry._METHODS, "l1-rounds", replace(l1, name="l1-rounds", rounds=2))
    config = config_of(workspace.track, "l1-norm", "ft", 4).model_copy(update={"method": "l1-rounds"})
    pruned = prune(workspace, config)
    one_shot = prune(workspace, config_of(workspace.track, "l1-norm", "ft", 4))
    assert pruned.plan.counts() == one_shot.plan.counts()
    assert pruned.after == one_shot.after  # the same architecture
    sizes = workspace.allocation("uniform-50", "structured", workspace.dense_model(0)).sizes
    assert all(0 <= i < sizes[layer] for layer, kept in pruned.plan.kept.items() for i in kept)
    assert pruned.phases.round_epochs == [2, 2] and pruned.phases.round_steps[0] == steps_of(workspace, 2)
    record = execute(workspace, config)
    assert record.status == "ok" and record.total_steps == steps_of(workspace, 4)
    twin = execute(workspace, config.model_copy(update={"twin": True}))
    assert twin.kept == record.kept and twin.phases is None


def test_trained_twins_for_methods_that_do_not_train_are_refused_in_one_line(digits_track):
    from harness.core.errors import BenchError

    with pytest.raises(BenchError, match="none of the selected methods .l1-norm. trains"):
        select(digits_track, methods=["l1-norm"], trained_twins=True)
