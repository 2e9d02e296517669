"""Untrusted method code runs isolated: a plugin's plan is computed in a child Python process under
CPU-time, memory and wall-clock limits, and comes back as plain data for the harness to validate;
built-in methods, the harness's own code, run in-process.

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

from harness.core.errors import BenchError
from harness.methods import sandbox
from harness.methods.exchange import Limits, child_input, plan_from_data, serialise
from harness.methods.launch import run_isolated
from harness.methods.plugins import is_plugin
from harness.methods.registry import Method, PruningContext, get_method

if TYPE_CHECKING:
    import torch

    from harness.methods.phase import PhaseRun
    from harness.methods.training import PhaseContext
    from harness.track.recipe import Recipe


class Isolation:
    """Computes a method's raw plan: in this process for built-in methods (fast), in a limited child
    process for plugins. A plugin's outcome -- plan or failure -- is remembered by its exact inputs,
    so a method's twin and its runs under every schedule and budget share one child."""

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
        """A method's pre-pruning phase: in this process for a built-in method."""
        from harness.methods.phase import run_phase

        if is_plugin(method):
            raise BenchError(f"method '{method.name}' is a plugin: its training phase runs in its isolated process")
        return run_phase(method.training, context, train_split, recipe, data_generator)

    def select(self, method: Method, context: PruningContext) -> object:
        if not is_plugin(method):
            return method.select(context)
        inputs = child_input(method.select, context, self.limits)
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
        return plan_from_data(outcome)
