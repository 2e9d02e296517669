"""The harness's own training loop, used for dense training and every retraining run.

It applies precomputed per-step learning rates (and momenta) from ``harness.schedules``,
records per-epoch curves, and stops with status ``diverged`` on a non-finite loss. Masked
(unstructured) runs pass their masks: they are multiplied back in after every optimizer step,
so pruned weights stay zero through retraining, at the cost of one fused multiply per step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Literal, Sequence

import torch
from torch import nn

from harness.recipe import Recipe
from harness.schedules import StepValues


@dataclass(frozen=True)
class TrainResult:
    status: Literal["ok", "diverged"]
    train_loss: list[float]
    val_acc: list[float]
    lr: list[float]
    steps: int


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    return math.ceil(num_examples / batch_size)


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.SGD:
    return torch.optim.SGD(
        model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
        nesterov=recipe.nesterov, weight_decay=recipe.weight_decay,
    )


@torch.no_grad()
def evaluate(model: nn.Module, split, batch_size: int = 1024) -> float:
    """Top-1 accuracy in eval mode."""
    was_training = model.training
    model.eval()
    correct = total = 0
    for x, y in split.batches(batch_size, generator=None, shuffle=False, augment=False):
        correct += (model(x).argmax(1) == y).sum().item()
        total += y.numel()
    model.train(was_training)
    return correct / total


def train(
    model: nn.Module,
    train_split,
    val_split,
    recipe: Recipe,
    values: StepValues,
    generator: torch.Generator,
    on_epoch: Callable[[int, float, float], None] | None = None,
    masks: Sequence[tuple[torch.Tensor, torch.Tensor]] = (),
) -> TrainResult:
    """Train for ``len(values.lr)`` steps: one epoch is one shuffled, augmented pass over ``train_split``.
    ``masks`` pairs weights with same-shaped 0/1 tensors that are re-applied after each step."""
    optimizer = make_optimizer(model, recipe)
    masked_weights, weight_masks = [w for w, _ in masks], [m for _, m in masks]  # one fused multiply per step
    group = optimizer.param_groups[0]
    loss_fn = nn.CrossEntropyLoss()
    epochs = len(values.lr) // values.steps_per_epoch if values.lr else 0
    losses, accs, lrs = [], [], []
    step = 0
    model.train()
    for epoch in range(epochs):
        lrs.append(values.lr[step])
        loss_sum = torch.zeros((), device=next(model.parameters()).device)
        batches = 0
        for x, y in train_split.batches(recipe.batch_size, generator=generator, shuffle=True, augment=True):
            group["lr"] = values.lr[step]
            if values.momentum is not None:
                group["momentum"] = values.momentum[step]
            loss = loss_fn(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if masks:
                with torch.no_grad():
                    torch._foreach_mul_(masked_weights, weight_masks)
            loss_sum += loss.detach()
            batches += 1
            step += 1
        epoch_loss = (loss_sum / batches).item()
        if not math.isfinite(epoch_loss):
            losses.append(epoch_loss)
            return TrainResult("diverged", losses, accs, lrs, step)
        losses.append(epoch_loss)
        accs.append(evaluate(model, val_split))
        if on_epoch is not None:
            on_epoch(epoch, epoch_loss, accs[-1])
    return TrainResult("ok", losses, accs, lrs, step)
