"""Targets: ratio, per-layer, PFEC's published configurations (exact counts), global goals, and a global
channel fraction (Network Slimming's one threshold for methods that rank globally, the even split otherwise).

PFEC's counts are checked after real surgery with fvcore, and cross-checked with PyTorch's own
FlopCounterMode (2 FLOPs per MAC); the cost models that search global goals are held to fvcore.
"""

import json
import math

import pytest
import torch
from typer.testing import CliRunner

from harness.cli import app
from harness.core.errors import BenchError
from harness.core.layout import ResultsLayout
from harness.methods import PruningContext
from harness.models import create_model
from harness.plans import ChannelPlan, keep_top_weights
from harness.prune.allocation import (
    even_split,
    fixed_configuration,
    maskable_layers,
    resolve_target,
)
from harness.prune.counting import (
    Estimate,
    count,
    count_flop_counter_mode,
    count_sparse,
)
from harness.prune.surgery import apply_masks, prune_channels
from harness.run.pipeline import Workspace
from harness.track.definition import Target

CIFAR = (3, 32, 32)
DIGITS = (1, 8, 8)


def fixed(name: str) -> Target:
    return Target(name=name, kind="fixed", config=name)


def first_channels(keep: dict[str, int]) -> ChannelPlan:
    return ChannelPlan({layer: tuple(range(count)) for layer, count in keep.items()})


def pruned_counts(model_name: str, config: str):
    model = create_model(model_name, 10)
    allocation = resolve_target(fixed(config), "structured", model_name, model, CIFAR)
    prune_channels(model, first_channels(allocation.keep), torch.zeros(1, *CIFAR))
    return model, allocation, count(model, CIFAR)


@pytest.mark.parametrize("model_name, config, params, macs, published_macs", [
    ("cifar-resnet56", "pfec-b", 735_712, 90_907_264, 90.9e6),
    ("cifar-resnet110", "pfec-b", 1_168_424, 155_124_352, 155.1e6),
    ("cifar-vgg16", "pfec-a", 5_397_034, 206_279_680, 206.3e6),
])
def test_pfec_configurations_reproduce_the_published_counts(model_name, config, params, macs, published_macs):
    model, allocation, counts = pruned_counts(model_name, config)
    assert counts.params == params
    assert counts.macs_conv_linear == macs
    assert abs(counts.macs_conv_linear - published_macs) < 0.05e6
    assert allocation.estimate(allocation.keep) == Estimate(counts.params, counts.macs_conv_linear)
    assert 2 * counts.macs_conv_linear == count_flop_counter_mode(model, CIFAR)


@pytest.mark.parametrize("model_name, config, params, macs, published_params, published_macs", [
    ("cifar-resnet56", "pfec-a", 773_336, 112_435_840, 0.77e6, 1.12e8),
    ("cifar-resnet110", "pfec-a", 1_688_522, 212_779_648, 1.68e6, 2.13e8),
])
def test_pfec_a_resnets_match_the_papers_rounded_figures(model_name, config, params, macs, published_params,
                                                         published_macs):
    allocation = resolve_target(fixed(config), "structured", model_name, create_model(model_name, 10), CIFAR)
    estimate = allocation.estimate(allocation.keep)
    assert (estimate.params, estimate.macs) == (params, macs)
    assert abs(estimate.params - published_params) < 0.01e6  # Table 1 truncates to three digits
    assert abs(estimate.macs - published_macs) < 0.01e8


IMAGENET = (3, 224, 224)
# PFEC Table 1 (ImageNet rows): the dense ResNet-34 as PFEC counts it (3.64e9 FLOPs, i.e. MACs, 2.16e7
# parameters), and each configuration's FLOPs, parameters and reductions.
PFEC_RESNET34_DENSE = (3.64e9, 2.16e7)


