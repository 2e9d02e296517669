"""Untrusted method code runs isolated: a plugin's plan is computed in a child Python process under
CPU-time, memory and wall-clock limits, and comes back as plain data for the harness to validate;
built-in methods, the harness's own code, run in-process.

A plugin declares what a built-in declares (``harness.methods.plugins``): ``rounds``, and a pre-pruning
``TrainingPhase`` whose penalty and hook are functions of its file. Its phase runs in the same kind of child,
at the same sandbox level and under the same ``Limits`` as its plans (one child per phase, the wall clock and
CPU time counting the whole phase), by the harness's own loop (``harness.methods.phase``) on CPU copies of the
model and the resident training split; what comes back -- status, steps, losses, the trained weights and the
method's ``memory``, plain data only -- is checked against the model before the weights are loaded into it,
and the memory reaches the method's plans in their children.

``Isolation`` is what a run holds: it chooses in-process or a child, probes the sandbox level once,
refuses to go below the level required, says in every record where the plan was computed, and
remembers a plugin's outcome by its exact inputs. The rest sits in a module per side:
``harness.methods.exchange`` (what the child gets, its ``Limits``, the plan as data),
``harness.methods.launch`` (the parent starting and waiting for the child) and
``harness.methods.child`` (the child's own code). The sandbox itself is ``harness.methods.sandbox``,
at the strongest level this machine allows (``bwrap`` > ``landlock`` > ``rlimits``), named on stderr
the first time a plugin runs; level landlock's confinement is ``harness.methods.landlock``, the cgroup
caps ``harness.methods.cgroups``, capped output and reaping ``harness.methods.containment``.
"""

from __future__ import annotations

import hashlib
import sys
from typing import TYPE_CHECKING, Any

import torch

from harness.core.errors import BenchError
from harness.methods import sandbox
from harness.methods.exchange import (
    ChildInput,
    Limits,
    child_input,
    phase_from_data,
    phase_input,
    plan_from_data,
    serialise,
)
from harness.methods.launch import run_isolated
from harness.methods.phase import PhaseRun, run_phase
from harness.methods.plugins import is_plugin
from harness.methods.registry import Method, PruningContext, get_method

if TYPE_CHECKING:
    from harness.methods.training import PhaseContext
    from harness.track.recipe import Recipe


class Isolation:
    """Computes a method's raw plan and runs its phase: in this process for built-in methods (fast), in a limited
    child process for plugins. A plugin's outcome -- plan, phase or failure -- is remembered by its exact inputs,
    so a method that does not train shares one child for a plan among its twin and its runs under every schedule
    and budget, and a method that trains one child for a phase among its runs of one budget; its plans, made on
    the trained model, are shared only by identical trained models."""

    def __init__(self, limits: Limits = Limits(), level: str | None = None, unsafe: bool = False):
        if level is not None and level not in sandbox.LEVELS:
            raise BenchError(f"unknown sandbox level {level!r}; use one of {', '.join(sandbox.LEVELS)}")
        if level is not None and (problem := sandbox.level_problem(level)) is not None:
            raise BenchError(f"sandbox level '{level}' is not available here: {problem}")
        required, asked_unsafe = sandbox.requirement()
        self.limits = limits
        self.unsafe = unsafe or asked_unsafe
        self._level = level
        self._outcomes: dict[str, dict[str, Any] | BenchError] = {}
        if required is not None:
            self.require(required)

    @property
    def level(self) -> str:
        """The sandbox level plugins run at: the one asked for, else the strongest this machine allows."""
        if self._level is None:
            probe = sandbox.probe()
            self._level = probe.level
            print(probe.line(), file=sys.stderr)
        return self._level

    def record_fields(self, name: str) -> dict[str, Any]:
        """What a record says about where the method ``name``'s plan was computed (nothing is probed for a
        built-in method, which runs in-process)."""
        try:
            method = get_method(name)
        except BenchError:
            return {}
        if not is_plugin(method):
            return {"isolation": "in-process"}
        level = self.level
        below = not sandbox.greater_or_equal(level, sandbox.REQUIRED_LEVEL)
        return {"isolation": level, "unsafe_isolation": self.unsafe and below}

    def require(self, required: str = sandbox.REQUIRED_LEVEL) -> None:
        """Refuse to go on below ``required`` unless this isolation was made ``unsafe`` on request."""
        level = self.level
        if not sandbox.greater_or_equal(level, required) and not self.unsafe:
            probe = sandbox.probe()
            raise BenchError(f"the sandbox here reaches level '{level}', below the '{required}' the leaderboard "
                             f"requires ({'; '.join(probe.missing) or 'level set by hand'}); install what is "
                             "missing, or pass --unsafe-isolation to run anyway with the records marked")

    def train_phase(self, method: Method, context: PhaseContext, train_split, recipe: Recipe,
                    data_generator: torch.Generator) -> PhaseRun:
        """A method's pre-pruning phase, training ``context.model`` in place: in this process for a built-in
        method, in a limited child for a plugin (its weights loaded into the model once checked)."""
        if not is_plugin(method):
            return run_phase(method.training, context, train_split, recipe, data_generator)
        data = self._outcome(phase_input(method, context, train_split, recipe, data_generator, self.limits))
        try:
            run, state = phase_from_data(data, context.model)
            if run.status == "ok" and run.steps != context.steps:
                raise BenchError(f"answered {run.steps} steps, the phase has {context.steps}")
        except BenchError as exc:
            raise BenchError(f"method '{method.name}' ({method.select.path}) training phase: {exc}") from None
        with torch.no_grad():
            context.model.load_state_dict(state)
        return run

    def select(self, method: Method, context: PruningContext) -> object:
        if not is_plugin(method):
            return method.select(context)
        return plan_from_data(self._outcome(child_input(method.select, context, self.limits)))

    def _outcome(self, inputs: ChildInput) -> dict[str, Any]:
        """The child's answer for ``inputs``, or its failure, remembered by the inputs' exact bytes."""
        payload = serialise(inputs)
        key = hashlib.sha256(payload).hexdigest()
        if key not in self._outcomes:
            try:
                self._outcomes[key] = run_isolated(inputs, payload, self.level)
            except BenchError as exc:
                self._outcomes[key] = exc
        outcome = self._outcomes[key]
        if isinstance(outcome, BenchError):
            raise BenchError(str(outcome))
        return outcome
