import pytest
import torch
from torch import nn

from harness.core.errors import BenchError
from harness.models import create_model, list_models, prunable_layers, register_model
from harness.models.cifar_resnet import AvgPoolShortcut, ZeroPadShortcut
from harness.models.vgg import VGG16_CFG

CIFAR_RESNETS = ["cifar-resnet20", "cifar-resnet32", "cifar-resnet56", "cifar-resnet110"]
NPTM_RESNETS = [f"{name}-nptm" for name in CIFAR_RESNETS]
CIFAR_MODELS = [*CIFAR_RESNETS, "cifar-vgg16", *NPTM_RESNETS]
IMAGENET_MODELS = ["resnet18", "resnet34", "resnet50"]
INPUT_SHAPES = {name: (3, 32, 32) for name in CIFAR_MODELS} | {"digits-cnn": (1, 8, 8)} | {
    name: (3, 64, 64) for name in IMAGENET_MODELS
} | {"fashion-resnet20": (1, 28, 28)}


def n_params(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def test_every_shipped_model_is_listed():
    assert list_models() == sorted(INPUT_SHAPES)


def test_unknown_model_names_the_known_ones():
    with pytest.raises(BenchError, match="unknown model 'resnet-56'.*cifar-resnet56.*digits-cnn"):
        create_model("resnet-56", 10)


def test_non_positive_class_count_is_a_user_error():
    with pytest.raises(BenchError, match="num_classes"):
        create_model("digits-cnn", 0)


def test_registering_a_taken_name_fails():
    with pytest.raises(ValueError, match="registered twice"):
        register_model("digits-cnn", prunable_layers=lambda model: [])(lambda num_classes: nn.Identity())


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # He et al. 2016 / PFEC Table 1 (0.27M, 0.46M, 0.85M, 1.72M); option A has no shortcut parameters.
        ("cifar-resnet20", 269_722),
        ("cifar-resnet32", 464_154),
        ("cifar-resnet56", 853_018),
        ("cifar-resnet110", 1_727_962),
        ("cifar-vgg16", 14_987_722),
    ],
)
def test_cifar_parameter_counts_match_published_figures(name, expected):
    assert n_params(create_model(name, 10)) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [("resnet18", 11_689_512), ("resnet34", 21_797_672), ("resnet50", 25_557_032)],
)
def test_imagenet_resnets_match_torchvision_reference_counts(name, expected):
    assert n_params(create_model(name, 1000)) == expected


@pytest.mark.parametrize("name", sorted(INPUT_SHAPES))
def test_forward_gives_one_logit_per_class(name):
    model = create_model(name, 7).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, *INPUT_SHAPES[name], generator=torch.Generator().manual_seed(0)))
    assert logits.shape == (2, 7)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", ["cifar-resnet20", "cifar-vgg16", "digits-cnn", "resnet18"])
def test_creation_is_deterministic_under_manual_seed(name):
    torch.manual_seed(3)
    first = create_model(name, 10).state_dict()
    torch.manual_seed(3)
    second = create_model(name, 10).state_dict()
    torch.manual_seed(4)
    other = create_model(name, 10).state_dict()
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert not all(torch.equal(first[key], other[key]) for key in first)


def test_resnet56_prunes_only_the_first_conv_of_each_block():
    model = create_model("cifar-resnet56", 10)
    expected = [f"layer{stage}.{block}.conv1" for stage in (1, 2, 3) for block in range(9)]
    assert prunable_layers("cifar-resnet56", model) == expected


def test_resnet56_module_names_follow_the_reference_layout():
    modules = dict(create_model("cifar-resnet56", 10).named_modules())
    for name in ["conv1", "bn1", "layer3.8.conv2", "layer3.8.bn2", "fc"]:
        assert name in modules
    assert sum(isinstance(module, nn.Conv2d) for module in modules.values()) == 55


def test_vgg16_prunes_all_thirteen_convs_with_the_pfec_widths():
    model = create_model("cifar-vgg16", 10)
    names = prunable_layers("cifar-vgg16", model)
    modules = dict(model.named_modules())
    assert [modules[name].out_channels for name in names] == [width for width in VGG16_CFG if width != "M"]