@pytest.mark.parametrize("config, params, macs, published_macs, published_params, macs_cut, params_cut", [
    ("pfec-a", 20_151_764, 3_100_184_576, 3.08e9, 1.99e7, 0.155, 0.076),
    ("pfec-b", 19_469_372, 2_782_269_440, 2.76e9, 1.93e7, 0.242, 0.108),
])
def test_pfec_resnet34_configurations_reproduce_the_published_counts(config, params, macs, published_macs,
                                                                     published_params, macs_cut, params_cut):
    model = create_model("resnet34", 1000)
    dense = count(model, IMAGENET)
    allocation = resolve_target(fixed(config), "structured", "resnet34", model, IMAGENET)
    prune_channels(model, first_channels(allocation.keep), torch.zeros(1, *IMAGENET))
    counts = count(model, IMAGENET)
    assert (counts.params, counts.macs_conv_linear) == (params, macs)
    assert allocation.estimate(allocation.keep) == Estimate(params, macs)
    # What is removed, as a share of PFEC's own dense counts, rounds to the published reductions; the
    # absolute counts sit within 1% of the published ones (torchvision's ResNet-34 counts 21.8M / 3.66G).
    dense_macs, dense_params = PFEC_RESNET34_DENSE
    assert round((dense.macs_conv_linear - macs) / dense_macs, 3) == macs_cut
    assert round((dense.params - params) / dense_params, 3) == params_cut
    assert abs(macs - published_macs) / published_macs < 0.01
    assert abs(params - published_params) / published_params < 0.015


def test_pfec_resnet34_skips_the_sensitive_blocks_and_keeps_the_last_stage():
    keep = resolve_target(fixed("pfec-b"), "structured", "resnet34", create_model("resnet34", 10), IMAGENET).keep
    assert [keep[f"layer1.{b}.conv1"] for b in range(3)] == [64, 32, 32]
    assert [keep[f"layer2.{b}.conv1"] for b in range(4)] == [128, 51, 51, 128]
    assert [keep[f"layer3.{b}.conv1"] for b in range(6)] == [256, 153, 153, 153, 153, 256]
    assert [keep[f"layer4.{b}.conv1"] for b in range(3)] == [512, 512, 512]


@pytest.mark.parametrize("model_name", ["cifar-resnet56", "cifar-resnet110"])
@pytest.mark.parametrize("config", ["pfec-a", "pfec-b"])
def test_the_official_shortcut_variants_take_the_same_pfec_configurations(model_name, config):
    ours = resolve_target(fixed(config), "structured", model_name, create_model(model_name, 10), CIFAR)
    nptm = f"{model_name}-nptm"
    model = create_model(nptm, 10)
    official = resolve_target(fixed(config), "structured", nptm, model, CIFAR)
    assert official.keep == ours.keep and official.estimate(official.keep) == ours.estimate(ours.keep)
    prune_channels(model, first_channels(official.keep), torch.zeros(1, *CIFAR))
    assert count(model, CIFAR).params == ours.estimate(ours.keep).params
    assert model(torch.zeros(2, *CIFAR)).shape == (2, 10)


def test_pfec_b_on_resnet56_skips_the_sensitive_blocks_and_prunes_each_stage_by_its_ratio():
    model = create_model("cifar-resnet56", 10)
    keep = resolve_target(fixed("pfec-b"), "structured", "cifar-resnet56", model, CIFAR).keep
    skipped = {"layer1.7.conv1", "layer1.8.conv1", "layer2.0.conv1", "layer2.7.conv1", "layer3.0.conv1",
               "layer3.8.conv1"}
    expected = {}
    for stage, (width, kept) in enumerate([(16, 6), (32, 22), (64, 57)], start=1):
        for block in range(9):
            layer = f"layer{stage}.{block}.conv1"
            expected[layer] = width if layer in skipped else kept
    assert keep == expected


