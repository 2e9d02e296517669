"""Batch-norm scale criterion of Network Slimming: Liu, Li, Shen, Huang, Yan & Zhang, "Learning
Efficient Convolutional Networks through Network Slimming", ICCV 2017. A channel's importance is
the magnitude of its BN scaling factor gamma; the paper thresholds gammas across the whole network,
so this method ranks globally under a global target. (Its sparsity-inducing training is retraining,
which the harness owns, so only the criterion is here.)"""

from harness.methods.registry import PruningContext, register_method
from harness.plans import ChannelPlan


@register_method("bn-scale", kind="structured", global_ranking=True,
                 citation="Liu et al., Learning Efficient Convolutional Networks through Network Slimming, ICCV 2017")
def bn_scale(ctx: PruningContext) -> ChannelPlan:
    return ctx.keep_top({name: bn.weight.detach().abs() for name, bn in ctx.batchnorms().items()})
