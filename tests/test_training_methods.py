"""The methods that train, on the digits CNN: what each one's training does to the network, and that each prunes
what its training prepared -- Network Slimming's penalty shrinks batch-norm scales, GReg's shrinks the filters
it chose at the start and prunes exactly those, SFP's hook zeroes all but ``keep`` filters after every epoch
and prunes the zeroed ones, IMP prunes in nested rounds whose retraining adds up to the budget."""

from itertools import pairwise

import pytest
import torch
from torch import nn

from harness.core.layout import ResultsLayout
from harness.core.seeding import generator
from harness.grid.selection import expand, select
from harness.methods import get_method, greg, sfp
from harness.methods.phase import run_phase
from harness.methods.training import BudgetSplit, PhaseContext, TrainingPhase, round_counts
from harness.run.execution import execute
from harness.run.pipeline import Workspace, budget_split, prune
from harness.train.loop import steps_per_epoch


def config_of(track, method, schedule="ft", budget=4, twin=False):
    selection = select(track, methods=[method], targets=["uniform-50"], schedules=[schedule], budgets=[budget],
                       seeds=[0], twins=twin)
    return next(c for c in expand(track, selection) if c.twin == twin)


@pytest.fixture(scope="module")
def workspace(digits_track, trained_results):
    return Workspace(digits_track, ResultsLayout(trained_results))


def phase_context(workspace, method, model, epochs):
    """The context ``Workspace.train_phase`` builds for ``method`` on ``model``."""
    allocation = workspace.allocation("uniform-50", get_method(method).kind, model)
    return PhaseContext(model=model, sizes=allocation.sizes, keep=dict(allocation.keep), batchnorms={},
                        generator=generator(0, "phase"), epochs=epochs,
                        steps=epochs * steps_per_epoch(len(workspace.splits.train), workspace.track.recipe.batch_size))


def run_own_phase(workspace, method, phase, epochs):
    """``phase`` run on the dense model with the data order the harness gives ``method``'s phase; the model and
    the run."""
    model = workspace.dense_model(0)
    run = run_phase(phase, phase_context(workspace, method, model, epochs), workspace.splits.train,
                    workspace.track.recipe, generator(0, "phase-data", workspace.device))
    return model, run


def filter_norms(model, layers):
    modules = dict(model.named_modules())
    return {name: modules[name].weight.detach().flatten(1).norm(dim=1) for name in layers}


def test_slimmings_penalty_shrinks_the_scales_more_than_fine_tuning_the_same_steps(workspace):
    def scales(model):
        return sum(m.weight.detach().abs().sum().item() for m in model.modules() if isinstance(m, nn.BatchNorm2d))

    dense = scales(workspace.dense_model(0))
    slimmed = workspace.dense_model(0)
    run = workspace.train_phase(config_of(workspace.track, "network-slimming"), slimmed, 2)
    tuned, plain = run_own_phase(workspace, "network-slimming", TrainingPhase(0.5, hook=lambda phase: None), 2)
    assert run.status == plain.status == "ok" and run.steps == plain.steps == 40
    assert dense - scales(slimmed) > 10 * abs(dense - scales(tuned)) > 0


def test_gregs_penalty_grows_linearly_then_holds_its_ceiling():
    assert greg.coefficient(0.0) == 0.0
    assert greg.coefficient(greg.RAMP / 2) == pytest.approx(greg.CEILING / 2)
    assert greg.coefficient(greg.RAMP) == greg.coefficient(1.0) == greg.CEILING


def test_greg_chooses_the_smallest_l1_filters_at_the_start_shrinks_them_toward_zero_and_prunes_exactly_those(workspace):
    config = config_of(workspace.track, "greg")
    dense = workspace.dense_model(0)
    model = workspace.dense_model(0)
    run = workspace.train_phase(config, model, 2)
    l1_plan = workspace.make_plan("l1-norm", "uniform-50", 0, dense)
    chosen = run.memory["pruned"]
    assert chosen == {layer: sorted(set(range(dense.get_submodule(layer).out_channels)) - set(kept))
                      for layer, kept in l1_plan.kept.items()}
    before, after = filter_norms(dense, chosen), filter_norms(model, chosen)
    for layer, filters in chosen.items():
        kept = list(l1_plan.kept[layer])
        assert (after[layer][filters] < 0.2 * before[layer][filters]).all(), layer
        assert after[layer][kept].sum() > 0.9 * before[layer][kept].sum(), layer
    assert workspace.make_plan("greg", "uniform-50", 0, model, memory=run.memory) == l1_plan
    assert prune(workspace, config).plan == l1_plan