def test_fixed_configuration_errors_name_the_fix():
    with pytest.raises(BenchError, match="no fixed configuration 'pfec-b' for model cifar-vgg16; known: pfec-a"):
        fixed_configuration("pfec-b", "cifar-vgg16", {})
    with pytest.raises(BenchError, match="fixed channel configuration; an unstructured method cannot use it"):
        resolve_target(fixed("pfec-a"), "unstructured", "cifar-vgg16", create_model("cifar-vgg16", 10), CIFAR)


def test_ratio_and_per_layer_targets():
    model = create_model("digits-cnn", 10)
    uniform = resolve_target(Target(name="u", ratio=0.5), "structured", "digits-cnn", model, DIGITS)
    assert uniform.keep == {"features.0": 8, "features.4": 16, "features.8": 32}
    assert uniform.goal is None
    layers = Target(name="l", kind="layers", ratios={"features.4": 0.25})
    assert resolve_target(layers, "structured", "digits-cnn", model, DIGITS).keep == {
        "features.0": 16, "features.4": 24, "features.8": 64}
    masked = resolve_target(Target(name="u", ratio=0.5), "unstructured", "digits-cnn", model, DIGITS)
    assert masked.shapes == {"features.0": (16, 1, 3, 3), "features.4": (32, 16, 3, 3), "features.8": (64, 32, 3, 3)}
    assert masked.keep == {"features.0": 72, "features.4": 2304, "features.8": 9216}
    with pytest.raises(BenchError, match="target 'bad': layer 'classifier' is not a prunable layer for structured"):
        resolve_target(Target(name="bad", kind="layers", ratios={"classifier": 0.5}), "structured", "digits-cnn",
                       model, DIGITS)


@pytest.mark.parametrize("metric", ["macs", "params"])
@pytest.mark.parametrize("model_name, shape", [("digits-cnn", DIGITS), ("cifar-resnet56", CIFAR)])
def test_global_goals_are_reached_with_near_uniform_counts(metric, model_name, shape):
    model = create_model(model_name, 10)
    allocation = resolve_target(Target(name="g", kind=metric, reduction=0.4), "structured", model_name, model, shape)
    dense = count(model, shape)
    prune_channels(model, first_channels(allocation.keep), torch.zeros(1, *shape))
    after = count(model, shape)
    before_value, after_value = (dense.macs_conv_linear, after.macs_conv_linear) if metric == "macs" else (
        dense.params, after.params)
    assert 0.4 <= 1 - after_value / before_value <= 0.41
    ratios = [1 - allocation.keep[layer] / size for layer, size in allocation.sizes.items()]
    assert max(ratios) - min(ratios) <= 2 / min(allocation.sizes.values())  # within about one channel


def test_an_unreachable_goal_is_a_one_line_error():
    target = Target(name="huge", kind="params", reduction=0.999, tolerance=0.0001)
    with pytest.raises(BenchError, match=r"target 'huge': the plan removes .* of params, outside 99\.90% \+/- 0\.01%"):
        resolve_target(target, "structured", "digits-cnn", create_model("digits-cnn", 10), DIGITS)


def test_global_ranking_of_channels_removes_the_lowest_scores_first_and_stops_at_the_goal():
    model = create_model("digits-cnn", 10)
    allocation = resolve_target(Target(name="g", kind="params", reduction=0.2), "structured", "digits-cnn", model,
                                DIGITS)
    scores = {"features.0": torch.full((16,), 100.0), "features.4": torch.full((32,), 100.0),
              "features.8": torch.arange(64.0)}
    keep = allocation.rank_globally(scores)
    assert keep["features.0"] == 16 and keep["features.4"] == 32
    assert allocation.miss(keep) is None
    assert allocation.miss({**keep, "features.8": keep["features.8"] + 8}) is not None


