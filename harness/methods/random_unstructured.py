"""Random unstructured pruning: weights zeroed uniformly at random, the same fraction per layer -- the
random baseline of Blalock et al., "What is the State of Neural Network Pruning?", MLSys 2020."""

import torch

from harness.methods.registry import PruningContext, register_method
from harness.plans import MaskPlan


@register_method("random-unstructured", kind="unstructured",
                 citation="Blalock et al., What is the State of Neural Network Pruning?, MLSys 2020 (random baseline)")
def random_unstructured(ctx: PruningContext) -> MaskPlan:
    return ctx.keep_top({name: torch.rand(layer.weight.shape, generator=ctx.generator, dtype=torch.float64)
                         for name, layer in ctx.modules().items()})
