"""Built-in methods against their published originals: Taylor's gate score (Molchanov et al. 2019) and
its weight variant pinned to a hand computation on a tiny conv-BN-ReLU-linear network, the dense model
left unchanged by training-mode scoring, bn-scale's one global threshold on |gamma| (Liu et al. 2017), and
magnitude pruning on conv weights only (the weight-level code of Liu et al. 2019)."""

import pytest
import torch
from torch import nn
from torch.nn import functional

from harness.methods import PruningContext, get_method
from harness.models import create_model
from harness.prune.allocation import resolve_target
from harness.prune.surgery import apply_masks
from harness.prune.validation import validate_plan
from harness.track.definition import Target

CHANNELS = 3
SHAPE = (1, 3, 3)


def tiny_network() -> nn.Sequential:
    """conv 2x2 (1 -> 3 channels, 3x3 -> 2x2) - BN - ReLU - linear, with running statistics far from any
    batch's, so scoring with them instead of batch statistics would show."""
    generator = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, CHANNELS, 2, bias=False), nn.BatchNorm2d(CHANNELS), nn.ReLU(),
                          nn.Flatten(), nn.Linear(CHANNELS * 4, 4))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator))
        model[1].running_mean.fill_(5.0)
        model[1].running_var.fill_(9.0)
    return model.eval()


def fixed_batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(1)
    return [(torch.randn(4, *SHAPE, generator=generator), torch.randint(0, 4, (4,), generator=generator))
            for _ in range(2)]


def scores_of(method_name: str, model: nn.Module, batches) -> dict[str, torch.Tensor]:
    """The scores a method hands to ``keep_top`` (caught by the context's allocation), on ``model`` itself."""
    method = get_method(method_name)
    caught = {}

    def allocate(scores):
        caught.update(scores)
        return {"0": CHANNELS}

    ctx = PruningContext(model=model, sizes={"0": CHANNELS}, keep={"0": CHANNELS},
                         generator=torch.Generator().manual_seed(0), max_batches=len(batches),
                         batch_source=lambda: iter(batches), kind=method.kind,
                         example_input=torch.zeros(1, *SHAPE), allocate=allocate)
    method.select(ctx)
    return caught


def hand_forward(model: nn.Sequential, inputs: torch.Tensor, gate: torch.Tensor):
    """The tiny network written out, batch norm with the batch's mean and biased variance as in training,
    a gate multiplying each BN output channel; returns the logits and the BN output."""
    conv, batchnorm, linear = model[0], model[1], model[4]
    features = functional.conv2d(inputs, conv.weight)
    mean = features.mean((0, 2, 3), keepdim=True)
    variance = features.var((0, 2, 3), unbiased=False, keepdim=True)
    normalised = (features - mean) / torch.sqrt(variance + batchnorm.eps)
    bn_output = batchnorm.weight.view(1, -1, 1, 1) * normalised + batchnorm.bias.view(1, -1, 1, 1)
    logits = linear(torch.relu(bn_output * gate.view(1, -1, 1, 1)).flatten(1))
    return logits, bn_output


def test_taylor_scores_the_squared_gradient_of_a_gate_after_batch_norm_averaged_over_batches():
    model = tiny_network()
    expected = torch.zeros(CHANNELS, dtype=torch.float64)
    for inputs, labels in fixed_batches():
        gate = torch.ones(CHANNELS, requires_grad=True)
        logits, bn_output = hand_forward(model, inputs, gate)
        loss = functional.cross_entropy(logits, labels)
        gate_grad, output_grad = torch.autograd.grad(loss, [gate, bn_output])
        # the gate's gradient is the BN output times its gradient, summed over the batch and positions
        assert torch.allclose(gate_grad, (output_grad * bn_output).sum((0, 2, 3)), atol=1e-6)
        expected += (gate_grad * gate).detach().double() ** 2
    expected /= 2
    assert torch.allclose(scores_of("taylor", model, fixed_batches())["0"], expected, rtol=1e-5)


