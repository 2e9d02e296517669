"""The method zoo: every registered method on the digits CNN, ResNet-56 and VGG-16 (forward works, counts
fall, the twin keeps the counts) and through the harness at each kind of target it supports (a validated
plan, a twin with the same per-layer counts, the same plan for the same seed) -- a newly registered method
is tested by all of these without naming it; then each criterion on a case small enough to rank by hand
(Taylor's, against a hand computation, in test_method_fidelity.py), and whole runs."""

import copy
import itertools
import json

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from harness.cli import app
from harness.core.errors import BenchError
from harness.core.layout import ResultsLayout
from harness.grid.selection import expand, select
from harness.methods import PruningContext, get_method, list_methods, registry
from harness.models import create_model
from harness.plans import ChannelPlan, MaskPlan
from harness.prune.allocation import resolve_target
from harness.prune.counting import count_sparse
from harness.prune.surgery import apply_masks, prune_channels
from harness.prune.twins import random_twin
from harness.prune.validation import validate_plan
from harness.run.execution import execute
from harness.run.pipeline import Workspace
from harness.track.definition import Target

CIFAR = (3, 32, 32)
MODELS = {"digits-cnn": (1, 8, 8), "cifar-resnet56": CIFAR, "cifar-vgg16": CIFAR}
STRUCTURED = ["l1-norm", "l2-norm", "random", "fpgm", "taylor", "taylor-weight", "bn-scale", "hrank"]
UNSTRUCTURED = ["magnitude-global", "magnitude-layerwise", "random-unstructured"]
REGISTERED = [method.name for method in list_methods()]
"""Every method registered when the tests are collected: the built-ins and any plugin imported by then."""
TARGET_KINDS = ("ratio", "macs", "params", "channels")
"""The kinds of target the digits track holds (the first target of each kind is used)."""


def synthetic_batches(shape, batches=2, size=2, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, *shape, generator=generator), torch.randint(0, 10, (size,), generator=generator))
            for _ in range(batches)]


def context(model, sizes, keep, method, shape, batches=(), allocate=None, seed=0):
    return PruningContext(
        model=copy.deepcopy(model).eval(), sizes=sizes, keep=keep, generator=torch.Generator().manual_seed(seed),
        max_batches=len(batches) if method.needs_data else 0,
        batch_source=(lambda: iter(batches)) if method.needs_data else None,
        kind=method.kind, example_input=torch.zeros(1, *shape), allocate=allocate,
    )


@pytest.fixture(scope="module")
def zoo():
    """Each model once, with its half-ratio allocation for both kinds of method."""
    built = {}
    for name, shape in MODELS.items():
        torch.manual_seed(0)
        model = create_model(name, 10).eval()
        built[name] = (model, {kind: resolve_target(Target(name="half", ratio=0.5), kind, name, model, shape)
                               for kind in ("structured", "unstructured")})
    return built


def test_every_method_is_registered_with_its_kind_data_needs_and_citation():
    methods = {m.name: m for m in list_methods()}
    assert set(STRUCTURED + UNSTRUCTURED) <= set(methods)
    assert {name for name in STRUCTURED if methods[name].kind == "structured"} == set(STRUCTURED)
    assert {name for name in UNSTRUCTURED if methods[name].kind == "unstructured"} == set(UNSTRUCTURED)
    assert {name for name in STRUCTURED + UNSTRUCTURED if methods[name].needs_data} == {
        "taylor", "taylor-weight", "hrank"}
    assert {name for name in STRUCTURED + UNSTRUCTURED if methods[name].global_ranking} == {
        "taylor", "taylor-weight", "bn-scale", "magnitude-global"}
    assert all(methods[name].citation for name in STRUCTURED + UNSTRUCTURED)


