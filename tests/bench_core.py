"""Benchmarks of the core hot paths (run with ``pytest tests/bench_core.py --benchmark-enable``).

The headline comparison: one digits retraining run through the harness (schedule arrays,
batched augmentation, per-epoch validation, curves) against a plain hand-written PyTorch loop
doing the same steps on the same data. The issue asks for at most 1.2x.
"""

import copy

import pytest
import torch
from torch import nn

from harness.core.layout import ResultsLayout
from harness.data import augment_batch
from harness.grid.selection import expand, select
from harness.run.pipeline import Workspace, prune, retrain

BUDGET = 10


@pytest.fixture(scope="module")
def pruned_run(digits_track, trained_results):
    workspace = Workspace(digits_track, ResultsLayout(trained_results))
    config = expand(digits_track, select(digits_track, schedules=["ft"], budgets=[BUDGET], seeds=[0]))[0]
    return workspace, config, prune(workspace, config)


def test_harness_retraining_run(benchmark, pruned_run):
    workspace, config, pruned = pruned_run

    def run():
        fresh = copy.copy(pruned)
        object.__setattr__(fresh, "model", copy.deepcopy(pruned.model))
        return retrain(workspace, config, fresh)[0]

    result = benchmark(run)
    assert result.status == "ok" and len(result.val_acc) == BUDGET


def test_plain_pytorch_loop_same_steps(benchmark, pruned_run):
    workspace, config, pruned = pruned_run
    recipe = workspace.track.recipe
    train, val = workspace.splits.train, workspace.splits.val

    def run():
        model = copy.deepcopy(pruned.model).train()
        optimizer = torch.optim.SGD(model.parameters(), lr=recipe.final_lr, momentum=recipe.momentum,
                                    weight_decay=recipe.weight_decay)
        generator = torch.Generator().manual_seed(0)
        accuracies = []
        for _ in range(BUDGET):
            order = torch.randperm(len(train), generator=generator)
            for start in range(0, len(train), recipe.batch_size):
                index = order[start:start + recipe.batch_size]
                x = augment_batch(train.x[index], recipe.augmentation.crop_padding, False, generator)
                loss = nn.functional.cross_entropy(model(x), train.y[index])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            model.eval()
            with torch.no_grad():
                accuracies.append((model(val.x).argmax(1) == val.y).float().mean().item())
            model.train()
        return accuracies

    assert len(benchmark(run)) == BUDGET
