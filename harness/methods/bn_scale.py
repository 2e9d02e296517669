"""Batch-norm scale criterion of Network Slimming: Liu, Li, Shen, Huang, Yan & Zhang, "Learning
Efficient Convolutional Networks through Network Slimming", ICCV 2017. A channel's importance is
``|gamma|`` of the batch norm its conv feeds. The paper (and its code, Eric-mingjie/network-slimming,
``vggprune.py``) removes a global fraction of channels by one threshold on ``|gamma|`` over every layer,
so the method ranks globally: under a global MACs or parameter target the lowest ``|gamma|`` across all
prunable layers go first until the target is met (one channel stays in every layer); a ratio or
per-layer target fixes each layer's count, and the largest ``|gamma|`` of each layer stay. Only the
criterion is here: the paper's sparsity training (an L1 penalty on ``gamma`` before pruning) changes
training, so it belongs to the training methods (their own issue), not to this file; the dense models
this method sees are trained without it."""

from harness.methods.registry import PruningContext, register_method
from harness.plans import ChannelPlan


@register_method("bn-scale", kind="structured", global_ranking=True,
                 citation="Liu et al., Learning Efficient Convolutional Networks through Network Slimming, ICCV 2017")
def bn_scale(ctx: PruningContext) -> ChannelPlan:
    return ctx.keep_top({name: bn.weight.detach().abs() for name, bn in ctx.batchnorms().items()})
