"""Pruning plans: what a method decides, as plain data the harness can check, twin and apply.

A method never edits a model. A structured method returns a ``ChannelPlan`` -- the output
channels to keep in each prunable layer; an unstructured one returns a ``MaskPlan`` -- a
boolean keep-mask per weight. The harness validates the plan, builds its random twin and
applies it (surgery for channels, masking for weights).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Union

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


def random_twin(plan: Plan, sizes: Mapping[str, int], generator: torch.Generator) -> Plan:
    """The control every method is compared with: the same count per layer, units chosen at random."""
    if isinstance(plan, MaskPlan):
        masks = {}
        for layer in sorted(plan.masks):
            shape = plan.masks[layer].shape
            chosen = torch.randperm(math.prod(shape), generator=generator)[: int(plan.masks[layer].sum())]
            mask = torch.zeros(math.prod(shape), dtype=torch.bool)
            mask[chosen] = True
            masks[layer] = mask.reshape(shape)
        return MaskPlan({layer: masks[layer] for layer in plan.masks})
    kept = {}
    for layer in sorted(plan.kept):
        choice = torch.randperm(sizes[layer], generator=generator)[: len(plan.kept[layer])]
        kept[layer] = tuple(sorted(choice.tolist()))
    return ChannelPlan({layer: kept[layer] for layer in plan.kept})


def validate_plan(
    method: str,
    plan: object,
    shapes: Mapping[str, tuple[int, ...]],
    keep: Mapping[str, int] | None,
    goal_miss: Callable[[dict[str, int]], str | None] | None = None,
    kind: str = "structured",
) -> Plan:
    """Check a method's plan before anything is applied; one line names the method, the layer and the rule.

    ``shapes`` gives each prunable layer's unit array: ``(channels,)`` for channel plans, the
    weight's shape for masks. With ``keep`` the plan must keep exactly that many units per layer;
    a method that ranks globally is instead held to the target's goal through ``goal_miss``.
    """
    expected = MaskPlan if kind == "unstructured" else ChannelPlan
    if not isinstance(plan, expected):
        raise BenchError(f"method '{method}': returned {type(plan).__name__}, expected a {expected.__name__} "
                         f"(the method is registered as {kind})")
    checked = _check_masks(method, plan, shapes) if isinstance(plan, MaskPlan) else _check_channels(method, plan, shapes)
    counts = checked.counts()
    unit = "weights" if isinstance(plan, MaskPlan) else "channels"
    if keep is not None:
        for layer, count in keep.items():
            got = counts.get(layer, math.prod(shapes[layer]))
            if got != count:
                raise BenchError(f"method '{method}', layer '{layer}': keeps {got} {unit} but the target asks for {count}")
    if goal_miss is not None:
        miss = goal_miss({layer: counts.get(layer, math.prod(shape)) for layer, shape in shapes.items()})
        if miss:
            raise BenchError(f"method '{method}': {miss}")
    return checked


def _where(method: str, layer: str) -> str:
    return f"method '{method}', layer '{layer}'"


def _check_layer_name(method: str, layer: str, shapes: Mapping[str, tuple[int, ...]]) -> None:
    if layer not in shapes:
        raise BenchError(f"{_where(method, layer)}: not a prunable layer of this track (prunable: {', '.join(shapes)})")


def _check_channels(method: str, plan: ChannelPlan, shapes: Mapping[str, tuple[int, ...]]) -> ChannelPlan:
    for layer, indices in plan.kept.items():
        where = _where(method, layer)
        _check_layer_name(method, layer, shapes)
        size = shapes[layer][0]
        if any(not isinstance(i, int) or isinstance(i, bool) for i in indices):
            raise BenchError(f"{where}: channel indices must be integers")
        if len(set(indices)) != len(indices):
            raise BenchError(f"{where}: channel indices must be unique")
        if any(i < 0 or i >= size for i in indices):
            raise BenchError(f"{where}: channel index out of range 0..{size - 1}")
        if not indices:
            raise BenchError(f"{where}: keeps no channel; at least one must stay")
    return ChannelPlan({layer: tuple(sorted(indices)) for layer, indices in plan.kept.items()})


def _check_masks(method: str, plan: MaskPlan, shapes: Mapping[str, tuple[int, ...]]) -> MaskPlan:
    for layer, mask in plan.masks.items():
        where = _where(method, layer)
        _check_layer_name(method, layer, shapes)
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            raise BenchError(f"{where}: a mask must be a boolean tensor")
        if tuple(mask.shape) != tuple(shapes[layer]):
            raise BenchError(f"{where}: mask shape {tuple(mask.shape)} differs from the weight's {tuple(shapes[layer])}")
        if not bool(mask.any()):
            raise BenchError(f"{where}: keeps no weight; at least one must stay")
    return MaskPlan({layer: mask.detach().cpu() for layer, mask in plan.masks.items()})