def test_global_ranking_of_weights_is_one_threshold_across_layers():
    model = create_model("digits-cnn", 10)
    allocation = resolve_target(Target(name="g", kind="params", reduction=0.5), "unstructured", "digits-cnn", model,
                                DIGITS)
    modules = dict(model.named_modules())
    scores = {layer: modules[layer].weight.detach().abs() for layer in maskable_layers(model)}
    plan = keep_top_weights(scores, allocation.rank_globally(scores))
    kept = torch.cat([scores[layer][plan.masks[layer]] for layer in scores])
    removed = torch.cat([scores[layer][~plan.masks[layer]] for layer in scores])
    assert removed.max() <= kept.min()
    assert len(removed) == math.ceil(0.5 * allocation.costs.dense.params)


def test_a_ratio_target_lets_global_magnitude_spread_the_uniform_total_across_layers():
    model = create_model("digits-cnn", 10)
    allocation = resolve_target(Target(name="r", kind="ratio", ratio=0.5), "unstructured", "digits-cnn", model, DIGITS)
    modules = dict(model.named_modules())
    scores = {layer: modules[layer].weight.detach().abs() for layer in maskable_layers(model)}
    pooled = allocation.rank_globally(scores)
    assert allocation.redistributes and allocation.miss(pooled) is None
    assert sum(pooled.values()) == sum(allocation.keep.values()) and pooled != dict(allocation.keep)
    plan = keep_top_weights(scores, pooled)
    above_threshold = torch.cat([scores[layer][plan.masks[layer]].sort().values[:-1] for layer in scores])
    removed = torch.cat([scores[layer][~plan.masks[layer]] for layer in scores])
    assert removed.max() <= above_threshold.min()  # every layer's strongest weight stays regardless
    channels = resolve_target(Target(name="r", kind="ratio", ratio=0.5), "structured", "digits-cnn", model, DIGITS)
    assert not channels.redistributes


def test_theoretical_macs_of_masks_match_the_weight_cost_model_and_fvcore_per_layer():
    model = create_model("cifar-resnet20", 10)
    allocation = resolve_target(Target(name="u", ratio=0.7), "unstructured", "cifar-resnet20", model, CIFAR)
    modules = dict(model.named_modules())
    plan = keep_top_weights({layer: modules[layer].weight.abs() for layer in allocation.shapes}, allocation.keep)
    apply_masks(model, plan, torch.zeros(1, *CIFAR))
    sparse = count_sparse(model, plan.masks, CIFAR)
    estimate = allocation.estimate(allocation.keep)
    assert sparse.theoretical_macs_conv_linear == estimate.macs
    assert sparse.sparsity == pytest.approx(plan.sparsity())
    assert count(model, CIFAR).macs_conv_linear == allocation.costs.dense.macs


def test_a_ratio_target_dumps_exactly_as_before_so_run_hashes_stay():
    assert Target(name="uniform-50", kind="ratio", ratio=0.5).model_dump(mode="json") == {
        "name": "uniform-50", "kind": "ratio", "ratio": 0.5}
    assert Target(name="m", kind="macs", reduction=0.5).model_dump(mode="json") == {
        "name": "m", "kind": "macs", "reduction": 0.5}
    assert Target(name="channels-50", kind="channels", fraction=0.5).model_dump(mode="json") == {
        "name": "channels-50", "kind": "channels", "fraction": 0.5}


DIGITS_ALLOCATIONS = {
    ("uniform-50", "structured"): {"features.0": 8, "features.4": 16, "features.8": 32},
    ("uniform-75", "structured"): {"features.0": 4, "features.4": 8, "features.8": 16},
    ("macs-50", "structured"): {"features.0": 11, "features.4": 22, "features.8": 46},
    ("params-50", "structured"): {"features.0": 11, "features.4": 22, "features.8": 46},
    ("uniform-50", "unstructured"): {"features.0": 72, "features.4": 2304, "features.8": 9216},
    ("uniform-75", "unstructured"): {"features.0": 36, "features.4": 1152, "features.8": 4608},
    ("macs-50", "unstructured"): {"features.0": 71, "features.4": 2296, "features.8": 9184},
    ("params-50", "unstructured"): {"features.0": 69, "features.4": 2217, "features.8": 8869},
}
"""The digits track's targets before the channel fraction existed, as that code resolved them."""


