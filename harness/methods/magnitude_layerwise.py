"""Layer-wise magnitude pruning: Han, Pool, Tran & Dally, "Learning both Weights and Connections for
Efficient Neural Networks", NeurIPS 2015 -- zero the smallest-magnitude weights, the same fraction
in every layer."""

from harness.methods.registry import PruningContext, register_method
from harness.plans import MaskPlan


@register_method("magnitude-layerwise", kind="unstructured",
                 citation="Han et al., Learning both Weights and Connections for Efficient Neural Networks, NeurIPS 2015")
def magnitude_layerwise(ctx: PruningContext) -> MaskPlan:
    return ctx.keep_top({name: layer.weight.detach().abs() for name, layer in ctx.modules().items()})
