"""The method registry (timm-style ``register_method``) and the context a method is given.

A method sees a copy of the dense model, the prunable layers with the number of units
(channels, or weights for unstructured methods) to keep in each, a seeded generator, and a
bounded number of training-split batches. It never sees validation or test data, the
optimizer, or a way to train. A method whose scores are comparable across layers registers
with ``global_ranking=True``; under a global MACs or parameter target, ``PruningContext.keep_top``
then lets its ranking choose the per-layer counts.

The registry itself imports no torch: the built-in methods (``BUILTIN_MODULES``) are imported when one is
first asked for, and their names and files are read from their syntax tree (``builtin_sources``), so
plugins register and the audit checks a record's method file without torch; the context's methods import
it when a method runs.
"""

from __future__ import annotations

import ast
import importlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Literal, Mapping, Sequence

from harness.core.errors import BenchError
from harness.methods.training import TrainingPhase

if TYPE_CHECKING:
    import torch
    from torch import nn

    from harness.plans import ChannelPlan, MaskPlan, Plan

Kind = Literal["structured", "unstructured"]


@contextmanager
def _modes_kept(model: nn.Module) -> Iterator[None]:
    """Every module's train/eval mode as it was before the block."""
    modes = {module: module.training for module in model.modules()}
    try:
        yield
    finally:
        for module, training in modes.items():
            module.training = training


@dataclass(frozen=True)
class PruningContext:
    model: nn.Module
    sizes: Mapping[str, int]
    keep: Mapping[str, int]
    generator: torch.Generator
    max_batches: int = 0
    batch_source: Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]] | None = field(default=None, repr=False)
    kind: Kind = "structured"
    example_input: torch.Tensor | None = field(default=None, repr=False)
    allocate: Callable[[Mapping[str, torch.Tensor]], dict[str, int]] | None = field(default=None, repr=False)
    memory: Mapping[str, Any] = field(default_factory=dict, repr=False)
    """What the method's own training phase kept (``PhaseContext.memory``); empty for methods that do not train."""

    def modules(self) -> dict[str, nn.Module]:
        """The prunable layers by name."""
        named = dict(self.model.named_modules())
        return {name: named[name] for name in self.sizes}

    def train_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """At most ``max_batches`` training-split batches (inputs, labels)."""
        if self.batch_source is None or self.max_batches == 0:
            raise BenchError("this method was registered without needs_data=True, so it gets no batches")
        for index, batch in enumerate(self.batch_source()):
            if index >= self.max_batches:
                return
            yield batch

    def keep_top(self, scores: Mapping[str, torch.Tensor]) -> Plan:
        """Keep the highest-scoring units: channels (one score each) or weights (scores shaped like the weight).
        Counts are the target's, or -- for a globally ranking method under a global target -- the ranking's."""
        from harness.plans import keep_top, keep_top_weights

        keep = self.allocate(scores) if self.allocate is not None else self.keep
        return keep_top_weights(scores, keep) if self.kind == "unstructured" else keep_top(scores, keep)

    @contextmanager
    def batch_statistics(self) -> Iterator[None]:
        """Within the block every batch norm normalises with its batch's statistics, as in training; other
        modules keep their mode (the harness's copy is in eval mode: no dropout noise, so scores stay
        deterministic). Afterwards every module's mode and every buffer (the running statistics) are as
        before, so the model a method was given is unchanged."""
        import torch
        from torch import nn

        buffers = {name: buffer.detach().clone() for name, buffer in self.model.named_buffers()}
        with _modes_kept(self.model):
            for module in self.model.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.train()
            try:
                yield
            finally:
                with torch.no_grad():
                    for name, saved in buffers.items():
                        self.model.get_buffer(name).copy_(saved)

    def batchnorms(self, required: bool = True) -> dict[str, nn.BatchNorm2d]:
        """The batch norm fed directly by each prunable layer's output, found by tracing ``example_input``;
        with ``required`` a layer that feeds none is an error, otherwise it is left out."""
        import torch
        from torch import nn

        if self.example_input is None:
            raise BenchError("this context has no example input to trace the model with")
        layers = self.modules()
        outputs: dict[int, tuple[str, torch.Tensor]] = {}  # the tensors stay referenced, so ids stay unique
        consumers: dict[str, nn.BatchNorm2d] = {}

        def produced(name: str, output: torch.Tensor) -> None:
            outputs[id(output)] = (name, output)

        def consumed(batchnorm: nn.BatchNorm2d, inputs: tuple[torch.Tensor, ...]) -> None:
            producer = outputs.get(id(inputs[0]))
            if producer is not None:
                consumers.setdefault(producer[0], batchnorm)

        hooks = [module.register_forward_hook(lambda _m, _i, output, name=name: produced(name, output))
                 for name, module in layers.items()]
        hooks += [module.register_forward_pre_hook(consumed)
                  for module in self.model.modules() if isinstance(module, nn.BatchNorm2d)]
        try:
            with torch.no_grad(), _modes_kept(self.model):
                self.model.eval()(self.example_input)
        finally:
            for hook in hooks:
                hook.remove()
        missing = [name for name in layers if name not in consumers]
        if missing and required:
            raise BenchError(f"layer '{missing[0]}' does not feed a batch norm directly; this method needs one")
        return {name: consumers[name] for name in layers if name in consumers}