@pytest.mark.parametrize("target, kind", list(DIGITS_ALLOCATIONS))
def test_the_digits_tracks_earlier_targets_resolve_as_they_always_did(digits_track, target, kind):
    allocation = resolve_target(digits_track.target(target), kind, "digits-cnn", create_model("digits-cnn", 10),
                                DIGITS)
    assert dict(allocation.keep) == DIGITS_ALLOCATIONS[(target, kind)]
    assert allocation.redistributes == (kind == "unstructured" or allocation.goal is not None)


@pytest.fixture(scope="module")
def trained_digits(digits_track, trained_results):
    """The digits workspace and its trained dense model (seed 0), whose |gamma| differ across layers."""
    workspace = Workspace(digits_track, ResultsLayout(trained_results))
    return workspace, workspace.dense_model(0)


CHANNELS_IN_ALL = 16 + 32 + 64


@pytest.mark.parametrize("method", ["bn-scale", "taylor", "taylor-weight"])
def test_a_channel_fraction_lets_globally_ranking_methods_choose_each_layers_share(trained_digits, method):
    workspace, model = trained_digits
    allocation = workspace.allocation("channels-50", "structured", model)
    plan = workspace.make_plan(method, "channels-50", 0, model)
    counts = plan.counts()
    assert CHANNELS_IN_ALL - sum(counts.values()) == CHANNELS_IN_ALL // 2
    assert counts != dict(allocation.keep) and min(counts.values()) >= 1
    assert workspace.make_plan(method, "channels-50", 0, model, twin=True).counts() == counts


def test_bn_scale_under_a_channel_fraction_is_one_gamma_threshold_across_layers(trained_digits):
    workspace, model = trained_digits
    plan = workspace.make_plan("bn-scale", "channels-50", 0, model)
    allocation = workspace.allocation("channels-50", "structured", model)
    batchnorms = PruningContext(model=model, sizes=allocation.sizes, keep=dict(allocation.keep),
                                generator=torch.Generator(), example_input=workspace.example_input()).batchnorms()
    gammas = {layer: batchnorms[layer].weight.detach().abs() for layer in plan.kept}
    kept = {layer: torch.zeros(len(gamma), dtype=torch.bool).index_fill_(0, torch.tensor(plan.kept[layer]), True)
            for layer, gamma in gammas.items()}
    removed = torch.cat([gammas[layer][~kept[layer]] for layer in gammas])
    above_threshold = torch.cat([gammas[layer][kept[layer]].sort().values[:-1] for layer in gammas])
    assert len(removed) == CHANNELS_IN_ALL // 2
    assert removed.max() <= above_threshold.min()  # each layer's largest |gamma| stays regardless


@pytest.mark.parametrize("method", ["l1-norm", "random"])
def test_a_layerwise_method_under_a_channel_fraction_gets_the_even_split_of_the_same_total(trained_digits, method):
    workspace, model = trained_digits
    plan = workspace.make_plan(method, "channels-50", 0, model)
    assert plan.counts() == {"features.0": 8, "features.4": 16, "features.8": 32}
    assert sum(plan.counts().values()) == sum(workspace.make_plan("bn-scale", "channels-50", 0, model).counts().values())
    assert workspace.make_plan(method, "channels-50", 0, model, twin=True).counts() == plan.counts()


def test_a_channel_fraction_for_unstructured_methods_is_that_share_of_all_conv_weights(trained_digits):
    workspace, model = trained_digits
    conv_weights = 16 * 9 + 32 * 16 * 9 + 64 * 32 * 9
    for method in ("magnitude-global", "magnitude-layerwise"):
        kept = sum(workspace.make_plan(method, "channels-50", 0, model).counts().values())
        assert conv_weights - kept == conv_weights // 2
    assert dict(workspace.allocation("channels-50", "unstructured", model).keep) == DIGITS_ALLOCATIONS[
        ("uniform-50", "unstructured")]


