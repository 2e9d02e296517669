"""Runs that share an architecture, trained in lockstep as one batched network.

A pruned ResNet-56 at batch 64 leaves a GPU mostly idle: every kernel is tiny. Runs whose pruned
networks have the same shapes -- a plan and its random twin always do, and so does every
layer-wise method at one uniform target -- can run as one network instead: their weights are
stacked along a new leading dimension and ``torch.func.vmap`` turns each convolution into one
grouped convolution over all runs and each batch norm into one over all runs' channels. One
step trains every run, so the per-kernel overhead is paid once per group, not once per run.

Only kernels are shared. Each run keeps its own data order and augmentation draws (its own
generator, drawn from exactly as ``harness.train.loop.train`` draws), its own initial weights, its
own learning rate and momentum at every step (its schedule), its own masks, batch-norm
statistics and momentum buffers. The group's loss is the sum of the runs' mean losses, so each
run's gradient is its own. A run whose epoch loss is not finite is recorded as diverged at
that epoch, as the plain loop records it; the others train on. Records differ from sequential
runs only by floating-point rounding (grouped kernels instead of one per run). On CUDA the step
is captured into a CUDA graph once per batch shape, as the ``graph`` engine's is.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from harness.track.recipe import Recipe
from harness.track.schedules import StepValues
from harness.train.engines import (
    CapturedStep,
    EngineSettings,
    architecture_key,
    sgd_update,
)
from harness.train.loop import TrainResult

EVAL_BATCH = 1024


@dataclass(frozen=True)
class FusedRun:
    """One member of a group: its pruned model (trained in place), schedule, data generator and masks by layer."""

    model: nn.Module
    values: StepValues
    generator: torch.Generator
    masks: Mapping[str, torch.Tensor] = field(default_factory=dict)

    @property
    def key(self) -> tuple:
        """Runs train as one network only when this is equal: same shapes, masked layers and steps."""
        return (architecture_key(self.model), tuple(sorted(self.masks)), len(self.values.lr),
                self.values.steps_per_epoch)


class FusedStep(CapturedStep):
    """One SGD step of every run in the group at once; see the module docstring."""

    def __init__(self, models: Sequence[nn.Module], masks: Sequence[Mapping[str, torch.Tensor]], recipe: Recipe,
                 settings: EngineSettings):
        self.params_by_name, self.buffers_by_name = stack_module_state(list(models))
        self.params = list(self.params_by_name.values())
        device = self.params[0].device
        super().__init__(torch.preserve_format, capture=device.type == "cuda")
        self.base = copy.deepcopy(models[0]).to("meta").train()
        for p in self.params:
            p.grad = torch.zeros_like(p)
        self.grads = [p.grad for p in self.params]
        self.momentum_buffers = [torch.zeros_like(p) for p in self.params]
        runs = len(models)
        self.neg_lr = torch.zeros(runs, device=device)
        self.momentum = torch.full((runs,), recipe.momentum, device=device)
        self.neg_lr_views = [self.neg_lr.view(runs, *[1] * (p.dim() - 1)) for p in self.params]
        self.momentum_views = [self.momentum.view(runs, *[1] * (p.dim() - 1)) for p in self.params]
        layers = sorted(masks[0]) if masks else []
        self.masked = [self.params_by_name[f"{layer}.weight"] for layer in layers]
        self.masks = [torch.stack([m[layer] for m in masks]).to(device) for layer in layers]
        self.weight_decay = recipe.weight_decay
        self.nesterov = recipe.nesterov
        self.bf16 = settings.bf16
        self.losses = vmap(self._loss)
        self.logits = vmap(self._logits, in_dims=(0, 0, None))

    def _logits(self, params: dict, buffers: dict, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.base, (params, buffers), (x,))

    def _loss(self, params: dict, buffers: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(self._logits(params, buffers, x), y)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, neg_lr: torch.Tensor, momentum: torch.Tensor) -> torch.Tensor:
        """``x``: (runs, batch, ...) and ``y``: (runs, batch); ``neg_lr`` and ``momentum``: (runs,). Returns each run's loss."""
        self.neg_lr.copy_(neg_lr)
        self.momentum.copy_(momentum)
        return self._run(x, y)

    def _body(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            losses = self.losses(self.params_by_name, self.buffers_by_name, x, y)
        torch._foreach_zero_(self.grads)
        losses.sum().backward()
        with torch.no_grad():
            sgd_update(self.params, self.grads, self.momentum_buffers, self.neg_lr_views, self.momentum_views,
                       self.weight_decay, self.nesterov)
            if self.masked:
                torch._foreach_mul_(self.masked, self.masks)
        return losses.detach()

    def _state(self) -> list[torch.Tensor]:
        return [*self.params, *self.momentum_buffers, *self.buffers_by_name.values()]

    @torch.no_grad()
    def accuracies(self, split) -> list[float]:
        """Each run's top-1 accuracy on ``split`` in eval mode, as ``harness.train.loop.evaluate`` computes it."""
        self.base.eval()
        correct = torch.zeros(len(self.neg_lr), dtype=torch.long, device=self.neg_lr.device)
        total = 0
        for x, y in split.batches(EVAL_BATCH, generator=None, shuffle=False, augment=False):
            correct += (self.logits(self.params_by_name, self.buffers_by_name, x).argmax(-1) == y).sum(-1)
            total += y.numel()
        self.base.train()
        return [c / total for c in correct.tolist()]

    @torch.no_grad()
    def write_back(self, models: Sequence[nn.Module]) -> None:
        """Each run's trained weights and batch-norm statistics, back into its own model."""
        for index, model in enumerate(models):
            model.load_state_dict({name: t[index] for name, t in (*self.params_by_name.items(),
                                                                   *self.buffers_by_name.items())})


def _epoch_table(runs: Sequence[FusedRun], column, steps: range, device: torch.device) -> torch.Tensor:
    """(steps of one epoch, runs) values on the device, so a step reads its row without a host-to-device
    copy, and memory holds one epoch of the schedule whatever the budget."""
    return torch.tensor([[column(run, step) for run in runs] for step in steps], dtype=torch.float32, device=device)


def train_fused(runs: Sequence[FusedRun], train_split, val_split, recipe: Recipe,
                settings: EngineSettings) -> list[TrainResult]:
    """Train every run for its ``values`` (all the same length) as ``harness.train.loop.train`` would, in one network.

    Each run's epoch is one pass over ``train_split`` in its own shuffled, augmented order; the
    runs' trained weights end up in their own models.
    """
    if len({run.key for run in runs}) > 1:
        raise ValueError("only runs with the same architecture, masked layers and step count train as one network")
    total = len(runs[0].values.lr) if runs else 0
    if total == 0:
        return [TrainResult("ok", [], [], [], 0) for _ in runs]
    per_epoch = runs[0].values.steps_per_epoch
    models = [run.model for run in runs]
    step_fn = FusedStep(models, [run.masks for run in runs], recipe, settings)
    device = step_fn.neg_lr.device
    losses: list[list[float]] = [[] for _ in runs]
    accs: list[list[float]] = [[] for _ in runs]
    lrs: list[list[float]] = [[] for _ in runs]
    ended: dict[int, int] = {}
    step = 0
    for _ in range(total // per_epoch):
        for index, run in enumerate(runs):
            if index not in ended:
                lrs[index].append(run.values.lr[step])
        steps = range(step, step + per_epoch)
        neg_lr = _epoch_table(runs, lambda run, s: -run.values.lr[s], steps, device)
        momentum = _epoch_table(
            runs, lambda run, s: recipe.momentum if run.values.momentum is None else run.values.momentum[s], steps, device)
        loss_sum = torch.zeros(len(runs), device=device)
        batches = 0
        epochs = [train_split.batches(recipe.batch_size, generator=run.generator, shuffle=True, augment=True)
                  for run in runs]
        for batch in zip(*epochs):
            x = torch.stack([b[0] for b in batch])
            y = torch.stack([b[1] for b in batch])
            loss_sum += step_fn(x, y, neg_lr[step - steps.start], momentum[step - steps.start])
            batches += 1
            step += 1
        epoch_loss = (loss_sum / batches).tolist()
        for index in range(len(runs)):
            if index not in ended:
                losses[index].append(epoch_loss[index])
                if not math.isfinite(epoch_loss[index]):
                    ended[index] = step
        if len(ended) == len(runs):
            break
        val = step_fn.accuracies(val_split)
        for index in range(len(runs)):
            if index not in ended:
                accs[index].append(val[index])
    step_fn.write_back(models)
    return [TrainResult("diverged", losses[i], accs[i], lrs[i], ended[i]) if i in ended
            else TrainResult("ok", losses[i], accs[i], lrs[i], step) for i in range(len(runs))]
