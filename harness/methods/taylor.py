"""First-order Taylor importance: Molchanov, Mallya, Tyree, Frosio & Kautz, "Importance Estimation for
Neural Network Pruning", CVPR 2019. A filter's importance is the squared first-order estimate of the
loss change when it is removed, ``(sum_s g_s * w_s)^2`` over its weights, averaged over training
batches. The paper ranks filters across layers, so this method ranks globally under a global target."""

import torch
from torch import nn

from harness.methods.registry import PruningContext, register_method
from harness.plans import ChannelPlan


@register_method("taylor", kind="structured", needs_data=True, global_ranking=True,
                 citation="Molchanov et al., Importance Estimation for Neural Network Pruning, CVPR 2019")
def taylor(ctx: PruningContext) -> ChannelPlan:
    layers = ctx.modules()
    weights = [conv.weight for conv in layers.values()]
    totals = [torch.zeros(w.shape[0], dtype=torch.float64, device=w.device) for w in weights]
    batches = 0
    for inputs, labels in ctx.train_batches():
        loss = nn.functional.cross_entropy(ctx.model(inputs), labels)
        for total, weight, grad in zip(totals, weights, torch.autograd.grad(loss, weights)):
            total += (grad * weight).detach().flatten(1).sum(1).double().pow(2)
        batches += 1
    return ctx.keep_top({name: total / max(batches, 1) for name, total in zip(layers, totals)})