def test_bench_methods_json_lists_name_kind_data_and_citation():
    result = CliRunner().invoke(app, ["methods", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["hrank"] == {"name": "hrank", "kind": "structured", "needs_data": True, "global_ranking": False,
                             "pre_pruning_fraction": None, "rounds": 1, "citation": get_method("hrank").citation}
    assert rows["network-slimming"]["pre_pruning_fraction"] == 0.5
    assert rows["magnitude-global"]["kind"] == "unstructured"


@pytest.mark.parametrize("model_name, method_name", list(itertools.product(MODELS, REGISTERED)))
def test_every_method_prunes_every_model(zoo, model_name, method_name):
    shape = MODELS[model_name]
    method = get_method(method_name)
    model, allocations = zoo[model_name]
    allocation = allocations[method.kind]
    ctx = context(model, allocation.sizes, dict(allocation.keep), method, shape, synthetic_batches(shape))
    plan = validate_plan(method.name, method.select(ctx), allocation.shapes, allocation.keep, kind=method.kind)
    twin = random_twin(plan, allocation.sizes, torch.Generator().manual_seed(1))
    assert twin.counts() == plan.counts() == dict(allocation.keep)
    assert twin != plan
    pruned = copy.deepcopy(model)
    if isinstance(plan, MaskPlan):
        apply_masks(pruned, plan, torch.zeros(1, *shape))
        sparse = count_sparse(pruned, plan.masks, shape)
        assert sparse.sparsity == pytest.approx(0.5, abs=0.01)
        assert sparse.theoretical_macs_conv_linear < allocation.costs.dense.macs
        assert sparse.nonzero_params < allocation.costs.dense.params
    else:
        prune_channels(pruned, plan, torch.zeros(1, *shape))
        after = allocation.estimate(plan.counts())
        assert sum(p.numel() for p in pruned.parameters()) == after.params < allocation.costs.dense.params
        assert after.macs < allocation.costs.dense.macs
    with torch.no_grad():
        output = pruned(torch.randn(2, *shape, generator=torch.Generator().manual_seed(2)))
    assert output.shape == (2, 10) and torch.isfinite(output).all()


@pytest.fixture(scope="module")
def digits_workspace(digits_track, trained_results):
    return Workspace(digits_track, ResultsLayout(trained_results))


@pytest.mark.parametrize("method_name, target_kind", list(itertools.product(REGISTERED, TARGET_KINDS)))
def test_every_registered_method_plans_through_the_harness_at_each_target_kind(digits_workspace, method_name,
                                                                                target_kind):
    workspace = digits_workspace
    method = get_method(method_name)
    target = next(t for t in workspace.track.pruning.targets if t.kind == target_kind)
    model = workspace.dense_model(0)
    try:
        allocation = workspace.allocation(target.name, method.kind, model)
    except BenchError as exc:
        pytest.skip(f"a {method.kind} method cannot be held to target '{target.name}': {exc}")
    plan = workspace.make_plan(method_name, target.name, 0, model)  # validated by the harness, or it raises
    assert isinstance(plan, MaskPlan) == (method.kind == "unstructured")
    if method.global_ranking and allocation.redistributes:
        assert allocation.miss(plan.counts()) is None
    else:
        assert plan.counts() == dict(allocation.keep)
    twin = workspace.make_plan(method_name, target.name, 0, model, twin=True)
    assert twin.counts() == plan.counts() and twin != plan
    assert workspace.make_plan(method_name, target.name, 0, model) == plan
    assert workspace.make_plan(method_name, target.name, 0, model, twin=True) == twin


def one_layer_model(weights: torch.Tensor) -> nn.Module:
    conv = nn.Conv2d(weights.shape[1], weights.shape[0], weights.shape[2], bias=False)
    conv.weight.data = weights.clone()
    return nn.Sequential(conv, nn.BatchNorm2d(weights.shape[0]), nn.ReLU(), nn.Flatten()).eval()


def run_on(model, method_name, keep, shape, batches=()):
    method = get_method(method_name)
    return method.select(context(model, {"0": model[0].out_channels}, {"0": keep}, method, shape, batches))


def test_l1_and_l2_norms_rank_the_same_filters_differently():
    filters = torch.tensor([[3.0, 0, 0, 0], [1, 1, 1, 1], [0.1, 0.1, 0.1, 0.1]]).reshape(3, 1, 2, 2)
    model = one_layer_model(filters)
    assert run_on(model, "l1-norm", 1, (1, 2, 2)).kept == {"0": (1,)}  # L1: 3 < 4
    assert run_on(model, "l2-norm", 1, (1, 2, 2)).kept == {"0": (0,)}  # L2: 3 > 2


def test_fpgm_prunes_the_filter_nearest_the_geometric_median():
    filters = torch.tensor([[0.0], [1.0], [10.0]]).reshape(3, 1, 1, 1)  # distance sums 11, 10, 19
    assert run_on(one_layer_model(filters), "fpgm", 2, (1, 1, 1)).kept == {"0": (0, 2)}


def test_bn_scale_keeps_the_largest_gamma_magnitudes():
    model = one_layer_model(torch.ones(4, 1, 1, 1))
    model[1].weight.data = torch.tensor([0.1, -2.0, 1.0, 0.5])
    assert run_on(model, "bn-scale", 2, (1, 1, 1)).kept == {"0": (1, 2)}


def test_hrank_prunes_the_channel_whose_feature_maps_have_low_rank():
    weights = torch.tensor([0.0, 1.0, 0.5]).reshape(3, 1, 1, 1)
    model = one_layer_model(weights)
    model[1].bias.data = torch.tensor([0.0, 0.0, 0.0])
    positive = [(torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(0)) + 0.1, torch.zeros(2).long())]
    assert run_on(model, "hrank", 2, (1, 4, 4), positive).kept == {"0": (1, 2)}  # channel 0 is all zeros: rank 0


def test_random_methods_are_seeded_by_the_run(zoo):
    model, allocations = zoo["digits-cnn"]
    for name in ("random", "random-unstructured"):
        method = get_method(name)
        allocation = allocations[method.kind]

        def plan(seed):
            return method.select(context(model, allocation.sizes, dict(allocation.keep), method, (1, 8, 8), seed=seed))

        first, again, other = plan(0), plan(0), plan(1)
        key = "kept" if name == "random" else "masks"
        assert str(getattr(first, key)) == str(getattr(again, key)) != str(getattr(other, key))


def test_layerwise_magnitude_keeps_the_largest_weights_of_each_layer(zoo):
    model, allocations = zoo["digits-cnn"]
    allocation = allocations["unstructured"]
    method = get_method("magnitude-layerwise")
    plan = method.select(context(model, allocation.sizes, dict(allocation.keep), method, (1, 8, 8)))
    modules = dict(model.named_modules())
    for layer, mask in plan.masks.items():
        magnitude = modules[layer].weight.detach().abs()
        assert magnitude[~mask].max() <= magnitude[mask].min()
        assert int(mask.sum()) == allocation.keep[layer]


@pytest.mark.parametrize("method_name, units", [("taylor", "structured"), ("taylor-weight", "structured"),
                                                ("bn-scale", "structured"), ("magnitude-global", "unstructured")])
def test_globally_ranking_methods_choose_their_own_counts_under_a_global_target(zoo, method_name, units):
    model, _ = zoo["digits-cnn"]
    model = copy.deepcopy(model)
    for module in model.modules():  # distinct gammas, so the ranking is not a tie
        if isinstance(module, nn.BatchNorm2d):
            module.weight.data = torch.rand(module.num_features, generator=torch.Generator().manual_seed(3))
    allocation = resolve_target(Target(name="m", kind="macs", reduction=0.5), units, "digits-cnn", model, (1, 8, 8))
    method = get_method(method_name)
    ctx = context(model, allocation.sizes, dict(allocation.keep), method, (1, 8, 8),
                  synthetic_batches((1, 8, 8)), allocate=allocation.rank_globally)
    plan = validate_plan(method.name, method.select(ctx), allocation.shapes, None, goal_miss=allocation.miss,
                         kind=method.kind)
    assert plan.counts() != dict(allocation.keep)
    assert allocation.miss(plan.counts()) is None
    assert random_twin(plan, allocation.sizes, torch.Generator().manual_seed(0)).counts() == plan.counts()


def test_a_method_reads_at_most_its_bounded_number_of_training_batches():
    served = []

    def endless():
        for index in itertools.count():
            served.append(index)
            yield torch.zeros(1, 1, 8, 8), torch.zeros(1).long()

    ctx = PruningContext(model=nn.Identity(), sizes={}, keep={}, generator=torch.Generator(), max_batches=3,
                         batch_source=endless)
    assert len(list(ctx.train_batches())) == 3 and len(served) <= 4
    with pytest.raises(BenchError, match="registered without needs_data=True"):
        next(PruningContext(model=nn.Identity(), sizes={}, keep={}, generator=torch.Generator()).train_batches())


def runs(track, **choices):
    options = dict(schedules=["ft"], budgets=[1], seeds=[0], twins=False)
    return expand(track, select(track, **{**options, **choices}))


def test_an_unstructured_run_records_sparsity_and_theoretical_macs(digits_track, trained_results):
    workspace = Workspace(digits_track, ResultsLayout(trained_results))
    config = runs(digits_track, methods=["magnitude-layerwise"], targets=["uniform-75"])[0]
    record = execute(workspace, config)
    assert record.status == "ok"
    assert record.sparsity == pytest.approx(0.75, abs=1e-3)
    assert record.params_after == record.params_before and record.macs_after == record.macs_before
    classifier_macs = 64 * 10  # linear layers stay dense
    assert record.theoretical_macs_after == pytest.approx(0.25 * (record.macs_before - classifier_macs) + classifier_macs,
                                                          rel=1e-3)
    assert record.nonzero_params_after < 0.3 * record.params_before
    assert record.kept == {"features.0": 36, "features.4": 1152, "features.8": 4608}


def test_a_globally_ranking_run_meets_the_macs_goal_and_its_twin_keeps_its_counts(digits_track, trained_results):
    workspace = Workspace(digits_track, ResultsLayout(trained_results))
    plain, twin = runs(digits_track, methods=["taylor"], targets=["macs-50"], schedules=["none"], twins=True)
    records = execute(workspace, plain), execute(workspace, twin)
    assert all(r.status == "ok" for r in records)
    assert records[0].kept == records[1].kept
    assert abs(1 - records[0].macs_after / records[0].macs_before - 0.5) <= 0.01
    assert records[0].sparsity is None and records[0].nonzero_params_after is not None


def test_an_invalid_plan_fails_the_run_before_any_retraining(digits_track, trained_results, monkeypatch):
    def keeps_too_much(ctx):
        return ChannelPlan({layer: tuple(range(size)) for layer, size in ctx.sizes.items()})

    monkeypatch.setitem(registry._METHODS, "keeps-everything",
                        registry.Method("keeps-everything", "structured", False, "test", keeps_too_much))
    config = runs(digits_track, methods=["keeps-everything"], targets=["uniform-50"])[0]
    record = execute(Workspace(digits_track, ResultsLayout(trained_results)), config)
    assert record.status == "failed"
    assert record.error == ("method 'keeps-everything', layer 'features.0': keeps 16 channels "
                            "but the target asks for 8")
    assert record.retrain_steps is None and record.test_acc is None
    assert sum(p.numel() for p in create_model("digits-cnn", 10).parameters()) == record.params_before
