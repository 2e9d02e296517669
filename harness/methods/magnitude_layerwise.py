"""Layer-wise magnitude pruning: Han, Pool, Tran & Dally, "Learning both Weights and Connections for
Efficient Neural Networks", NeurIPS 2015 -- zero the smallest-magnitude weights, the same fraction
in every layer (the paper sets each layer's fraction by its sensitivity; here the target sets it).
Layers covered: conv weights only, the layers the harness masks for unstructured methods
(``harness.prune.allocation.maskable_layers``); linear layers stay dense, where the paper prunes its
fully connected layers too."""

from harness.methods.registry import PruningContext, register_method
from harness.plans import MaskPlan


@register_method("magnitude-layerwise", kind="unstructured",
                 citation="Han et al., Learning both Weights and Connections for Efficient Neural Networks, NeurIPS 2015")
def magnitude_layerwise(ctx: PruningContext) -> MaskPlan:
    return ctx.keep_top({name: layer.weight.detach().abs() for name, layer in ctx.modules().items()})
