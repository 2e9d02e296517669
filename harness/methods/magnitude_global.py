"""Global magnitude pruning: one ``|w|`` threshold across every masked layer, as in Frankle & Carbin,
"The Lottery Ticket Hypothesis" (ICLR 2019, deeper networks) and the ShrinkBench baseline of
Blalock et al., "What is the State of Neural Network Pruning?" (MLSys 2020). Under a global MACs or
parameter target the ranking decides how sparse each layer becomes; a ratio target keeps its total
but lets the threshold spread it. Layers covered: conv weights only, the layers the harness masks for
unstructured methods (``harness.prune.allocation.maskable_layers``), as the weight-level code of Liu et
al.'s "Rethinking the Value of Network Pruning" (``cifar/weight-level/cifar_prune.py``) thresholds conv
weights alone; linear layers stay dense."""

from harness.methods.registry import PruningContext, register_method
from harness.plans import MaskPlan


@register_method("magnitude-global", kind="unstructured", global_ranking=True,
                 citation="Blalock et al., What is the State of Neural Network Pruning?, MLSys 2020 (global magnitude)")
def magnitude_global(ctx: PruningContext) -> MaskPlan:
    return ctx.keep_top({name: layer.weight.detach().abs() for name, layer in ctx.modules().items()})
