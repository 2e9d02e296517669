"""FPGM: He, Liu, Wang, Hu & Yang, "Filter Pruning via Geometric Median for Deep Convolutional Neural
Networks Acceleration", CVPR 2019. Filters near the layer's geometric median are the most
replaceable by the others; a filter's score is its summed Euclidean distance to every other filter,
and the filters with the smallest sums are pruned."""

import torch

from harness.methods.registry import PruningContext, register_method
from harness.plans import ChannelPlan


@register_method("fpgm", kind="structured",
                 citation="He et al., Filter Pruning via Geometric Median for Deep CNN Acceleration, CVPR 2019")
def fpgm(ctx: PruningContext) -> ChannelPlan:
    scores = {}
    for name, conv in ctx.modules().items():
        filters = conv.weight.detach().flatten(1).double()
        scores[name] = torch.cdist(filters, filters).sum(1)
    return ctx.keep_top(scores)
