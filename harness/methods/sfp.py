"""Soft Filter Pruning: He, Kang, Dong, Fu & Yang, "Soft Filter Pruning for Accelerating Deep Convolutional Neural
Networks", IJCAI 2018. After every training epoch the filters of smallest L2 norm in each layer are set to zero
but stay in the network and keep training, so a filter zeroed by mistake can grow back; after the last epoch the
zeroed filters are removed. What is zeroed is the conv weights alone: the official code (he-y/soft-filter-pruning,
``pruning_cifar10_resnet.py``, class ``Mask``) masks every third parameter of the ResNet -- the conv weights --
and leaves batch norms alone, and so does this file (a zeroed filter's channel still carries its batch norm's
shift until the channel is removed).

Here the soft pruning is the method's pre-pruning phase: half of the run's budget, from the converged dense model,
at the recipe's last rate (``harness.methods.phase``), with the paper's schedule of one zeroing per epoch (its
Algorithm 1, and the code's ``epoch_prune = 1``): the phase's hook, at each epoch's last step, leaves only each
layer's ``keep`` largest-L2 filters nonzero. ``select`` keeps the largest-L2 filters, so after the phase it
removes exactly the filters zeroed at its end (on the dense model, at budget 0, it is ``l2-norm``). What was
scaled: nothing but the number of zero-and-recover cycles, one per phase epoch (5 to 15 on digits, against the
paper's 200 epochs on CIFAR); the code also zeroes once before its first epoch, the paper's algorithm and this
phase do not. The rest of the budget retrains the pruned network, which the paper does not do (its SFP network
is trained from scratch or from a pretrained one under the zeroing and then only pruned)."""

from collections.abc import Mapping

import torch
from torch import nn

from harness.methods.registry import PruningContext, register_method
from harness.methods.training import PhaseContext, TrainingPhase
from harness.plans import ChannelPlan, keep_top

PHASE_FRACTION = 0.5
"""Share of the run's budget spent training with soft pruning before the filters are removed."""


def filter_norms(layers: Mapping[str, nn.Module]) -> dict[str, torch.Tensor]:
    """Each prunable layer's filters' L2 norms."""
    return {name: conv.weight.detach().flatten(1).norm(dim=1) for name, conv in layers.items()}


def zero_smallest(phase: PhaseContext) -> None:
    if not phase.end_of_epoch:
        return
    layers = phase.modules()
    kept = keep_top(filter_norms(layers), phase.keep).kept
    for name, indices in kept.items():
        zeroed = sorted(set(range(layers[name].weight.shape[0])) - set(indices))
        layers[name].weight[zeroed] = 0


@register_method("sfp", kind="structured", training=TrainingPhase(PHASE_FRACTION, hook=zero_smallest),
                 citation="He et al., Soft Filter Pruning for Accelerating Deep Convolutional Neural Networks, "
                          "IJCAI 2018")
def sfp(ctx: PruningContext) -> ChannelPlan:
    return ctx.keep_top(filter_norms(ctx.modules()))
