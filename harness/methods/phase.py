"""The loop of a method's pre-pruning phase (``harness.methods.training.TrainingPhase``), the harness's own code.

It trains the live model with the track's optimizer (SGD with the recipe's momentum, Nesterov flag and weight
decay) at the recipe's last learning rate, fine-tuning's rate: the phase starts from a converged dense model,
and a constant small rate changes it no more than the method's penalty and hook ask, so the retraining
schedules the benchmark compares stay the only schedules after pruning. Every step adds the method's penalty
to the cross-entropy and, after the optimizer's step, calls its hook under ``torch.no_grad()``. Data order and
augmentation are the retraining loop's, drawn from the run's own seeded generator. The loop lives beside the
methods so that a plugin's phase runs the same code inside its isolated process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn

from harness.methods.training import PhaseContext, TrainingPhase

if TYPE_CHECKING:  # a plugin's child imports this loop; pydantic stays out of a plan's child
    from harness.track.recipe import Recipe


@dataclass(frozen=True)
class PhaseRun:
    """What a phase did: its status, steps, each epoch's mean objective (cross-entropy plus penalty) and the
    method's ``memory`` at the end."""

    status: Literal["ok", "diverged"]
    steps: int
    train_loss: list[float]
    memory: dict[str, Any] = field(default_factory=dict)


def run_phase(phase: TrainingPhase, context: PhaseContext, train_split, recipe: Recipe,
              data_generator: torch.Generator) -> PhaseRun:
    """Train ``context.model`` in place for ``context.epochs`` epochs; stops as ``diverged`` on a non-finite loss."""
    model = context.model
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.final_lr, momentum=recipe.momentum,
                                nesterov=recipe.nesterov, weight_decay=recipe.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    per_epoch = math.ceil(len(train_split) / recipe.batch_size)
    losses: list[float] = []
    model.train()
    for epoch in range(context.epochs):
        context.epoch = epoch
        total = torch.zeros((), device=next(model.parameters()).device)
        for index, (x, y) in enumerate(train_split.batches(recipe.batch_size, generator=data_generator,
                                                           shuffle=True, augment=True)):
            context.end_of_epoch = index == per_epoch - 1
            loss = loss_fn(model(x), y)
            if phase.penalty is not None:
                loss = loss + phase.penalty(context)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if phase.hook is not None:
                with torch.no_grad():
                    phase.hook(context)
            context.step += 1
            total += loss.detach()
        losses.append((total / per_epoch).item())
        if not math.isfinite(losses[-1]):
            return PhaseRun("diverged", context.step, losses, context.memory)
    context.end_of_epoch = False
    return PhaseRun("ok", context.step, losses, context.memory)