@dataclass(frozen=True)
class Method:
    name: str
    kind: Kind
    needs_data: bool
    citation: str
    select: Callable[[PruningContext], ChannelPlan | MaskPlan]
    global_ranking: bool = False
    training: TrainingPhase | None = None
    """Training before pruning that the harness runs for the method (``harness.methods.training``)."""
    rounds: int = 1
    """Pruning rounds, retraining between them, inside the run's budget."""

    @property
    def trains(self) -> bool:
        """Whether the method spends part of the budget itself: a phase before pruning, or rounds."""
        return self.training is not None or self.rounds > 1


_METHODS: dict[str, Method] = {}

BUILTIN_MODULES = ("bn_scale", "fpgm", "greg", "hrank", "imp", "l1_norm", "l2_norm", "magnitude_global",
                   "magnitude_layerwise", "network_slimming", "random", "random_unstructured", "sfp", "taylor",
                   "taylor_weight")
"""The built-in methods, one module each in this package; importing one registers it."""


@lru_cache(maxsize=1)
def builtin_sources() -> dict[str, Path]:
    """Each built-in method's name and file, read from the file's ``@register_method("name", ...)`` without
    running it."""
    folder = Path(__file__).resolve().parent
    sources = {}
    for module in BUILTIN_MODULES:
        path = folder / f"{module}.py"
        for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "register_method":
                sources[ast.literal_eval(node.args[0])] = path
    return sources


def _import_builtins() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(f"harness.methods.{module}")


def register_method(name: str, *, kind: Kind = "structured", needs_data: bool = False, citation: str = "",
                    global_ranking: bool = False, training: TrainingPhase | None = None, rounds: int = 1):
    """Register ``fn(context) -> plan`` under ``name``; ``training`` and ``rounds`` declare what the method trains
    (``harness.methods.training``)."""
    if not isinstance(rounds, int) or isinstance(rounds, bool) or rounds < 1:
        raise BenchError(f"method '{name}': rounds must be a whole number >= 1, got {rounds!r}")
    if training is not None and not isinstance(training, TrainingPhase):
        raise BenchError(f"method '{name}': training must be a TrainingPhase, got {type(training).__name__}")

    def decorate(fn: Callable[[PruningContext], Plan]) -> Callable[[PruningContext], Plan]:
        builtin = builtin_sources().get(name)
        if (name in _METHODS and _METHODS[name].select is not fn) or (
                builtin is not None and getattr(fn, "__module__", None) != f"harness.methods.{builtin.stem}"):
            raise BenchError(f"method name '{name}' is already registered; pick another name")
        _METHODS[name] = Method(name, kind, needs_data, citation or (fn.__doc__ or "").strip(), fn, global_ranking,
                                training, rounds)
        return fn

    return decorate


def get_method(name: str) -> Method:
    if name not in _METHODS:
        _import_builtins()
    try:
        return _METHODS[name]
    except KeyError:
        raise BenchError(f"unknown method '{name}'; known methods: {', '.join(sorted(_METHODS))}") from None


def list_methods() -> list[Method]:
    _import_builtins()
    return registered_methods()


def registered_methods() -> list[Method]:
    """The methods registered so far, in name order, importing nothing."""
    return [_METHODS[name] for name in sorted(_METHODS)]


def registered_method(name: str) -> Method | None:
    """The method registered under ``name`` so far (a plugin, or a built-in already imported), importing nothing."""
    return _METHODS.get(name)


def ensure_registered(methods: Sequence[Method]) -> None:
    """Register, in a worker process, the methods its driver knows and it does not (built-ins already are)."""
    for method in methods:
        if method.name not in _METHODS:
            register_method(method.name, kind=method.kind, needs_data=method.needs_data, citation=method.citation,
                            global_ranking=method.global_ranking, training=method.training,
                            rounds=method.rounds)(method.select)
