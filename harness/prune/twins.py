"""Random twins: the control every method is compared with -- the same count per layer, units drawn at random
with the run's seed, so a method's criterion is the only thing that differs from its twin."""

from __future__ import annotations

import math
from typing import Mapping

import torch

from harness.plans import ChannelPlan, MaskPlan, Plan


def random_twin(plan: Plan, sizes: Mapping[str, int], generator: torch.Generator) -> Plan:
    """The control every method is compared with: the same count per layer, units chosen at random."""
    if isinstance(plan, MaskPlan):
        return random_plan({layer: int(mask.sum()) for layer, mask in plan.masks.items()},
                           {layer: tuple(mask.shape) for layer, mask in plan.masks.items()}, generator)
    return random_plan({layer: len(kept) for layer, kept in plan.kept.items()},
                       {layer: (sizes[layer],) for layer in plan.kept}, generator, structured=True)


def random_plan(counts: Mapping[str, int], shapes: Mapping[str, tuple[int, ...]], generator: torch.Generator,
                structured: bool = False) -> Plan:
    """``counts[layer]`` units of each layer drawn at random (channels, or weights of a weight shaped
    ``shapes[layer]``), layers in name order so the draw does not depend on the plan's order."""
    if structured:
        kept = {layer: tuple(sorted(torch.randperm(shapes[layer][0], generator=generator)[: counts[layer]].tolist()))
                for layer in sorted(counts)}
        return ChannelPlan({layer: kept[layer] for layer in counts})
    masks = {}
    for layer in sorted(counts):
        size = math.prod(shapes[layer])
        mask = torch.zeros(size, dtype=torch.bool)
        mask[torch.randperm(size, generator=generator)[: counts[layer]]] = True
        masks[layer] = mask.reshape(shapes[layer])
    return MaskPlan({layer: masks[layer] for layer in counts})
