"""First-order Taylor importance on a gate after batch norm: Molchanov, Mallya, Tyree, Frosio & Kautz,
"Importance Estimation for Neural Network Pruning", CVPR 2019 -- the "gate after BN" variant (Table 2;
Taylor FO in Table 1), which the authors' released configs use (NVlabs/Taylor_pruning, method 22).

A gate of ones multiplies each output channel of the batch norm that follows a prunable conv (the conv's
own output where no batch norm follows). Its gradient is ``sum over batch and positions of dL/dy * y``
for that BN output ``y``: the first-order change of the loss when the channel is zeroed. A channel's
importance is that gradient times the gate (1), squared, per mini-batch of the mean cross-entropy, then
averaged over the context's training batches. Batch norms use batch statistics, as in the paper, where
the criterion is gathered during training; the model's modes and running statistics are left as they
were. Importances are compared across layers (the paper's one global threshold, no per-layer
normalisation), so the method ranks globally wherever the target lets it. The paper gathers the
criterion over 30 mini-batches between pruning steps and prunes iteratively with momentum 0.9; here it
is one pruning step over the harness's batches."""

import torch
from torch import nn

from harness.methods.registry import PruningContext, register_method
from harness.plans import ChannelPlan


@register_method("taylor", kind="structured", needs_data=True, global_ranking=True,
                 citation="Molchanov et al., Importance Estimation for Neural Network Pruning, CVPR 2019 "
                          "(Taylor FO on a gate after BN)")
def taylor(ctx: PruningContext) -> ChannelPlan:
    layers = ctx.modules()
    batchnorms = ctx.batchnorms(required=False)
    gates = {name: torch.ones(ctx.sizes[name], device=conv.weight.device, requires_grad=True)
             for name, conv in layers.items()}
    totals = {name: torch.zeros(size, dtype=torch.float64) for name, size in ctx.sizes.items()}
    batches = 0

    def gated(output: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        return output * gate.view(1, -1, *[1] * (output.dim() - 2))

    hooks = [batchnorms.get(name, conv).register_forward_hook(
        lambda _m, _i, output, gate=gates[name]: gated(output, gate)) for name, conv in layers.items()]
    try:
        with ctx.batch_statistics():
            for inputs, labels in ctx.train_batches():
                loss = nn.functional.cross_entropy(ctx.model(inputs), labels)
                grads = torch.autograd.grad(loss, list(gates.values()))
                for total, gate, grad in zip(totals.values(), gates.values(), grads):
                    total += (grad * gate).detach().double().pow(2).cpu()
                batches += 1
    finally:
        for hook in hooks:
            hook.remove()
    return ctx.keep_top({name: total / max(batches, 1) for name, total in totals.items()})
