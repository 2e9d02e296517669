"""Network Slimming: Liu, Li, Shen, Huang, Yan & Zhang, "Learning Efficient Convolutional Networks through
Network Slimming", ICCV 2017. Training adds an L1 penalty ``lambda * sum |gamma|`` over the scale of every
batch norm (the official code, Eric-mingjie/network-slimming ``main.py``'s ``updateBN``, adds its subgradient
``lambda * sign(gamma)`` after each backward pass for every ``BatchNorm2d``: the same update); then one global
threshold on ``|gamma|`` removes channels (``vggprune.py``), which is ``bn-scale``'s criterion.

Here the sparsity training is the method's pre-pruning phase: half of the run's budget, from the converged
dense model, at the recipe's last rate (``harness.methods.phase``). The paper's ``lambda`` (1e-4 for VGG,
1e-5 for ResNets) belongs to 160 epochs at rates from 0.1 down; a phase of 100-200 steps at 0.001 moves each
``gamma`` by about ``steps * rate * lambda / (1 - momentum)``, so ``lambda`` here (``SPARSITY``) was chosen
on the validation split among 0.01, 0.1 and 1 (digits, seeds 0-1, uniform-50/75, ft and clr at budgets 10
and 20): 0.1 scored 91.1% mean validation accuracy, 0.01 90.9%, 1 -- the paper's whole push of 160 epochs
in one phase -- 48.8%, every scale driven toward zero. On the seed-0 digits model a 5-epoch phase at 0.1 moves
``|gamma|`` (min / lower quartile / median) from 0.72 / 0.97 / 1.15 to 0.63 / 0.88 / 1.06; at 1 to 0.002 /
0.09 / 0.25. A phase this short shifts the scales without making them sparse; that is what this method is
at an equal total budget."""

import torch
from torch import nn

from harness.methods.registry import PruningContext, register_method
from harness.methods.training import PhaseContext, TrainingPhase
from harness.plans import ChannelPlan

SPARSITY = 1e-1
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
