"""Network Slimming: Liu, Li, Shen, Huang, Yan & Zhang, "Learning Efficient Convolutional Networks through
Network Slimming", ICCV 2017. Training adds an L1 penalty ``lambda * sum |gamma|`` over the scale of every
batch norm (the official code, Eric-mingjie/network-slimming ``main.py``'s ``updateBN``, adds its subgradient
``lambda * sign(gamma)`` after each backward pass for every ``BatchNorm2d``: the same update); then one global
threshold on ``|gamma|`` removes channels (``vggprune.py``), which is ``bn-scale``'s criterion.

Here the sparsity training is the method's pre-pruning phase: half of the run's budget, from the converged
dense model, at the recipe's last rate (``harness.methods.phase``). The paper's ``lambda`` (1e-4 for VGG,
1e-5 for ResNets) belongs to 160 epochs at rate 0.1; a phase of a few epochs at rate 0.001 moves ``gamma`` by
about ``steps * rate * lambda / (1 - momentum)``, so this file scales ``lambda`` to make the same push in the
phase (``SPARSITY``): on digits it halves the smallest scales before pruning."""

import torch
from torch import nn

from harness.methods.registry import PruningContext, register_method
from harness.methods.training import PhaseContext, TrainingPhase
from harness.plans import ChannelPlan

SPARSITY = 1e-2
"""``lambda`` of the L1 penalty on batch-norm scales, for a phase at the recipe's last rate."""
PHASE_FRACTION = 0.5
"""Share of the run's budget spent on sparsity training before pruning."""


def l1_on_scales(phase: PhaseContext) -> torch.Tensor:
    return SPARSITY * sum(module.weight.abs().sum() for module in phase.model.modules()
                          if isinstance(module, nn.BatchNorm2d))


@register_method("network-slimming", kind="structured", global_ranking=True,
                 training=TrainingPhase(PHASE_FRACTION, penalty=l1_on_scales),
                 citation="Liu et al., Learning Efficient Convolutional Networks through Network Slimming, ICCV 2017")
def network_slimming(ctx: PruningContext) -> ChannelPlan:
    return ctx.keep_top({name: bn.weight.detach().abs() for name, bn in ctx.batchnorms().items()})
