"""Retraining learning-rate schedules (Le & Hua, ICLR 2021), derived from a track's recipe.

Every schedule is a pure function from (recipe, budget, steps per epoch, hyperparameters) to
the learning rate -- and, for 1-cycle, the momentum -- of every optimizer step. The trainer
only indexes these sequences, so what is tested here is exactly what is trained with. They are
computed when indexed (one value an epoch is kept for epoch-stepped schedules; 1-cycle is a
formula of the step), so memory does not grow with the budget.
Each schedule declares its tunable hyperparameters; they are the only things a tuner may change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Iterator, Mapping, Sequence, overload

from harness.core.errors import BenchError
from harness.track.recipe import Recipe


@dataclass(frozen=True)
class Tunable:
    """A schedule hyperparameter a tuner may search, with its default derived from the recipe."""

    name: str
    low: float
    high: float
    log: bool
    default: float
    help: str


@dataclass(frozen=True)
class EpochWise:
    """A value constant within each epoch: step ``i`` reads ``per_epoch[i // steps_per_epoch]``."""

    per_epoch: tuple[float, ...]
    steps_per_epoch: int

    def __call__(self, step: int) -> float:
        return self.per_epoch[step // self.steps_per_epoch]


class PerStep(Sequence[float]):
    """One value per optimizer step, computed by ``rule(step)`` when indexed instead of stored."""

    __slots__ = ("length", "rule")

    def __init__(self, length: int, rule: Callable[[int], float]) -> None:
        self.length, self.rule = length, rule

    def __len__(self) -> int:
        return self.length

    @overload
    def __getitem__(self, index: int) -> float: ...

    @overload
    def __getitem__(self, index: slice) -> list[float]: ...

    def __getitem__(self, index: int | slice) -> float | list[float]:
        if isinstance(index, slice):
            return [self.rule(i) for i in range(*index.indices(self.length))]
        position = index + self.length if index < 0 else index
        if not 0 <= position < self.length:
            raise IndexError(f"step {index} of a {self.length}-step schedule")
        return self.rule(position)

    def __iter__(self) -> Iterator[float]:
        return (self.rule(i) for i in range(self.length))

    def __eq__(self, other: object) -> bool:
        """Equal values at every step; two sequences of the same rule are equal without computing any."""
        if isinstance(other, PerStep) and other.length == self.length and other.rule == self.rule:
            return True
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(other) == self.length and all(a == b for a, b in zip(self, other))

    def __hash__(self) -> int:
        return hash((self.length, self.rule))

    def __repr__(self) -> str:
        return f"PerStep({self.length} steps, {self.rule!r})"


@dataclass(frozen=True)
class StepValues:
    """Per-step values a trainer applies: ``lr[i]`` (and ``momentum[i]`` when cycled) at step ``i``."""

    lr: Sequence[float]
    momentum: Sequence[float] | None
    steps_per_epoch: int

    def per_epoch(self) -> list[float]:
        """The rate in effect at each epoch's first step."""
        return list(self.lr[:: self.steps_per_epoch]) if self.steps_per_epoch else []


@dataclass(frozen=True)
class Schedule:
    name: str
    title: str
    summary: str
    stepped: str  # "epoch" or "iteration"
    tunables: Callable[[Recipe], tuple[Tunable, ...]]
    epoch_lr: Callable[[Recipe, int, int, Mapping[str, float]], float] | None
    step_values: Callable[[Recipe, int, int, Mapping[str, float]], StepValues] | None = None


def _no_tunables(recipe: Recipe) -> tuple[Tunable, ...]:
    return ()


def _ft_tunables(recipe: Recipe) -> tuple[Tunable, ...]:
    return (
        Tunable("lr", recipe.final_lr / 10, recipe.lr, True, recipe.final_lr,
                "constant fine-tuning rate (default: the recipe's last rate)"),
    )


def _ft_lr(recipe: Recipe, epochs: int, epoch: int, params: Mapping[str, float]) -> float:
    return params["lr"]


def _lrw_lr(recipe: Recipe, epochs: int, epoch: int, params: Mapping[str, float]) -> float:
    return recipe.lr_at_epoch(recipe.epochs - epochs + epoch)


def _warmup_tunables(recipe: Recipe) -> tuple[Tunable, ...]:
    return (
        Tunable("peak_lr", recipe.lr / 10, recipe.lr * 5, True, recipe.lr,
                "rate reached after warm-up (default: the recipe's initial rate)"),
        Tunable("warmup_fraction", 0.0, 0.3, False, 0.1,
                "fraction of the budget spent warming up from the recipe's last rate"),
    )


def _fraction(value: float) -> Fraction:
    """Exact rational form, so int(0.45 * E) is never off by one through float rounding."""
    return Fraction(value).limit_denominator(10**6)


def _slr_lr(recipe: Recipe, epochs: int, epoch: int, params: Mapping[str, float]) -> float:
    warmup_fraction = _fraction(params["warmup_fraction"])
    warmup = warmup_epochs(params["warmup_fraction"], epochs)
    start, peak = recipe.final_lr, params["peak_lr"]
    if epoch < warmup:
        return start + (peak - start) * (1 - math.cos(math.pi * epoch / warmup)) / 2
    decays = [int(_slr_decay_point(m, recipe.epochs) * (1 - warmup_fraction) * epochs) for m in recipe.milestones]
    return peak / (1 / recipe.gamma) ** sum(1 for d in decays if epoch - warmup >= d)


def _slr_decay_point(milestone: int, recipe_epochs: int) -> Fraction:
    """Where a decay falls, as a fraction of the budget after warm-up. The official code writes these
    fractions with two decimals -- 0.5 and 0.75 for CIFAR's 80 and 120 of 160 epochs, 0.33 and 0.66 for
    ImageNet's 30 and 60 of 90 -- so a milestone's share of the recipe is truncated to hundredths."""
    return Fraction(math.floor(Fraction(milestone, recipe_epochs) * 100), 100)


CLR_FINAL_DIV_FACTOR = 100.0
CLR_MOMENTUM_RANGE = (0.85, 0.95)


def _clr_tunables(recipe: Recipe) -> tuple[Tunable, ...]:
    return (
        Tunable("max_lr", recipe.lr / 10, recipe.lr * 5, True, recipe.lr,
                "peak of the cycle (default: the recipe's initial rate)"),
        Tunable("pct_start", 0.05, 0.5, False, 0.1, "fraction of steps spent increasing the rate"),
    )


def _anneal_cos(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


@dataclass(frozen=True)
class OneCycle:
    """PyTorch's two-phase OneCycleLR value at a step (its ``_anneal_func`` over its phases, the same
    arithmetic in the same order, so every rate is bit-identical); ``phases`` are (end step, start value,
    end value) as PyTorch lays them out."""

    phases: tuple[tuple[float, float, float], ...]

    def __call__(self, step: int) -> float:
        start_step = 0.0
        for i, (end_step, start, end) in enumerate(self.phases):
            if step <= end_step or i == len(self.phases) - 1:
                return _anneal_cos(start, end, (step - start_step) / (end_step - start_step))
            start_step = end_step
        raise AssertionError("the last phase always answers")


def _clr_steps(recipe: Recipe, epochs: int, steps_per_epoch: int, params: Mapping[str, float]) -> StepValues:
    """PyTorch's two-phase OneCycleLR, starting at the recipe's last rate, momentum cycled."""
    total = epochs * steps_per_epoch
    max_lr = params["max_lr"]
    div_factor = max_lr / recipe.final_lr
    initial_lr = max_lr / div_factor
    min_lr = initial_lr / CLR_FINAL_DIV_FACTOR
    low_m, high_m = CLR_MOMENTUM_RANGE
    warm_end = float(params["pct_start"] * total) - 1
    lr = OneCycle(((warm_end, initial_lr, max_lr), (total - 1, max_lr, min_lr)))
    momentum = OneCycle(((warm_end, high_m, low_m), (total - 1, low_m, high_m)))
    return StepValues(PerStep(total, lr), PerStep(total, momentum), steps_per_epoch)


SCHEDULES: dict[str, Schedule] = {
    s.name: s
    for s in (
        Schedule("none", "no retraining", "0 epochs: the one-shot reference", "epoch", _no_tunables, None),
        Schedule("ft", "fine-tuning", "constant at the original schedule's last rate", "epoch",
                 _ft_tunables, _ft_lr),
        Schedule("lrw", "learning-rate rewinding (Renda et al. 2020)",
                 "replay the last E epochs of the original schedule", "epoch", _no_tunables, _lrw_lr),
        Schedule("slr", "scaled learning-rate restarting",
                 "cosine warm-up to the initial rate, then the recipe's step decays scaled to the budget",
                 "epoch", _warmup_tunables, _slr_lr),
        Schedule("clr", "cyclic learning-rate restarting (1-cycle)",
                 "OneCycleLR from the last rate to the initial rate and down, momentum cycled",
                 "iteration", _clr_tunables, None, _clr_steps),
    )
}


def get_schedule(name: str) -> Schedule:
    try:
        return SCHEDULES[name]
    except KeyError:
        raise BenchError(f"unknown schedule '{name}'; choose one of: {', '.join(SCHEDULES)}") from None


def resolve_params(schedule: Schedule, recipe: Recipe, overrides: Mapping[str, float] | None = None) -> dict[str, float]:
    """Defaults from the recipe, updated by ``overrides``; anything not declared tunable is refused."""
    tunables = {t.name: t for t in schedule.tunables(recipe)}
    params = {name: t.default for name, t in tunables.items()}
    for key, value in (overrides or {}).items():
        if key not in tunables:
            allowed = ", ".join(tunables) or "none"
            raise BenchError(
                f"schedule '{schedule.name}' has no hyperparameter '{key}' (tunable: {allowed}); "
                "everything else is fixed by the track"
            )
        params[key] = _checked(schedule.name, tunables[key], value)
    return params


def _checked(schedule: str, tunable: Tunable, value: float) -> float:
    """Rates must be positive and finite; fractions (the non-log tunables) lie in [0, 1)."""
    value = float(value)
    valid = math.isfinite(value) and (value > 0 if tunable.log else 0 <= value < 1)
    if not valid:
        expected = "a positive finite rate" if tunable.log else "a fraction in [0, 1)"
        raise BenchError(f"schedule '{schedule}': {tunable.name}={value!r} is not {expected}")
    return value


def warmup_epochs(warmup_fraction: float, epochs: int) -> int:
    """Epochs of ``slr``'s warm-up, computed exactly as the schedule computes them."""
    return int(_fraction(warmup_fraction) * epochs)


MAX_STEPS = 20_000_000
"""Most optimizer steps one schedule may span: over 40x a 90-epoch ImageNet run at batch 256, so a larger
budget is a typo to refuse in one line before any work, not a run to start (the schedule itself costs
no memory per step)."""

MAX_BUDGET_EPOCHS = 100_000
"""Most epochs one retraining budget may have, checked before any work (the data is not needed)."""


def check_budget(epochs: int, steps_per_epoch: int | None = None) -> None:
    """Refuse, in one line, a budget whose per-step schedule could not reasonably be built or trained."""
    if epochs > MAX_BUDGET_EPOCHS:
        raise BenchError(f"a budget of {epochs:,} epochs is over the limit of {MAX_BUDGET_EPOCHS:,}; "
                         "choose smaller --budgets")
    if steps_per_epoch is not None and epochs * steps_per_epoch > MAX_STEPS:
        raise BenchError(f"a budget of {epochs:,} epochs x {steps_per_epoch:,} steps per epoch is "
                         f"{epochs * steps_per_epoch:,} optimizer steps, over the limit of {MAX_STEPS:,}; "
                         "choose smaller --budgets")


def step_values(
    schedule: Schedule,
    recipe: Recipe,
    epochs: int,
    steps_per_epoch: int,
    params: Mapping[str, float] | None = None,
) -> StepValues:
    """Learning rate (and cycled momentum) for each of the ``epochs * steps_per_epoch`` steps."""
    if epochs < 0 or steps_per_epoch <= 0:
        raise BenchError(f"budget must be >= 0 epochs with >= 1 step per epoch, got {epochs} and {steps_per_epoch}")
    if schedule.name == "none":
        return StepValues((), None, steps_per_epoch)
    check_budget(epochs, steps_per_epoch)
    resolved = resolve_params(schedule, recipe, params)
    if schedule.step_values is not None:
        return schedule.step_values(recipe, epochs, steps_per_epoch, resolved)
    return _epoch_stepped([schedule.epoch_lr(recipe, epochs, e, resolved) for e in range(epochs)], steps_per_epoch)


def original_step_values(recipe: Recipe, steps_per_epoch: int) -> StepValues:
    """The dense training schedule itself: step decay over the recipe's epochs."""
    check_budget(recipe.epochs, steps_per_epoch)
    return _epoch_stepped([recipe.lr_at_epoch(e) for e in range(recipe.epochs)], steps_per_epoch)


def _epoch_stepped(per_epoch: list[float], steps_per_epoch: int) -> StepValues:
    rule = EpochWise(tuple(per_epoch), steps_per_epoch)
    return StepValues(PerStep(len(per_epoch) * steps_per_epoch, rule), None, steps_per_epoch)


def same_rates(recipe: Recipe, first: str, second: str, epochs: int, steps_per_epoch: int,
               params: tuple[Mapping[str, float] | None, Mapping[str, float] | None] = (None, None)) -> bool:
    """Whether two schedules train identically at a budget: the same learning rate (and momentum) at every
    step -- e.g. ``ft`` and ``lrw`` at a budget within the recipe's last stage. Cells of such schedules are
    one protocol under two names."""
    a = step_values(get_schedule(first), recipe, epochs, steps_per_epoch, params[0])
    b = step_values(get_schedule(second), recipe, epochs, steps_per_epoch, params[1])
    return a.lr == b.lr and a.momentum == b.momentum
