"""Pruned checkpoints reload into models with the pruned shapes, the same weights and the same outputs."""

import pytest
import torch

from harness.core.errors import BenchError
from harness.models import create_model, prunable_layers
from harness.plans import ChannelPlan, keep_top, keep_top_weights
from harness.prune.allocation import fixed_configuration
from harness.prune.persist import load_pruned, save_pruned
from harness.prune.surgery import apply_masks, prune_channels

CIFAR = (3, 32, 32)


def same_outputs(first, second, shape):
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return torch.equal(first.eval()(x), second.eval()(x))


def test_a_channel_pruned_resnet56_round_trips_with_its_pruned_shapes(tmp_path):
    model = create_model("cifar-resnet56", 10)
    modules = dict(model.named_modules())
    sizes = {layer: modules[layer].out_channels for layer in prunable_layers("cifar-resnet56", model)}
    scores = {layer: modules[layer].weight.detach().abs().flatten(1).sum(1) for layer in sizes}
    plan = keep_top(scores, fixed_configuration("pfec-b", "cifar-resnet56", sizes))
    prune_channels(model, plan, torch.zeros(1, *CIFAR))
    path = save_pruned(tmp_path / "pruned.pt", model, plan, model_name="cifar-resnet56", num_classes=10,
                       input_shape=CIFAR)
    loaded = load_pruned(path)
    assert loaded.plan == plan
    assert (loaded.model_name, loaded.num_classes, loaded.input_shape) == ("cifar-resnet56", 10, CIFAR)
    assert sum(p.numel() for p in loaded.model.parameters()) == 735_712
    assert {k: v.shape for k, v in loaded.model.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()}
    assert same_outputs(model, loaded.model, CIFAR)


def test_a_masked_model_round_trips_with_its_masks_and_zeros(tmp_path):
    model = create_model("digits-cnn", 10)
    modules = dict(model.named_modules())
    layers = ["features.4", "classifier"]
    plan = keep_top_weights({layer: modules[layer].weight.abs() for layer in layers},
                            {"features.4": 1000, "classifier": 100})
    apply_masks(model, plan, torch.zeros(1, 1, 8, 8))
    loaded = load_pruned(save_pruned(tmp_path / "masked.pt", model, plan, model_name="digits-cnn", num_classes=10,
                                     input_shape=(1, 8, 8)))
    assert loaded.plan == plan
    assert int((loaded.model.features[4].weight == 0).sum()) == 32 * 16 * 9 - 1000
    assert same_outputs(model, loaded.model, (1, 8, 8))


def test_a_file_that_is_not_a_pruned_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(create_model("digits-cnn", 10).state_dict(), path)
    with pytest.raises(BenchError, match="is not a prune-bench pruned checkpoint"):
        load_pruned(path)
    with pytest.raises(BenchError, match="cannot read pruned checkpoint"):
        load_pruned(tmp_path / "missing.pt")


def test_weights_that_do_not_fit_the_plan_are_refused(tmp_path):
    model = create_model("digits-cnn", 10)
    plan = ChannelPlan({"features.0": tuple(range(8))})
    prune_channels(model, plan, torch.zeros(1, 1, 8, 8))
    wider = ChannelPlan({"features.0": tuple(range(12))})
    path = save_pruned(tmp_path / "bad.pt", model, wider, model_name="digits-cnn", num_classes=10,
                       input_shape=(1, 8, 8))
    with pytest.raises(BenchError, match="weights do not fit the rebuilt model"):
        load_pruned(path)
