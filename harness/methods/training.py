"""What a method that trains declares: a phase before pruning and a number of pruning rounds.

Much of the field trains around the pruning decision: Network Slimming adds an L1 penalty on batch-norm
scales before thresholding them, GReg grows a penalty on the filters it will remove, SFP zeroes filters
while training goes on, iterative magnitude pruning alternates pruning and retraining. A method declares
such training here; the harness runs it with its own loop, optimizer (the track's recipe), data order and
seeds, so a method still never touches the optimizer, the validation or the test data:

- ``TrainingPhase``: epochs before pruning (a share of the run's budget), a ``penalty`` added to the loss
  at every step and a ``hook`` called after every optimizer step, both given a ``PhaseContext``;
- ``rounds``: prune to the target in that many equal steps of the kept fraction (geometric), retraining
  between rounds under the run's schedule.

A run's budget is its total: pre-pruning epochs plus every round's retraining (``split_budget``), so a
method that trains gets no more training from the harness than one that does not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

from harness.core.errors import BenchError

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass
class PhaseContext:
    """What a penalty or hook sees at one step of the pre-pruning phase.

    ``model`` is the network being trained (the live one: a hook changes it under ``torch.no_grad()``);
    ``sizes`` and ``keep`` are the prunable layers' unit counts and the target's counts to keep;
    ``batchnorms`` are the batch norms fed by each prunable layer; ``step``/``steps`` and ``epoch``/``epochs``
    say how far the phase is (``progress`` in [0, 1]); ``end_of_epoch`` is true after an epoch's last step.
    ``memory`` is the method's own scratch space: kept through the phase and handed to its ``select``
    (``PruningContext.memory``), e.g. GReg's filters chosen at the start.
    """

    model: nn.Module
    sizes: Mapping[str, int]
    keep: Mapping[str, int]
    batchnorms: Mapping[str, nn.BatchNorm2d]
    generator: torch.Generator
    steps: int
    epochs: int
    step: int = 0
    epoch: int = 0
    end_of_epoch: bool = False
    memory: dict[str, Any] = field(default_factory=dict)

    def modules(self) -> dict[str, nn.Module]:
        """The prunable layers by name."""
        named = dict(self.model.named_modules())
        return {name: named[name] for name in self.sizes}

    @property
    def progress(self) -> float:
        """Share of the phase's steps done before this one (0 at the first step)."""
        return self.step / self.steps if self.steps else 1.0


Penalty = Callable[[PhaseContext], "torch.Tensor"]
Hook = Callable[[PhaseContext], None]


@dataclass(frozen=True)
class TrainingPhase:
    """Training before pruning: ``fraction`` of the run's budget (whole epochs, rounded down), with ``penalty``
    added to the cross-entropy at every step and ``hook`` called after every optimizer step."""

    fraction: float
    penalty: Penalty | None = None
    hook: Hook | None = None

    def __post_init__(self) -> None:
        if not 0 < self.fraction < 1:
            raise BenchError(f"a training phase's fraction of the budget must lie in (0, 1), got {self.fraction!r}")
        if self.penalty is None and self.hook is None:
            raise BenchError("a training phase needs a penalty, a hook or both; without either it is retraining")


class TrainingDiverged(BenchError):
    """A method's own training -- its phase, or the retraining between its rounds -- reached a non-finite loss:
    a result of the method, recorded as ``diverged`` like a diverged retraining, not as a failure of its code."""


@dataclass(frozen=True)
class BudgetSplit:
    """How a run's total budget is spent: epochs before pruning, then each round's retraining epochs (the
    last round's follow the final pruning)."""

    pre_pruning: int
    rounds: tuple[int, ...]

    @property
    def total(self) -> int:
        return self.pre_pruning + sum(self.rounds)


def split_budget(budget_epochs: int, phase: TrainingPhase | None, rounds: int) -> BudgetSplit:
    """The budget's split: ``phase.fraction`` of it (rounded down) before pruning, the rest as retraining shared
    equally by the rounds (the last round takes what does not divide). At budget 0 -- the one-shot reference
    -- nothing trains, so a training method is its criterion applied to the dense model."""
    if rounds < 1:
        raise BenchError(f"a method prunes in at least one round, got rounds={rounds}")
    pre = math.floor(phase.fraction * budget_epochs) if phase is not None else 0
    rest = budget_epochs - pre
    share = rest // rounds
    return BudgetSplit(pre, (share,) * (rounds - 1) + (rest - share * (rounds - 1),))


def round_counts(sizes: Mapping[str, int], keep: Mapping[str, int], rounds: int) -> list[dict[str, int]]:
    """Each round's units to keep per layer: the kept fraction falls geometrically, ``(keep/size)**(k/rounds)``
    after round ``k``, so every round removes the same share of what is left; the last round keeps ``keep``."""
    return [{layer: keep[layer] if k == rounds else
             max(keep[layer], min(sizes[layer], round(sizes[layer] * (keep[layer] / sizes[layer]) ** (k / rounds))))
             for layer in keep} for k in range(1, rounds + 1)]
