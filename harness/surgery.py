"""Physical channel removal through Torch-Pruning's dependency graph.

Removing a conv's output channels also removes the matching BN entries and the next layers'
input channels; the dependency graph finds them through residual adds and concatenations.
After surgery the model is run once and checked, so a corrupted model never reaches retraining.
"""

from __future__ import annotations

import torch
import torch_pruning as tp
from torch import nn

from harness.errors import BenchError
from harness.plans import ChannelPlan


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
    was_training = model.training
    model.eval()
    with torch.no_grad():
        output = model(example_input)
    model.train(was_training)
    if not torch.isfinite(output).all():
        raise BenchError("the pruned model produces non-finite outputs; the plan or the surgery is broken")