@pytest.mark.parametrize("sizes, fraction, keep", [
    ({"a": 16, "b": 32, "c": 64}, 0.5, {"a": 8, "b": 16, "c": 32}),
    ({"a": 16, "b": 32, "c": 64}, 0.29, {"a": 11, "b": 23, "c": 46}),  # 32 of 112 go: floor(32.48)
    ({"a": 16, "b": 32, "c": 64}, 0.3, {"a": 11, "b": 23, "c": 45}),  # 33 go: 4.8 and 19.2 floored, the rest to a
    ({"a": 1, "b": 3, "c": 7}, 0.6, {"a": 1, "b": 1, "c": 3}),  # a's only channel stays; b is next furthest below
])
def test_the_even_split_removes_the_floored_total_closest_to_each_layers_share(sizes, fraction, keep):
    assert even_split(sizes, fraction, "t", "channels") == keep


def test_a_channel_fraction_that_would_empty_a_layer_is_a_one_line_error():
    with pytest.raises(BenchError, match=r"^target 'most': removing a fraction 0\.99 of the 112 channels would empty "
                                         r"a layer \(at most 109 can go, one staying per layer\); lower its fraction$"):
        resolve_target(Target(name="most", kind="channels", fraction=0.99), "structured", "digits-cnn",
                       create_model("digits-cnn", 10), DIGITS)


@pytest.mark.parametrize("fields, message", [
    (dict(kind="macs"), "a target of kind 'macs' needs 'reduction'"),
    (dict(ratio=0.5, config="pfec-a"), "a target of kind 'ratio' takes no 'config'"),
    (dict(kind="layers", ratios={"a": 1.0}), r"ratio of layer 'a' must be in \[0, 1\)"),
    (dict(kind="fixed"), "a target of kind 'fixed' needs 'config'"),
    (dict(kind="channels"), "a target of kind 'channels' needs 'fraction'"),
    (dict(kind="channels", fraction=1.0), r"fraction must be in \(0, 1\)"),
    (dict(kind="channels", fraction=0), r"fraction must be in \(0, 1\)"),
    (dict(kind="channels", fraction=0.5, ratio=0.5), "a target of kind 'channels' takes no 'ratio'"),
    (dict(ratio=0.5, fraction=0.5), "a target of kind 'ratio' takes no 'fraction'"),
])
def test_malformed_targets_are_rejected(fields, message):
    with pytest.raises(ValueError, match=message):
        Target(name="t", **fields)


def test_bench_flops_prints_dense_and_pruned_counts_for_a_fixed_plan():
    result = CliRunner().invoke(app, ["flops", "--track", "cifar10-resnet56", "--plan", "pfec-b", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["dense"]["params"] == 853_018 and payload["dense"]["macs"] == 125_485_696
    assert payload["pruned"]["params"] == 735_712 and payload["pruned"]["macs"] == 90_907_264


def test_bench_flops_reports_theoretical_macs_for_masks_and_rejects_mixed_options(digits_results):
    runner = CliRunner()
    result = runner.invoke(app, ["flops", "--method", "magnitude-layerwise", "--target", "uniform-50", "--json",
                                 "--results", str(digits_results)])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["pruned"]["params"] == payload["dense"]["params"]
    assert payload["pruned"]["macs"] == payload["dense"]["macs"]
    classifier_macs = 64 * 10  # linear layers stay dense
    assert payload["pruned"]["theoretical_macs"] == (payload["dense"]["macs"] - classifier_macs) // 2 + classifier_macs
    assert payload["pruned"]["sparsity"] == pytest.approx(0.5, abs=1e-3)
    mixed = runner.invoke(app, ["flops", "--plan", "pfec-a", "--method", "l1-norm", "--target", "uniform-50"])
    assert mixed.exit_code == 2
    assert "give either --plan NAME or --method M --target X, not both" in mixed.output
