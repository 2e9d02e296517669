"""GReg-1: Wang, Qin, Zhang & Fu, "Neural Pruning via Growing Regularization", ICLR 2021. The filters to remove
are chosen once, by L1 norm in each layer (magnitude pruning's choice); an L2 penalty ``lambda/2 * ||w||^2`` on
exactly those filters then grows while training goes on, so they fade while the rest of the network adapts, and
are removed at the end. The official code (MingSun-Tse/Regularization-Pruning, ``pruner/reg_pruner.py``, method
IncReg) adds ``lambda * w`` to those filters' conv-weight gradients, raises ``lambda`` by 1e-4 every 5 iterations
(its defaults) up to a ceiling of 1 -- at most 50k iterations at rate 0.001, momentum 0.9 -- holds it there for
40k more ("stabilize_reg"), then prunes the chosen filters and fine-tunes.

Here that training is the method's pre-pruning phase: half of the run's budget, from the converged dense model,
at the recipe's last rate (``harness.methods.phase``; 0.001 on digits, the official pruning rate). The first
penalty call, before the first step, chooses the filters to each layer's ``keep`` count and stores them in
``PhaseContext.memory``; ``select`` removes exactly those (``l1-norm``'s choice on the dense model, which is
also what it falls back to when no phase ran, at budget 0). What was scaled: the official ~90k steps become a
digits phase of 100 to 300 (5 to 15 epochs of 20 steps), so the step ramp becomes a linear ramp in the phase's
progress over its first half (``RAMP``; the official ramp is up to 5/9 of its iterations), then the ceiling is
held, and the ceiling is raised from 1 to ``CEILING``. At rate 0.001 and momentum 0.9 ``lambda`` shrinks the
filters by about ``0.01 * lambda`` per step, but each filter feeds a batch norm, which undoes the shrink in
training, so the loss's gradient on a filter grows as its norm falls and the two settle at a norm that falls
only as ``lambda ** -1/4``: measured on digits over a 5-epoch phase, a ceiling of 1 leaves the chosen filters
at ~50% of their norm, 3 at ~6%, 10 at ~4%, 30 at ~3%: 10 is where a larger ceiling stops paying. In training
the batch norm still rescales a filter at 4% to full strength (its output variance, ~0.5% of the dense one,
stays far above the norm's ``eps``), so after a phase this short the chosen channels still carry their signal
when they are removed; the retraining after pruning recovers from it."""

import torch

from harness.methods.registry import PruningContext, register_method
from harness.methods.training import PhaseContext, TrainingPhase
from harness.plans import ChannelPlan, keep_top

CEILING = 10.0
"""Largest penalty coefficient ``lambda``, for a phase at the recipe's last rate (the official 1 is for ~90k steps)."""
RAMP = 0.5
"""Share of the phase over which ``lambda`` grows linearly from 0 to ``CEILING``; it stays there after."""
PHASE_FRACTION = 0.5
"""Share of the run's budget spent on growing the penalty before pruning."""


def smallest_l1(layers: dict[str, torch.nn.Module], keep: dict[str, int]) -> dict[str, list[int]]:
    """The filters of each layer outside its ``keep[layer]`` largest L1 norms (ties keep the lower index)."""
    kept = keep_top({name: conv.weight.detach().abs().flatten(1).sum(1) for name, conv in layers.items()}, keep).kept
    return {name: sorted(set(range(layers[name].weight.shape[0])) - set(kept[name])) for name in kept}


def coefficient(progress: float) -> float:
    """``lambda`` at a share ``progress`` of the phase."""
    return CEILING * min(1.0, progress / RAMP)


def growing_l2(phase: PhaseContext) -> torch.Tensor:
    layers = phase.modules()
    if "pruned" not in phase.memory:
        phase.memory["pruned"] = smallest_l1(layers, dict(phase.keep))
    squares = sum(layers[name].weight[filters].pow(2).sum() for name, filters in phase.memory["pruned"].items())
    return 0.5 * coefficient(phase.progress) * squares


@register_method("greg", kind="structured", training=TrainingPhase(PHASE_FRACTION, penalty=growing_l2),
                 citation="Wang et al., Neural Pruning via Growing Regularization, ICLR 2021 (GReg-1)")
def greg(ctx: PruningContext) -> ChannelPlan:
    layers = ctx.modules()
    pruned = ctx.memory.get("pruned") or smallest_l1(layers, dict(ctx.keep))
    return ChannelPlan({name: tuple(sorted(set(range(ctx.sizes[name])) - set(pruned[name]))) for name in ctx.keep})
