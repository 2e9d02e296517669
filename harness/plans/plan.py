"""The plan types a method returns, and the helpers that turn scores into one."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Union

import torch


@dataclass(frozen=True)
class ChannelPlan:
    """Output-channel indices to keep, per prunable layer (layers left out are not pruned)."""

    kept: Mapping[str, tuple[int, ...]]

    def counts(self) -> dict[str, int]:
        return {layer: len(indices) for layer, indices in self.kept.items()}

    def to_json(self) -> dict[str, list[int]]:
        return {layer: list(indices) for layer, indices in self.kept.items()}


@dataclass(frozen=True, eq=False)
class MaskPlan:
    """Boolean keep-masks shaped like each layer's weight (True keeps the weight; layers left out stay dense)."""

    masks: Mapping[str, torch.Tensor]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MaskPlan):
            return NotImplemented
        return list(self.masks) == list(other.masks) and all(
            torch.equal(self.masks[layer], other.masks[layer]) for layer in self.masks)

    __hash__ = None

    def counts(self) -> dict[str, int]:
        return {layer: int(mask.sum()) for layer, mask in self.masks.items()}

    def sparsity(self) -> float:
        """Fraction of the masked layers' weights that the plan zeroes."""
        total = sum(mask.numel() for mask in self.masks.values())
        return 1 - sum(self.counts().values()) / total if total else 0.0


Plan = Union[ChannelPlan, MaskPlan]


def keep_counts(sizes: Mapping[str, int], ratio: float) -> dict[str, int]:
    """Units kept per layer when a fraction ``ratio`` is removed from each; never fewer than one."""
    return {layer: max(1, math.floor(size * (1 - ratio) + 0.5)) for layer, size in sizes.items()}


def _top_indices(scores: torch.Tensor, count: int) -> torch.Tensor:
    """Indices of the ``count`` highest scores; ties go to the lower index."""
    order = torch.sort(scores.detach().flatten().double().cpu(), descending=True, stable=True).indices
    return order[:count]


def keep_top(scores: Mapping[str, torch.Tensor], keep: Mapping[str, int]) -> ChannelPlan:
    """Keep the ``keep[layer]`` highest-scoring channels of each layer (ties go to the lower index)."""
    return ChannelPlan({layer: tuple(sorted(_top_indices(scores[layer], count).tolist()))
                        for layer, count in keep.items()})


def keep_top_weights(scores: Mapping[str, torch.Tensor], keep: Mapping[str, int]) -> MaskPlan:
    """Keep the ``keep[layer]`` highest-scoring weights of each layer; ``scores`` are shaped like the weights."""
    masks = {}
    for layer, count in keep.items():
        mask = torch.zeros(scores[layer].numel(), dtype=torch.bool)
        mask[_top_indices(scores[layer], count)] = True
        masks[layer] = mask.reshape(scores[layer].shape)
    return MaskPlan(masks)
