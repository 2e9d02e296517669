"""The harness's own training loop, used for dense training and every retraining run.

It applies precomputed per-step learning rates (and momenta) from ``harness.track.schedules``,
records per-epoch curves, and stops with status ``diverged`` on a non-finite loss. Masked
(unstructured) runs pass their masks: they are multiplied back in after every optimizer step,
so pruned weights stay zero through retraining, at the cost of one fused multiply per step.

With a ``checkpoint``, the loop saves its whole state after every epoch and, when started again,
continues from the last one: weights and buffers, the optimizer's momentum, the data generator's
state, the step count and the curves so far are everything its future depends on, so a resumed
run ends exactly where an uninterrupted one would (bit for bit on CPU).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Literal, Protocol, Sequence

import torch
from torch import nn

from harness.track.recipe import Recipe
from harness.track.schedules import StepValues


@dataclass(frozen=True)
class TrainResult:
    status: Literal["ok", "diverged"]
    train_loss: list[float]
    val_acc: list[float]
    lr: list[float]
    steps: int


@dataclass(frozen=True)
class TrainState:
    """The loop after ``epochs_done`` epochs; tensors are the live ones, so persist or copy them at once."""

    epochs_done: int
    steps: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    generator: torch.Tensor
    train_loss: list[float]
    val_acc: list[float]
    lr: list[float]


class Checkpoint(Protocol):
    """Where ``train`` keeps its state after every epoch (``harness.train.checkpoints.FileCheckpoint`` on disk)."""

    def load(self) -> TrainState | None: ...

    def save(self, state: TrainState) -> None: ...


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    return math.ceil(num_examples / batch_size)


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.SGD:
    return torch.optim.SGD(
        model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
        nesterov=recipe.nesterov, weight_decay=recipe.weight_decay,
    )


StepFunction = Callable[[torch.Tensor, torch.Tensor, float, float | None], torch.Tensor]
"""``step(x, y, lr, momentum)``: one optimizer step on a batch at this step's rate (and momentum, when
the schedule cycles it); returns the batch's detached loss."""
StepFactory = Callable[[nn.Module, torch.optim.SGD, Sequence[tuple[torch.Tensor, torch.Tensor]]], StepFunction]


def eager_step(model: nn.Module, optimizer: torch.optim.SGD,
               masks: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> StepFunction:
    """The plain step: forward, backward, ``optimizer.step()``, then masks multiplied back in (one fused multiply)."""
    masked_weights, weight_masks = [w for w, _ in masks], [m for _, m in masks]
    group = optimizer.param_groups[0]
    loss_fn = nn.CrossEntropyLoss()

    def step(x: torch.Tensor, y: torch.Tensor, lr: float, momentum: float | None) -> torch.Tensor:
        group["lr"] = lr
        if momentum is not None:
            group["momentum"] = momentum
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if masked_weights:
            with torch.no_grad():
                torch._foreach_mul_(masked_weights, weight_masks)
        return loss.detach()

    return step


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
    checkpoint: Checkpoint | None = None,
    make_step: StepFactory | None = None,
) -> TrainResult:
    """Train for ``len(values.lr)`` steps: one epoch is one shuffled, augmented pass over ``train_split``.
    ``masks`` pairs weights with same-shaped 0/1 tensors that are re-applied after each step. With a
    ``checkpoint`` holding a saved state, training continues after its last epoch (``on_epoch`` is
    called for the remaining epochs only). ``make_step`` builds the step (default: ``eager_step``;
    ``harness.train.engines`` has faster ones that compute the same)."""
    make_step = make_step or eager_step
    optimizer = make_optimizer(model, recipe)
    epochs = len(values.lr) // values.steps_per_epoch if values.lr else 0
    losses, accs, lrs = [], [], []
    step = start = 0
    saved = checkpoint.load() if checkpoint is not None else None
    if saved is not None:
        model.load_state_dict(saved.model)
        optimizer.load_state_dict(saved.optimizer)
        generator.set_state(saved.generator)
        losses, accs, lrs = list(saved.train_loss), list(saved.val_acc), list(saved.lr)
        step, start = saved.steps, saved.epochs_done
    train_step = make_step(model, optimizer, masks)  # after loading: load_state_dict replaces the group dicts
    model.train()
    for epoch in range(start, epochs):
        lrs.append(values.lr[step])
        loss_sum = torch.zeros((), device=next(model.parameters()).device)
        batches = 0
        for x, y in train_split.batches(recipe.batch_size, generator=generator, shuffle=True, augment=True):
            loss_sum += train_step(x, y, values.lr[step], None if values.momentum is None else values.momentum[step])
            batches += 1
            step += 1
        epoch_loss = (loss_sum / batches).item()
        if not math.isfinite(epoch_loss):
            losses.append(epoch_loss)
            return TrainResult("diverged", losses, accs, lrs, step)
        losses.append(epoch_loss)
        accs.append(evaluate(model, val_split))
        if checkpoint is not None:
            checkpoint.save(TrainState(epoch + 1, step, model.state_dict(), optimizer.state_dict(),
                                       generator.get_state(), list(losses), list(accs), list(lrs)))
        if on_epoch is not None:
            on_epoch(epoch, epoch_loss, accs[-1])
    return TrainResult("ok", losses, accs, lrs, step)
