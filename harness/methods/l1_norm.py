"""L1-norm filter pruning: Li, Kadav, Durdanovic, Samet & Graf, "Pruning Filters for Efficient
ConvNets" (PFEC), ICLR 2017 -- keep the filters with the largest sum of absolute weights."""

from harness.methods.registry import PruningContext, register_method
from harness.plans import ChannelPlan


@register_method("l1-norm", kind="structured", citation="Li et al., Pruning Filters for Efficient ConvNets, ICLR 2017")
def l1_norm(ctx: PruningContext) -> ChannelPlan:
    return ctx.keep_top({name: conv.weight.detach().abs().flatten(1).sum(1) for name, conv in ctx.modules().items()})
