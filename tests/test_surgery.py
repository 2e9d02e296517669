"""Surgery and masking: shapes stay consistent through residual blocks, function is preserved
exactly for the kept channels, coupled layers are refused, and masks survive retraining."""

import copy

import pytest
import torch

from harness.core.errors import BenchError
from harness.data.splits import TensorSplit
from harness.models import create_model, prunable_layers
from harness.plans import ChannelPlan, MaskPlan
from harness.prune.surgery import apply_masks, channel_dependents, prune_channels
from harness.track.recipe import Recipe
from harness.track.schedules import StepValues
from harness.train.loop import train

CIFAR = (3, 32, 32)


def every_other_channel(model, layers):
    modules = dict(model.named_modules())
    return ChannelPlan({layer: tuple(range(0, modules[layer].out_channels, 2)) for layer in layers})


def randomise_batch_norms(model, seed=0):
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            size = module.num_features
            module.weight.data = torch.rand(size, generator=generator) + 0.5
            module.bias.data = torch.randn(size, generator=generator) * 0.1
            module.running_mean = torch.randn(size, generator=generator) * 0.1
            module.running_var = torch.rand(size, generator=generator) + 0.5


def test_resnet56_block_surgery_keeps_every_residual_add_consistent():
    model = create_model("cifar-resnet56", 10)
    layers = prunable_layers("cifar-resnet56", model)
    prune_channels(model, every_other_channel(model, layers), torch.zeros(1, *CIFAR))
    for name, block in model.named_modules():
        if name.count(".") == 1 and name.startswith("layer"):
            width = {"layer1": 16, "layer2": 32, "layer3": 64}[name.split(".")[0]]
            assert block.conv1.out_channels == block.bn1.num_features == block.conv2.in_channels == width // 2
            assert block.conv2.out_channels == block.bn2.num_features == width  # the residual path is untouched
    assert model(torch.zeros(2, *CIFAR)).shape == (2, 10)


def test_removing_channels_equals_silencing_them_in_the_dense_model():
    """In eval mode a removed block-internal channel contributes exactly what a channel whose BN outputs 0 does."""
    dense = create_model("cifar-resnet20", 10)
    randomise_batch_norms(dense)
    dense.eval()
    layers = prunable_layers("cifar-resnet20", dense)
    plan = every_other_channel(dense, layers)
    pruned = prune_channels(copy.deepcopy(dense), plan, torch.zeros(1, *CIFAR)).eval()
    silenced = copy.deepcopy(dense)
    modules = dict(silenced.named_modules())
    for layer, kept in plan.kept.items():
        bn = modules[layer.replace("conv1", "bn1")]
        removed = sorted(set(range(bn.num_features)) - set(kept))
        bn.weight.data[removed] = 0
        bn.bias.data[removed] = 0
    x = torch.randn(2, *CIFAR, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(pruned(x), silenced(x), atol=1e-5)
        assert not torch.allclose(pruned(x), dense(x), atol=1e-3)


def test_torchvision_resnet_block_internal_surgery_and_coupled_layers_are_refused():
    model = create_model("resnet18", 10)
    layers = prunable_layers("resnet18", model)
    prune_channels(model, every_other_channel(model, layers), torch.zeros(1, 3, 64, 64))
    assert model.layer1[0].conv1.out_channels == model.layer1[0].conv2.in_channels == 32
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 10)
    coupled = create_model("resnet18", 10)
    plan = ChannelPlan({"layer1.0.conv2": tuple(range(32)), "layer1.1.conv2": tuple(range(32))})
    with pytest.raises(BenchError, match="layer 'layer1.0.conv2' shares its channels with 'layer1.1.conv2'"):
        prune_channels(coupled, plan, torch.zeros(1, 3, 64, 64))


def test_channel_dependents_follow_a_conv_into_its_batch_norm_and_the_next_layer():
    model = create_model("cifar-vgg16", 10)
    found = channel_dependents(model, ["features.0", "features.40"], torch.zeros(1, *CIFAR))
    assert {(d.module, d.axis, d.per_channel) for d in found["features.0"]} == {
        ("features.0", "out", 1), ("features.1", "out", 1), ("features.3", "in", 1)}
    assert ("classifier.0", "in", 1) in {(d.module, d.axis, d.per_channel) for d in found["features.40"]}


def test_masks_zero_weights_and_a_wrong_shape_is_refused():
    model = create_model("digits-cnn", 10)
    mask = torch.ones(10, 64, dtype=torch.bool)
    mask[:, :32] = False
    placed = apply_masks(model, MaskPlan({"classifier": mask}), torch.zeros(1, 1, 8, 8))
    assert int((model.classifier.weight == 0).sum()) == 320
    assert placed["classifier"].dtype == model.classifier.weight.dtype
    with pytest.raises(BenchError, match=r"mask of 'classifier' has shape \(64, 10\)"):
        apply_masks(model, MaskPlan({"classifier": mask.T}), torch.zeros(1, 1, 8, 8))


def test_masked_weights_stay_zero_through_retraining():
    torch.manual_seed(0)
    model = create_model("digits-cnn", 10)
    generator = torch.Generator().manual_seed(0)
    mask = torch.rand(model.features[4].weight.shape, generator=generator) > 0.7
    masks = apply_masks(model, MaskPlan({"features.4": mask}), torch.zeros(1, 1, 8, 8))
    split = TensorSplit(torch.randn(64, 1, 8, 8, generator=generator), torch.randint(0, 10, (64,), generator=generator))
    recipe = Recipe(lr=0.1, momentum=0.9, weight_decay=1e-4, batch_size=16, epochs=2, milestones=[1])
    before = model.features[4].weight.detach().clone()
    result = train(model, split, split, recipe, StepValues(lr=(0.1,) * 8, momentum=None, steps_per_epoch=4), generator,
                   masks=[(model.features[4].weight, masks["features.4"])])
    assert result.status == "ok" and result.steps == 8
    weight = model.features[4].weight.detach()
    assert torch.all(weight[~mask] == 0)
    assert not torch.equal(weight[mask], before[mask])
