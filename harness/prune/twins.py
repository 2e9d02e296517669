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
