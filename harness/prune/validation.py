"""Plan validation: a method's plan is checked before anything is applied, and one line names the method, the
layer and the rule it broke."""

from __future__ import annotations

import math
from typing import Callable, Mapping

import torch

from harness.core.errors import BenchError
from harness.plans import ChannelPlan, MaskPlan, Plan


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
