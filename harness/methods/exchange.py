"""What passes between the harness and a plugin's child process, kept apart from both sides so each
reads the same definitions: the inputs and limits the child gets, and the plan or phase it answers as data.

For a plan, the child gets a CPU copy of the model, the prunable layers with their counts, the method's
seeded generator, at most ``max_batches`` training-split batches (materialised tensors -- never validation
or test data), an example input, the target's global ranking when the method may use it, and what its
training phase kept (``memory``). It never gets the optimizer, the validation or test splits or the
results directory. It runs exactly the bytes the harness digested for the record.

For a pre-pruning phase (``PhaseInput``) it gets the model's CPU copy, the counts, the phase's generator
and length, the training split (a CPU copy of the resident tensors), the recipe and the data generator's
state, and runs the harness's own loop (``harness.methods.phase.run_phase``) on them.

The answer comes back as plain data (ints, strings, tensors, lists and dicts), read by the harness with
``torch.load(weights_only=True)`` so nothing the child sends can execute code there, and rebuilt
into a plan, or a phase's run and trained weights, that is validated like any other.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

import torch
from torch import nn

from harness.core.choices import PLAN_CPU_SECONDS, PLAN_MEMORY_MB, PLAN_WALL_SECONDS
from harness.core.errors import BenchError
from harness.methods import sandbox
from harness.methods.phase import PhaseRun
from harness.methods.plugins import PluginMethod
from harness.methods.registry import Method, PruningContext
from harness.methods.training import PhaseContext, TrainingPhase
from harness.plans import ChannelPlan, MaskPlan

if TYPE_CHECKING:  # the child imports this module: harness.data (sklearn, torchvision) and pydantic stay out of it
    from harness.data.splits import TensorSplit
    from harness.track.recipe import Recipe

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
class PhaseInput:
    """What a plugin's pre-pruning phase needs beyond a plan's inputs: the phase as the parent read it (the
    child checks the file registers the same), each prunable layer's batch norm by module name (the child
    finds them in its copy of the model), the phase's length, and the data it trains on."""

    declared: TrainingPhase
    batchnorms: Mapping[str, str]
    steps: int
    epochs: int
    train_split: TensorSplit
    recipe: Recipe
    data_generator_state: torch.Tensor


@dataclass(frozen=True)
class ChildInput:
    """Everything the child receives (and the key a plugin's outcome is remembered by): with ``phase`` the child
    runs the method's pre-pruning phase, otherwise its ``select``."""

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
    memory: Mapping[str, Any] = field(default_factory=dict)
    phase: PhaseInput | None = None


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
        function=plugin.function, line=plugin.line, memory=dict(context.memory),
    )


def phase_input(method: Method, context: PhaseContext, train_split, recipe: Recipe, data_generator: torch.Generator,
                limits: Limits) -> ChildInput:
    """The child's share of a phase: CPU copies of the model and of the training split, which must be resident
    (the child cannot read a data folder); the batch norms by name, as the child rebuilds them from its copy."""
    from harness.data.splits import TensorSplit

    plugin = method.select
    if not isinstance(train_split, TensorSplit):
        raise BenchError(f"method '{method.name}' ({plugin.path}): a plugin's training phase needs a training split "
                         f"held in memory, and {train_split!r} reads from disk, which its isolated process cannot")
    names = {id(module): name for name, module in context.model.named_modules()}
    phase = PhaseInput(
        declared=method.training, batchnorms={layer: names[id(bn)] for layer, bn in context.batchnorms.items()},
        steps=context.steps, epochs=context.epochs,
        train_split=dataclasses.replace(train_split, x=train_split.x.cpu(), y=train_split.y.cpu()),
        recipe=recipe, data_generator_state=cpu_generator_state(data_generator))
    return ChildInput(
        method=method.name, path=str(plugin.path), source=plugin.source, model=copy.deepcopy(context.model).cpu(),
        sizes=dict(context.sizes), keep=dict(context.keep), generator_state=cpu_generator_state(context.generator),
        batches=[], kind=method.kind, example_input=None, allocate=None, threads=torch.get_num_threads(),
        limits=limits, function=plugin.function, line=plugin.line, memory=dict(context.memory), phase=phase,
    )


def cpu_generator_state(generator: torch.Generator) -> torch.Tensor:
    """The state of a CPU generator that goes on from ``generator`` in the child, which computes on the CPU: a CPU
    generator's own state, or for an accelerator's (whose stream has no CPU twin) one seeded by a draw from it."""
    if generator.device.type == "cpu":
        return generator.get_state()
    seed = int(torch.randint(2**62, (), generator=generator, device=generator.device))
    return torch.Generator().manual_seed(seed).get_state()


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


def phase_to_data(run: PhaseRun, model: nn.Module) -> dict[str, Any]:
    """A phase's run and the trained weights as plain data for the trip back (memory checked by ``plain_memory``)."""
    return {"status": run.status, "steps": run.steps, "train_loss": list(run.train_loss),
            "state": {name: value.detach().cpu().clone() for name, value in model.state_dict().items()},
            "memory": plain_memory(run.memory)}


def phase_from_data(data: Mapping[str, Any], model: nn.Module) -> tuple[PhaseRun, dict[str, torch.Tensor]]:
    """The phase the child answered, checked before it touches ``model``: its run, and trained weights with
    exactly the keys, shapes and dtypes of ``model``'s state (finite, unless the phase says it diverged)."""
    status, steps, losses = data.get("status"), data.get("steps"), data.get("train_loss")
    if status not in ("ok", "diverged") or type(steps) is not int or steps < 0 or not isinstance(losses, list) \
            or any(type(loss) is not float for loss in losses):
        raise BenchError("its isolated process answered a phase without a status, a step count and a loss per epoch")
    state, expected = data.get("state"), model.state_dict()
    if not isinstance(state, dict) or set(state) != set(expected):
        raise BenchError("its trained weights do not have the model's entries")
    for name, reference in expected.items():
        value = state[name]
        if not isinstance(value, torch.Tensor) or value.shape != reference.shape or value.dtype != reference.dtype:
            raise BenchError(f"its trained '{name}' is not a {reference.dtype} tensor of shape "
                             f"{tuple(reference.shape)}")
        if status == "ok" and value.is_floating_point() and not torch.isfinite(value).all():
            raise BenchError(f"its trained '{name}' holds non-finite values")
    return PhaseRun(status, steps, losses, plain_memory(data.get("memory"))), state


def plain_memory(memory: Any) -> dict[str, Any]:
    """A method's ``memory`` if it is plain data -- a dict of numbers, strings, booleans, None, tensors (copied to
    the CPU), and lists, tuples and string-keyed dicts of them -- else a BenchError naming where the first other
    object sits: memory crosses the process boundary, so nothing in it may need the method's code to be read."""
    if type(memory) is not dict:
        raise BenchError(f"its memory is a {type(memory).__name__}, not a dict; a method's memory is plain data")
    return _plain(memory, "")


def _plain(value: Any, where: str) -> Any:
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone().as_subclass(torch.Tensor)
    if type(value) in (list, tuple):
        return type(value)(_plain(item, f"{where}/{index}") for index, item in enumerate(value))
    if type(value) is dict and all(type(key) is str for key in value):
        return {key: _plain(item, f"{where}/{key}") for key, item in value.items()}
    kind = "dict with a key that is not a string" if type(value) is dict else f"value of type {type(value).__name__}"
    at = f" at {where.lstrip('/')}" if where else ""
    raise BenchError(f"its memory holds a {kind}{at}; a method's memory is plain data (numbers, strings, booleans, "
                     "None, tensors, and lists and string-keyed dicts of them)")


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
