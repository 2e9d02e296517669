"""First-order Taylor importance on the weights: Molchanov, Mallya, Tyree, Frosio & Kautz, "Importance
Estimation for Neural Network Pruning", CVPR 2019 -- the variant on weights (the weight criterion of
Tables 1 and 2; NVlabs/Taylor_pruning, method 0). A filter's importance is ``sum over its weights of
(g * w)^2``: each weight's first-order contribution squared, then summed over the filter (not the
filter's sum squared), per mini-batch of the mean cross-entropy, averaged over the context's training
batches. Batch norms use batch statistics, as in the paper, and the model is left as it was;
importances are compared across layers, so the method ranks globally wherever the target lets it.
The paper's own choice is the gate variant, ``taylor``."""

import torch
from torch import nn

from harness.methods.registry import PruningContext, register_method
from harness.plans import ChannelPlan


@register_method("taylor-weight", kind="structured", needs_data=True, global_ranking=True,
                 citation="Molchanov et al., Importance Estimation for Neural Network Pruning, CVPR 2019 "
                          "(Taylor FO on the weights)")
def taylor_weight(ctx: PruningContext) -> ChannelPlan:
    layers = ctx.modules()
    weights = [conv.weight for conv in layers.values()]
    totals = [torch.zeros(w.shape[0], dtype=torch.float64) for w in weights]
    batches = 0
    with ctx.batch_statistics():
        for inputs, labels in ctx.train_batches():
            loss = nn.functional.cross_entropy(ctx.model(inputs), labels)
            for total, weight, grad in zip(totals, weights, torch.autograd.grad(loss, weights)):
                total += (grad * weight).detach().double().pow(2).flatten(1).sum(1).cpu()
            batches += 1
    return ctx.keep_top({name: total / max(batches, 1) for name, total in zip(layers, totals)})
