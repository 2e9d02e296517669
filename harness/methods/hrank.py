"""HRank: Lin, Ji, Wang, Zhang, Zhang, Tian & Shao, "HRank: Filter Pruning using High-Rank Feature
Map", CVPR 2020. A filter's importance is the average matrix rank of its feature map (the
activation after batch norm and ReLU) over training images; low-rank maps carry less information."""

import torch

from harness.methods.registry import PruningContext, register_method
from harness.plans import ChannelPlan


@register_method("hrank", kind="structured", needs_data=True,
                 citation="Lin et al., HRank: Filter Pruning using High-Rank Feature Map, CVPR 2020")
def hrank(ctx: PruningContext) -> ChannelPlan:
    batchnorms = ctx.batchnorms(required=False)
    totals = {name: torch.zeros(size, dtype=torch.float64) for name, size in ctx.sizes.items()}
    images = 0

    def add_ranks(name: str, feature_map: torch.Tensor) -> None:
        ranks = torch.linalg.matrix_rank(torch.relu(feature_map).double())
        totals[name] += ranks.sum(0).cpu().double()

    hooks = [batchnorms.get(name, conv).register_forward_hook(
        lambda _m, _i, output, name=name: add_ranks(name, output)) for name, conv in ctx.modules().items()]
    try:
        with torch.no_grad():
            for inputs, _labels in ctx.train_batches():
                ctx.model(inputs)
                images += inputs.shape[0]
    finally:
        for hook in hooks:
            hook.remove()
    return ctx.keep_top({name: total / max(images, 1) for name, total in totals.items()})

