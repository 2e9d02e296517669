"""Pruning plans: what a method decides, as plain data the harness can check, twin and apply.

A method never edits a model. It returns a plan -- the output channels to keep in each
prunable layer -- and the harness validates it, builds its random twin and does the surgery.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import torch

from harness.errors import BenchError


@dataclass(frozen=True)
class ChannelPlan:
    """Output-channel indices to keep, per prunable layer (layers left out are not pruned)."""

    kept: Mapping[str, tuple[int, ...]]

    def counts(self) -> dict[str, int]:
        return {layer: len(indices) for layer, indices in self.kept.items()}

    def to_json(self) -> dict[str, list[int]]:
        return {layer: list(indices) for layer, indices in self.kept.items()}


def keep_counts(sizes: Mapping[str, int], ratio: float) -> dict[str, int]:
    """Channels kept per layer when a fraction ``ratio`` is removed from each; never fewer than one."""
    return {layer: max(1, math.floor(size * (1 - ratio) + 0.5)) for layer, size in sizes.items()}


def keep_top(scores: Mapping[str, torch.Tensor], keep: Mapping[str, int]) -> ChannelPlan:
    """Keep the ``keep[layer]`` highest-scoring channels of each layer (ties go to the lower index)."""
    kept = {}
    for layer, count in keep.items():
        order = torch.sort(scores[layer].detach().double().cpu(), descending=True, stable=True).indices
        kept[layer] = tuple(sorted(order[:count].tolist()))
    return ChannelPlan(kept)


def random_twin(plan: ChannelPlan, sizes: Mapping[str, int], generator: torch.Generator) -> ChannelPlan:
    """The control every method is compared with: the same count per layer, channels chosen at random."""
    kept = {}
    for layer in sorted(plan.kept):
        choice = torch.randperm(sizes[layer], generator=generator)[: len(plan.kept[layer])]
        kept[layer] = tuple(sorted(choice.tolist()))
    return ChannelPlan({layer: kept[layer] for layer in plan.kept})


def validate_plan(method: str, plan: object, sizes: Mapping[str, int], keep: Mapping[str, int]) -> ChannelPlan:
    """Check a method's plan before any surgery; one line names the method, the layer and the rule."""
    if not isinstance(plan, ChannelPlan):
        raise BenchError(f"method '{method}': returned {type(plan).__name__}, expected a ChannelPlan")
    for layer, indices in plan.kept.items():
        where = f"method '{method}', layer '{layer}'"
        if layer not in sizes:
            raise BenchError(f"{where}: not a prunable layer of this track (prunable: {', '.join(sizes)})")
        if any(not isinstance(i, int) or isinstance(i, bool) for i in indices):
            raise BenchError(f"{where}: channel indices must be integers")
        if len(set(indices)) != len(indices):
            raise BenchError(f"{where}: channel indices must be unique")
        if any(i < 0 or i >= sizes[layer] for i in indices):
            raise BenchError(f"{where}: channel index out of range 0..{sizes[layer] - 1}")
        if not indices:
            raise BenchError(f"{where}: keeps no channel; at least one must stay")
    for layer, count in keep.items():
        got = len(plan.kept.get(layer, ()))
        if got != count:
            raise BenchError(
                f"method '{method}', layer '{layer}': keeps {got} channels but the target asks for {count}"
            )
    return ChannelPlan({layer: tuple(sorted(indices)) for layer, indices in plan.kept.items()})
