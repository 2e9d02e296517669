"""Example plugin method (see CONTRIBUTING.md): APoZ, the Average Percentage of Zeros -- Hu, Peng, Tai
& Tang, "Network Trimming: A Data-Driven Neuron Pruning Approach towards Efficient Deep
Architectures", arXiv:1607.03250, 2016.

A channel whose activations after batch norm and ReLU are mostly zero on training images carries
little signal, so the channels with the highest APoZ are removed. The harness gives the method a
copy of the dense model and a few training batches; it returns which channels to keep and never
trains, sees validation or test data, or touches the optimizer.

Run it like any method: ``bench submit bench/methods/example_apoz.py``.
"""

import torch

from harness.methods import PruningContext, register_method
from harness.plans import ChannelPlan


@register_method("example-apoz", kind="structured", needs_data=True,
                 citation="Hu et al., Network Trimming: A Data-Driven Neuron Pruning Approach, arXiv:1607.03250")
def example_apoz(ctx: PruningContext) -> ChannelPlan:
    """Keep the channels whose post-ReLU activations are non-zero most often."""
    batchnorms = ctx.batchnorms(required=False)
    nonzero = {name: torch.zeros(size, dtype=torch.float64) for name, size in ctx.sizes.items()}
    positions = {name: 0 for name in ctx.sizes}

    def count(name: str, output: torch.Tensor) -> None:
        active = torch.relu(output) > 0
        nonzero[name] += active.transpose(0, 1).flatten(1).sum(1).double().cpu()
        positions[name] += active[:, 0].numel()

    hooks = [batchnorms.get(name, conv).register_forward_hook(
        lambda _module, _inputs, output, name=name: count(name, output)) for name, conv in ctx.modules().items()]
    try:
        with torch.no_grad():
            for inputs, _labels in ctx.train_batches():
                ctx.model(inputs)
    finally:
        for hook in hooks:
            hook.remove()
    return ctx.keep_top({name: nonzero[name] / max(positions[name], 1) for name in ctx.sizes})