def test_sfp_zeroes_all_but_keep_filters_after_every_epoch_lets_them_recover_and_prunes_the_zeroed(workspace):
    nonzero_before_zeroing = []

    def watched(phase):
        if phase.end_of_epoch:
            norms = filter_norms(phase.model, phase.sizes)
            nonzero_before_zeroing.append({layer: int((n > 0).sum()) for layer, n in norms.items()})
        sfp.zero_smallest(phase)

    model, _ = run_own_phase(workspace, "sfp", TrainingPhase(0.5, hook=watched), 2)
    allocation = workspace.allocation("uniform-50", "structured", model)
    keep, sizes = dict(allocation.keep), dict(allocation.sizes)
    assert nonzero_before_zeroing == [sizes, sizes], "the filters zeroed after epoch 1 trained again"
    norms = filter_norms(model, keep)
    assert {layer: int((n > 0).sum()) for layer, n in norms.items()} == keep
    plan = workspace.make_plan("sfp", "uniform-50", 0, model)
    assert plan.kept == {layer: tuple(torch.nonzero(n).flatten().tolist()) for layer, n in norms.items()}

    config = config_of(workspace.track, "sfp")
    trained = workspace.dense_model(0)
    workspace.train_phase(config, trained, 2)
    assert {layer: int((n > 0).sum()) for layer, n in filter_norms(trained, keep).items()} == keep
    assert prune(workspace, config).plan == workspace.make_plan("sfp", "uniform-50", 0, trained)


def test_imp_prunes_in_three_nested_rounds_whose_retraining_adds_up_to_the_budget(workspace, monkeypatch):
    plans = []
    make_plan = workspace.make_plan

    def recorded(*args, **kwargs):
        plans.append(make_plan(*args, **kwargs))
        return plans[-1]

    monkeypatch.setattr(workspace, "make_plan", recorded)
    record = execute(workspace, config_of(workspace.track, "imp", budget=4))
    assert record.status == "ok"
    assert record.phases.pre_pruning_epochs == 0 and record.phases.round_epochs == [1, 1, 2]
    assert record.phases.round_steps == [epochs * record.steps_per_epoch for epochs in (1, 1, 2)]
    assert sum(record.phases.round_steps) == record.retrain_steps
    assert record.retrain_steps == record.total_steps == 4 * record.steps_per_epoch
    assert len(plans) == 3
    total = sum(mask.numel() for mask in plans[0].masks.values())
    for index, (earlier, later) in enumerate(pairwise(plans)):
        assert all((later.masks[layer] <= earlier.masks[layer]).all() for layer in later.masks), index
    assert [sum(p.counts().values()) / total for p in plans] == pytest.approx([0.5 ** (1 / 3), 0.5 ** (2 / 3), 0.5],
                                                                              abs=2e-3)
    assert record.sparsity == pytest.approx(0.5, abs=1e-3)


@pytest.mark.parametrize("method, criterion", [("greg", "l1-norm"), ("sfp", "l2-norm"), ("imp", "magnitude-global")])
def test_with_no_budget_a_training_method_is_its_criterion_on_the_dense_model(workspace, method, criterion):
    pruned = prune(workspace, config_of(workspace.track, method, "none"))
    assert pruned.plan == prune(workspace, config_of(workspace.track, criterion, "none")).plan
    assert pruned.phases.pre_pruning_epochs == 0 and set(pruned.phases.round_epochs) == {0}


def test_each_training_method_splits_the_budget_and_its_twin_retrains_it_all(digits_track):
    assert budget_split(config_of(digits_track, "greg", budget=5)) == BudgetSplit(2, (3,))
    assert budget_split(config_of(digits_track, "sfp", budget=5)) == BudgetSplit(2, (3,))
    assert budget_split(config_of(digits_track, "imp", budget=10)) == BudgetSplit(0, (3, 3, 4))
    assert budget_split(config_of(digits_track, "imp", budget=2)) == BudgetSplit(0, (0, 0, 2))
    assert budget_split(config_of(digits_track, "imp", budget=10, twin=True)) == BudgetSplit(0, (10,))


def test_round_counts_leave_a_whole_layer_whole_and_one_round_is_the_target():
    assert round_counts({"a": 64, "b": 8}, {"a": 8, "b": 8}, 3) == [{"a": 32, "b": 8}, {"a": 16, "b": 8},
                                                                      {"a": 8, "b": 8}]
    assert round_counts({"a": 64}, {"a": 21}, 1) == [{"a": 21}]
