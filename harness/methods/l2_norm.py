"""L2-norm filter pruning: the Euclidean-norm variant of PFEC's criterion that Li et al. (ICLR 2017)
compare against, and the norm Soft Filter Pruning (He et al., IJCAI 2018) ranks by."""

from harness.methods.registry import PruningContext, register_method
from harness.plans import ChannelPlan


@register_method("l2-norm", kind="structured",
                 citation="Li et al., Pruning Filters for Efficient ConvNets, ICLR 2017 (L2 variant)")
def l2_norm(ctx: PruningContext) -> ChannelPlan:
    return ctx.keep_top({name: conv.weight.detach().flatten(1).norm(dim=1) for name, conv in ctx.modules().items()})