def test_vgg16_last_stage_does_not_max_pool():
    features = create_model("cifar-vgg16", 10).features.eval()
    assert features(torch.zeros(1, 3, 32, 32)).shape == (1, 512, 2, 2)


def test_digits_cnn_prunes_every_conv():
    model = create_model("digits-cnn", 10)
    modules = dict(model.named_modules())
    assert [modules[name].out_channels for name in prunable_layers("digits-cnn", model)] == [16, 32, 64]


@pytest.mark.parametrize(
    ("name", "blocks_per_stage", "internal_convs"),
    [
        ("resnet18", (2, 2, 2, 2), ("conv1",)),
        ("resnet34", (3, 4, 6, 3), ("conv1",)),
        ("resnet50", (3, 4, 6, 3), ("conv1", "conv2")),
    ],
)
def test_torchvision_resnets_prune_block_internal_convs(name, blocks_per_stage, internal_convs):
    expected = [
        f"layer{stage}.{block}.{conv}"
        for stage, n_blocks in enumerate(blocks_per_stage, start=1)
        for block in range(n_blocks)
        for conv in internal_convs
    ]
    assert prunable_layers(name, create_model(name, 10)) == expected


def test_option_a_shortcut_subsamples_and_zero_pads():
    x = torch.arange(16 * 4 * 4, dtype=torch.float32).reshape(1, 16, 4, 4)
    out = ZeroPadShortcut(32)(x)
    assert out.shape == (1, 32, 2, 2)
    assert torch.equal(out[:, :16], x[:, :, ::2, ::2])
    assert torch.count_nonzero(out[:, 16:]) == 0


def test_official_shortcut_average_pools_zero_pads_and_passes_no_gradient():
    x = torch.arange(16 * 4 * 4, dtype=torch.float32).reshape(1, 16, 4, 4).requires_grad_()
    out = AvgPoolShortcut(32)(x)
    assert out.shape == (1, 32, 2, 2)
    assert torch.equal(out[:, :16], torch.nn.functional.avg_pool2d(x, 2).detach())
    assert torch.count_nonzero(out[:, 16:]) == 0 and not out.requires_grad


@pytest.mark.parametrize("name", CIFAR_RESNETS)
def test_nptm_variants_have_the_same_layout_counts_and_initial_weights(name):
    torch.manual_seed(0)
    ours = create_model(name, 10)
    torch.manual_seed(0)
    official = create_model(f"{name}-nptm", 10)
    assert prunable_layers(name, ours) == prunable_layers(f"{name}-nptm", official)
    first, second = ours.state_dict(), official.state_dict()
    assert first.keys() == second.keys() and all(torch.equal(first[key], second[key]) for key in first)
    shortcuts = [m for m in official.modules() if isinstance(m, (AvgPoolShortcut, ZeroPadShortcut))]
    assert len(shortcuts) == 2 and all(isinstance(m, AvgPoolShortcut) for m in shortcuts)



@pytest.mark.parametrize(("name", "shape"), [("cifar-resnet20-nptm", (3, 32, 32)), ("fashion-resnet20", (1, 28, 28))])
def test_the_new_resnets_train_fused_like_separate_eager_steps(name, shape):
    """The detached average-pool shortcut and the 1-channel stem go through the fused engine's vmap."""
    import copy

    from harness.track.recipe import Recipe
    from harness.train.engines import EngineSettings
    from harness.train.fusion import FusedStep
    from harness.train.loop import eager_step, make_optimizer

    recipe = Recipe(lr=0.1, momentum=0.9, weight_decay=1e-4, batch_size=16, epochs=2, milestones=(1,))
    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        models.append(create_model(name, 10).train())
    fused = FusedStep(copy.deepcopy(models), [{}] * 2, recipe, EngineSettings("fused"))
    eager = [eager_step(model, make_optimizer(model, recipe), ()) for model in models]
    rates, draw = torch.tensor([0.02, 0.01]), torch.Generator().manual_seed(4)
    for size in (16, 16, 8):
        x, y = torch.randn(2, size, *shape, generator=draw), torch.randint(0, 10, (2, size), generator=draw)
        losses = fused(x, y, -rates, torch.full((2,), 0.9)).clone()
        for index, step in enumerate(eager):
            torch.testing.assert_close(losses[index], step(x[index], y[index], rates[index].item(), None),
                                       rtol=1e-3, atol=1e-4)
