"""What passes between the harness and a plugin's child process, kept apart from both sides so each
reads the same definitions: the inputs and limits the child gets, and the plan it answers as data.

The child gets a CPU copy of the model, the prunable layers with their counts, the method's seeded
generator, at most ``max_batches`` training-split batches (materialised tensors -- never validation
or test data), an example input, and the target's global ranking when the method may use it. It
never gets the optimizer, the splits or the results directory. It runs exactly the bytes the harness
digested for the record.

The plan comes back as plain data (ints, strings, tensors, lists and dicts), read by the harness with
``torch.load(weights_only=True)`` so nothing the child sends can execute code there, and rebuilt
into a plan that is validated like any other.
"""

from __future__ import annotations

import copy
import io
import itertools
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch
from torch import nn

from harness.core.choices import PLAN_CPU_SECONDS, PLAN_MEMORY_MB, PLAN_WALL_SECONDS
from harness.core.errors import BenchError
from harness.methods import sandbox
from harness.methods.plugins import PluginMethod
from harness.methods.registry import PruningContext
from harness.plans import ChannelPlan, MaskPlan

READY = b"ready"
GO = b"go"
"""The parent's answer to ``READY``, sent once the child's processes are in their cgroups: the method runs after it."""
INPUT_FILE = "inputs.pt"


@dataclass(frozen=True)
class Limits:
    """What one plugin plan may use, counted from when its child is ready; ``startup_seconds`` bounds
    the start-up itself (importing torch, loading the model)."""

    wall_seconds: float = PLAN_WALL_SECONDS
    cpu_seconds: int = PLAN_CPU_SECONDS
    memory_mb: int = PLAN_MEMORY_MB
    startup_seconds: float = 300.0
    answer_mb: int = 256
    processes: int = sandbox.MAX_PROCESSES

    def __post_init__(self) -> None:
        if min(self.wall_seconds, self.cpu_seconds, self.memory_mb, self.startup_seconds, self.answer_mb,
               self.processes) <= 0:
            raise BenchError(f"isolation limits must be positive, got {self}")


@dataclass(frozen=True)
class ChildInput:
    """Everything the child receives (and the key a plugin's outcome is remembered by)."""

    method: str
    path: str
    source: bytes
    model: nn.Module
    sizes: Mapping[str, int]
    keep: Mapping[str, int]
    generator_state: torch.Tensor
    batches: list[tuple[torch.Tensor, torch.Tensor]]
    kind: str
    example_input: torch.Tensor | None
    allocate: Callable[[Mapping[str, torch.Tensor]], dict[str, int]] | None
    threads: int
    limits: Limits
    function: str = ""
    line: int = 0


def child_input(plugin: PluginMethod, context: PruningContext, limits: Limits) -> ChildInput:
    """The child's share of ``context``: CPU copies, and at most ``max_batches`` materialised training batches."""
    batches = []
    if context.batch_source is not None and context.max_batches > 0:
        batches = [(inputs.detach().cpu(), labels.detach().cpu())
                   for inputs, labels in itertools.islice(context.batch_source(), context.max_batches)]
    return ChildInput(
        method=plugin.name, path=str(plugin.path), source=plugin.source,
        model=copy.deepcopy(context.model).cpu().eval(), sizes=dict(context.sizes), keep=dict(context.keep),
        generator_state=context.generator.get_state(), batches=batches, kind=context.kind,
        example_input=None if context.example_input is None else context.example_input.detach().cpu(),
        allocate=context.allocate, threads=torch.get_num_threads(), limits=limits,
        function=plugin.function, line=plugin.line,
    )


def serialise(value: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def plan_to_data(plan: object) -> dict[str, Any]:
    """A plan as plain data for the trip back; anything that is not an int index or a tensor mask
    travels as its repr, so the harness's validation refuses it exactly as it would in-process."""
    if isinstance(plan, ChannelPlan) and isinstance(plan.kept, Mapping):
        return {"type": "ChannelPlan", "kept": {
            _key(layer): [i if type(i) is int else repr(i) for i in indices] if _sequence(indices) else repr(indices)
            for layer, indices in plan.kept.items()}}
    if isinstance(plan, MaskPlan) and isinstance(plan.masks, Mapping):
        return {"type": "MaskPlan", "masks": {
            _key(layer): mask.detach().cpu().clone() if isinstance(mask, torch.Tensor) else repr(mask)
            for layer, mask in plan.masks.items()}}
    return {"type": type(plan).__name__}


def _key(layer: object) -> str:
    return layer if isinstance(layer, str) else repr(layer)


def _sequence(value: object) -> bool:
    return isinstance(value, (list, tuple, range))


def plan_from_data(data: Mapping[str, Any]) -> object:
    """The plan the child returned, rebuilt (with its own tensors) for ``validate_plan``."""
    if data.get("type") == "ChannelPlan" and isinstance(data.get("kept"), dict):
        return ChannelPlan({layer: tuple(v) if isinstance(v, list) else v for layer, v in data["kept"].items()})
    if data.get("type") == "MaskPlan" and isinstance(data.get("masks"), dict):
        return MaskPlan({layer: v.clone() if isinstance(v, torch.Tensor) else v for layer, v in data["masks"].items()})
    return type(str(data.get("type")), (), {})()  # an object of the returned type's name, for validate_plan's message
