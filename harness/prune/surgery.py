"""Applying plans: physical channel removal through Torch-Pruning's dependency graph, and masks.

Removing a conv's output channels also removes the matching BN entries and the next layers'
input channels; the dependency graph finds them through residual adds and concatenations.
After surgery (or masking) the model is run once and checked, so a corrupted model never
reaches retraining.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch_pruning as tp
from torch import nn

from harness.core.errors import BenchError
from harness.plans import ChannelPlan, MaskPlan, Plan


@dataclass(frozen=True)
class ChannelDependent:
    """A parameterised module whose ``axis`` shrinks by ``per_channel`` entries per channel removed from a layer."""

    module: str
    axis: Literal["in", "out"]
    per_channel: int


def channel_dependents(model: nn.Module, layers: list[str], example_input: torch.Tensor) -> dict[str, list[ChannelDependent]]:
    """For each prunable layer, every module that removing its output channels reshapes (the layer itself included)."""
    modules = dict(model.named_modules())
    names = {module: name for name, module in modules.items()}
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=example_input)
    found = {}
    for layer in layers:
        conv = modules[layer]
        group = graph.get_pruning_group(conv, tp.prune_conv_out_channels, idxs=list(range(conv.out_channels)))
        dependents = {}
        for dep, idxs in group:
            name = names.get(dep.target.module)
            if name is None or not any(True for _ in dep.target.module.parameters(recurse=False)):
                continue
            axis = "out" if graph.is_out_channel_pruning_fn(dep.handler) else "in"
            dependents[(name, axis)] = ChannelDependent(name, axis, len(idxs) // conv.out_channels)
        found[layer] = list(dependents.values())
    return found


def prune_channels(model: nn.Module, plan: ChannelPlan, example_input: torch.Tensor) -> nn.Module:
    """Remove, in place, every output channel the plan does not keep; returns ``model``."""
    modules = dict(model.named_modules())
    names = {module: name for name, module in modules.items()}
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=example_input)
    groups = []
    for layer, kept in plan.kept.items():
        conv = modules[layer]
        removed = sorted(set(range(conv.out_channels)) - set(kept))
        if not removed:
            continue
        group = graph.get_pruning_group(conv, tp.prune_conv_out_channels, idxs=removed)
        coupled = {
            names.get(dep.target.module) for dep, _ in group if graph.is_out_channel_pruning_fn(dep.handler)
        } & (set(plan.kept) - {layer})
        if coupled:
            raise BenchError(
                f"layer '{layer}' shares its channels with '{sorted(coupled)[0]}'; "
                "a plan may name only one layer of a coupled group"
            )
        if not graph.check_pruning_group(group):
            raise BenchError(f"layer '{layer}': removing these channels would leave a layer empty")
        groups.append(group)
    for group in groups:
        group.prune()
    _check_forward(model, plan, example_input)
    return model


def _check_forward(model: nn.Module, plan: ChannelPlan, example_input: torch.Tensor) -> None:
    modules = dict(model.named_modules())
    for layer, kept in plan.kept.items():
        if modules[layer].out_channels != len(kept):
            raise BenchError(f"surgery left '{layer}' with {modules[layer].out_channels} channels, expected {len(kept)}")
    _check_output(model, example_input)


def apply_masks(model: nn.Module, plan: MaskPlan, example_input: torch.Tensor) -> dict[str, torch.Tensor]:
    """Zero, in place, every weight the plan masks out; returns the masks on the model's device, by layer."""
    modules = dict(model.named_modules())
    placed = {}
    with torch.no_grad():
        for layer, mask in plan.masks.items():
            weight = modules[layer].weight
            if tuple(weight.shape) != tuple(mask.shape):
                raise BenchError(f"mask of '{layer}' has shape {tuple(mask.shape)}, the weight {tuple(weight.shape)}")
            placed[layer] = mask.to(device=weight.device, dtype=weight.dtype)
            weight.mul_(placed[layer])
    _check_output(model, example_input)
    return placed


def apply_plan(model: nn.Module, plan: Plan, example_input: torch.Tensor) -> dict[str, torch.Tensor]:
    """Apply either kind of plan in place: a mask plan's masks (returned, by layer) or a channel plan's surgery."""
    if isinstance(plan, MaskPlan):
        return apply_masks(model, plan, example_input)
    prune_channels(model, plan, example_input)
    return {}


def _check_output(model: nn.Module, example_input: torch.Tensor) -> None:
    was_training = model.training
    model.eval()
    with torch.no_grad():
        output = model(example_input)
    model.train(was_training)
    if not torch.isfinite(output).all():
        raise BenchError("the pruned model produces non-finite outputs; the plan or the surgery is broken")