def test_taylor_weight_scores_each_weights_contribution_squared_summed_per_filter():
    model = tiny_network()
    expected = torch.zeros(CHANNELS, dtype=torch.float64)
    for inputs, labels in fixed_batches():
        logits, _ = hand_forward(model, inputs, torch.ones(CHANNELS))
        (grad,) = torch.autograd.grad(functional.cross_entropy(logits, labels), model[0].weight)
        expected += (grad * model[0].weight).detach().double().pow(2).flatten(1).sum(1)
    expected /= 2
    score = scores_of("taylor-weight", model, fixed_batches())["0"]
    assert torch.allclose(score, expected, rtol=1e-5)
    assert (score > 0).all()  # a filter's summed g * w is zero under batch statistics; the squares are not


@pytest.mark.parametrize("method_name", ["taylor", "taylor-weight"])
@pytest.mark.parametrize("training", [False, True])
def test_training_mode_scoring_leaves_the_models_modes_and_running_statistics_unchanged(method_name, training):
    model = tiny_network().train(training)
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    scores_of(method_name, model, fixed_batches())
    after = model.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before)
    assert all(module.training == training for module in model.modules())
    assert all(parameter.grad is None for parameter in model.parameters())


def test_bn_scale_prunes_by_one_global_gamma_threshold_under_a_global_target():
    torch.manual_seed(0)
    model = create_model("digits-cnn", 10).eval()
    generator = torch.Generator().manual_seed(3)
    batchnorms = [module for module in model.modules() if isinstance(module, nn.BatchNorm2d)]
    for batchnorm, scale in zip(batchnorms, (0.2, 1.0, 0.5)):  # the first layer's gammas are the smallest
        batchnorm.weight.data = scale * torch.rand(batchnorm.num_features, generator=generator)
    allocation = resolve_target(Target(name="p", kind="params", reduction=0.5), "structured", "digits-cnn", model,
                                (1, 8, 8))
    method = get_method("bn-scale")
    ctx = PruningContext(model=model, sizes=allocation.sizes, keep=dict(allocation.keep),
                         generator=torch.Generator(), kind=method.kind, example_input=torch.zeros(1, 1, 8, 8),
                         allocate=allocation.rank_globally)
    plan = validate_plan(method.name, method.select(ctx), allocation.shapes, None, goal_miss=allocation.miss)
    gammas = dict(zip(allocation.sizes, (batchnorm.weight.detach().abs() for batchnorm in batchnorms)))
    kept = torch.cat([gammas[layer][list(indices)] for layer, indices in plan.kept.items()])
    pruned = torch.cat([gammas[layer][[i for i in range(len(gammas[layer])) if i not in indices]]
                        for layer, indices in plan.kept.items()])
    assert pruned.max() < kept.min()  # one threshold over all layers
    assert plan.counts() != dict(allocation.keep)  # not the near-uniform counts a per-layer ranking gets
    assert plan.counts()["features.0"] < allocation.keep["features.0"]


@pytest.mark.parametrize("method_name", ["magnitude-global", "magnitude-layerwise"])
def test_magnitude_pruning_masks_conv_weights_and_leaves_linear_layers_dense(method_name):
    torch.manual_seed(0)
    model = create_model("digits-cnn", 10).eval()
    allocation = resolve_target(Target(name="r", ratio=0.5), "unstructured", "digits-cnn", model, (1, 8, 8))
    method = get_method(method_name)
    ctx = PruningContext(model=model, sizes=allocation.sizes, keep=dict(allocation.keep),
                         generator=torch.Generator(), kind=method.kind,
                         allocate=allocation.rank_globally if method.global_ranking else None)
    plan = method.select(ctx)
    assert set(plan.masks) == {name for name, module in model.named_modules() if isinstance(module, nn.Conv2d)}
    assert plan.sparsity() == pytest.approx(0.5, abs=1e-3)  # half of the conv weights, none of the linear
    classifier = model.classifier.weight.detach().clone()
    apply_masks(model, plan, torch.zeros(1, 1, 8, 8))
    assert torch.equal(model.classifier.weight, classifier)
