"""Iterative magnitude pruning: prune the smallest-magnitude weights across all layers, retrain, and repeat, as in
Frankle & Carbin, "The Lottery Ticket Hypothesis: Finding Sparse, Trainable Neural Networks", ICLR 2019 (iterative
global pruning, for its deeper networks), and in the iterative setting of Renda, Frankle & Carbin, "Comparing
Rewinding and Fine-tuning in Neural Network Pruning", ICLR 2020, which retrains between rounds by fine-tuning or
by rewinding the learning rate, instead of rewinding the weights.

Here the iteration is the harness's pruning rounds (``rounds=ROUNDS``; no phase before pruning): each round keeps
the largest ``|w|`` over the masked layers (conv weights, as ``magnitude-global``; one global ranking under a
global target), the kept fraction falls geometrically to the target, and every round retrains under the run's
schedule for its share of the budget (``harness.methods.training.split_budget``), so ``ft`` and ``lrw`` runs are
Renda et al.'s fine-tuning and learning-rate rewinding. Weights are never rewound to an earlier checkpoint (the
lottery ticket's rewinding), and a weight once pruned stays pruned: it is zero under its mask, so it ranks last.
What was scaled: the papers prune 20% of what is left per round, each round a full retraining, for as many rounds
as the sparsity needs; a budget of 10 to 30 digits epochs affords three rounds of at least 3 epochs, which at a
50% target remove 21% of what is left each, the papers' rate (37% at 75%)."""

from harness.methods.registry import PruningContext, register_method
from harness.plans import MaskPlan

ROUNDS = 3
"""Pruning rounds inside the run's budget; retraining follows each."""


@register_method("imp", kind="unstructured", global_ranking=True, rounds=ROUNDS,
                 citation="Frankle & Carbin, The Lottery Ticket Hypothesis, ICLR 2019; Renda et al., Comparing "
                          "Rewinding and Fine-tuning in Neural Network Pruning, ICLR 2020 (iterative magnitude)")
def imp(ctx: PruningContext) -> MaskPlan:
    return ctx.keep_top({name: layer.weight.detach().abs() for name, layer in ctx.modules().items()})
