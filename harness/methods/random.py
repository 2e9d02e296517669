"""Random filter pruning: channels drawn uniformly from the run's method stream -- the baseline
that Liu et al., "Rethinking the Value of Network Pruning" (ICLR 2019) and Le & Hua (ICLR 2021)
show retraining can make competitive."""

import torch

from harness.methods.registry import PruningContext, register_method
from harness.plans import ChannelPlan


@register_method("random", kind="structured",
                 citation="Liu et al., Rethinking the Value of Network Pruning, ICLR 2019 (random baseline)")
def random_channels(ctx: PruningContext) -> ChannelPlan:
    return ctx.keep_top({name: torch.rand(size, generator=ctx.generator, dtype=torch.float64)
                         for name, size in ctx.sizes.items()})
