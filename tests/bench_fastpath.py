"""CPU benchmarks of the retraining hot paths (``pytest tests/bench_fastpath.py --benchmark-enable``).

Batched crop/flip of a CIFAR batch, one ResNet-20 training step (plain eager step vs the graph
engine's step, which on a CPU runs uncaptured), one step of four ResNet-20 runs fused into one
network (to set against four plain steps), fvcore counting and channel surgery of a ResNet-56. GPU figures come from ``bench perf --device cuda`` (docs/performance.md).
"""

import copy

import pytest
import torch
from conftest import TRACKS

from harness.data import augment_batch
from harness.models import create_model, prunable_layers
from harness.plans import ChannelPlan
from harness.prune.counting import count
from harness.prune.surgery import prune_channels
from harness.track.definition import load_track
from harness.train.engines import EngineSettings, step_factory
from harness.train.fusion import FusedStep
from harness.train.loop import make_optimizer

CIFAR = (3, 32, 32)
BATCH = 64


def _batch(seed=0):
    draw = torch.Generator().manual_seed(seed)
    return torch.randn(BATCH, *CIFAR, generator=draw), torch.randint(0, 10, (BATCH,), generator=draw)


def test_batched_crop_and_flip(benchmark):
    x, _ = _batch()
    draw = torch.Generator().manual_seed(1)
    out = benchmark(augment_batch, x, 4, True, draw, 0.0)
    assert out.shape == x.shape


@pytest.mark.parametrize("engine", ["eager", "graph"])
def test_training_step(benchmark, engine):
    torch.manual_seed(0)
    model = create_model("cifar-resnet20", 10).train()
    step = step_factory(EngineSettings(engine))(model, make_optimizer(model, load_track("cifar10-resnet56", TRACKS).recipe), ())
    x, y = _batch()
    step(x, y, 0.1, None)
    loss = benchmark(step, x, y, 0.1, None)
    assert torch.isfinite(loss)


def test_fused_step_of_four_runs(benchmark):
    recipe = load_track("cifar10-resnet56", TRACKS).recipe
    models = []
    for seed in range(4):
        torch.manual_seed(seed)
        models.append(create_model("cifar-resnet20", 10).train())
    step = FusedStep(models, [{}] * 4, recipe, EngineSettings("fused"))
    batches = [_batch(seed) for seed in range(4)]
    x, y = torch.stack([b[0] for b in batches]), torch.stack([b[1] for b in batches])
    neg_lr, momentum = torch.full((4,), -0.1), torch.full((4,), recipe.momentum)
    step(x, y, neg_lr, momentum)
    losses = benchmark(step, x, y, neg_lr, momentum)
    assert losses.shape == (4,) and torch.isfinite(losses).all()


def test_counting_resnet56(benchmark):
    model = create_model("cifar-resnet56", 10)
    counts = benchmark(count, model, CIFAR)
    assert counts.params == 853_018


def test_surgery_resnet56_half_of_every_block(benchmark):
    dense = create_model("cifar-resnet56", 10)
    modules = dict(dense.named_modules())
    plan = ChannelPlan({layer: tuple(range(0, modules[layer].out_channels, 2))
                        for layer in prunable_layers("cifar-resnet56", dense)})
    pruned = benchmark(lambda: prune_channels(copy.deepcopy(dense), plan, torch.zeros(1, *CIFAR)))
    assert all(dict(pruned.named_modules())[layer].out_channels == len(kept) for layer, kept in plan.kept.items())
