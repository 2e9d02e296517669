import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize, prune

from harness.core.errors import BenchError
from harness.models import create_model
from harness.models.vgg import POOL, CifarVGG
from harness.prune.counting import Counts, count, count_flop_counter_mode

CIFAR_SHAPE = (3, 32, 32)
SHIPPED_SMALL_MODELS = {
    "cifar-resnet20": CIFAR_SHAPE,
    "cifar-resnet32": CIFAR_SHAPE,
    "cifar-resnet56": CIFAR_SHAPE,
    "cifar-resnet110": CIFAR_SHAPE,
    "cifar-vgg16": CIFAR_SHAPE,
    "digits-cnn": (1, 8, 8),
}
PFEC_VGG16_A_CFG = (32, 64, POOL, 128, 128, POOL, 256, 256, 256, POOL, 256, 256, 256, POOL, 256, 256, 256)


def test_single_conv_and_linear_are_counted_by_hand():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Flatten(), nn.Linear(8 * 5 * 5, 4))
    assert count(model, (3, 5, 5)) == Counts(
        params=3 * 8 * 9 + 8 + 200 * 4 + 4,
        macs=3 * 8 * 9 * 25 + 200 * 4,
        macs_conv_linear=3 * 8 * 9 * 25 + 200 * 4,
        nonzero_params=3 * 8 * 9 + 8 + 200 * 4 + 4,
    )


def test_resnet56_matches_pfec_counts():
    counts = count(create_model("cifar-resnet56", 10), CIFAR_SHAPE)
    same_stage_conv = 9 * 16 * 16 * 32 * 32  # every non-downsampling 3x3 conv costs the same
    by_hand = 27 * 16 * 32 * 32 + 18 * same_stage_conv + 2 * (17 * same_stage_conv + same_stage_conv // 2) + 64 * 10
    assert counts.params == 853_018
    assert counts.macs_conv_linear == by_hand == 125_485_696
    assert abs(counts.macs_conv_linear - 125.5e6) < 0.1e6
    assert counts.macs > counts.macs_conv_linear  # fvcore's total adds batch norm and pooling


def test_resnet110_matches_pfec_flops():
    counts = count(create_model("cifar-resnet110", 10), CIFAR_SHAPE)
    assert abs(counts.macs_conv_linear - 2.53e8) < 0.005e8  # PFEC Table 1 gives three significant digits


def test_vgg16_and_pfec_vgg16_a_match_published_counts():
    dense = count(create_model("cifar-vgg16", 10), CIFAR_SHAPE)
    pruned = count(CifarVGG(PFEC_VGG16_A_CFG, 10), CIFAR_SHAPE)
    assert dense.params == 14_987_722
    assert abs(dense.macs_conv_linear - 313.5e6) < 0.1e6
    assert pruned.params == 5_397_034
    assert abs(pruned.macs_conv_linear - 206.3e6) < 0.1e6


@pytest.mark.parametrize("name", sorted(SHIPPED_SMALL_MODELS))
def test_fvcore_conv_linear_macs_agree_with_flop_counter_mode(name):
    model = create_model(name, 10)
    shape = SHIPPED_SMALL_MODELS[name]
    assert 2 * count(model, shape).macs_conv_linear == count_flop_counter_mode(model, shape)


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50"])
def test_fvcore_agrees_with_flop_counter_mode_on_imagenet_resnets(name):
    model = create_model(name, 1000)
    counts = count(model, (3, 224, 224))
    assert 2 * counts.macs_conv_linear == count_flop_counter_mode(model, (3, 224, 224))


def test_counting_leaves_the_model_as_it_was():
    model = create_model("digits-cnn", 10).train()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    count(model, (1, 8, 8))
    count_flop_counter_mode(model, (1, 8, 8))
    assert model.training
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())


def test_dense_nonzero_params_miss_only_zero_initialised_biases():
    model = create_model("digits-cnn", 10)
    batch_norm_biases = 16 + 32 + 64
    counts = count(model, (1, 8, 8))
    assert counts.nonzero_params == counts.params - batch_norm_biases


def test_nonzero_params_see_torch_prune_masks():
    model = create_model("cifar-resnet20", 10)
    dense = count(model, CIFAR_SHAPE)
    prune.random_unstructured(model.layer1[0].conv1, "weight", amount=1000)
    prune.l1_unstructured(model.fc, "weight", amount=0.5)
    masked = count(model, CIFAR_SHAPE)
    assert masked.params == dense.params
    assert masked.nonzero_params == dense.nonzero_params - 1000 - 320
    assert masked.macs_conv_linear == dense.macs_conv_linear


def test_nonzero_params_see_parametrizations():
    class HalfMask(nn.Module):
        def forward(self, weight: torch.Tensor) -> torch.Tensor:
            mask = torch.ones_like(weight)
            mask[: weight.shape[0] // 2] = 0
            return weight * mask

    model = create_model("digits-cnn", 10)
    dense = count(model, (1, 8, 8))
    parametrize.register_parametrization(model.classifier, "weight", HalfMask())
    assert count(model, (1, 8, 8)).nonzero_params == dense.nonzero_params - 5 * 64


@pytest.mark.parametrize("shape", [(32, 32), (3, 0, 32)])
def test_bad_input_shape_is_a_user_error(shape):
    with pytest.raises(BenchError, match="channels, height, width"):
        count(create_model("digits-cnn", 10), shape)
