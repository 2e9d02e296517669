"""The method registry (timm-style ``register_method``) and the context a method is given.

A method sees a copy of the dense model, the prunable layers with the number of channels to
keep in each, a seeded generator, and a bounded number of training-split batches. It never
sees validation or test data, the optimizer, or a way to train.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Literal, Mapping

import torch
from torch import nn

from harness.errors import BenchError
from harness.plans import ChannelPlan

Kind = Literal["structured", "unstructured"]


@dataclass(frozen=True)
class PruningContext:
    model: nn.Module
    sizes: Mapping[str, int]
    keep: Mapping[str, int]
    generator: torch.Generator
    max_batches: int = 0
    batch_source: Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]] | None = field(default=None, repr=False)

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


@dataclass(frozen=True)
class Method:
    name: str
    kind: Kind
    needs_data: bool
    citation: str
    select: Callable[[PruningContext], ChannelPlan]


_METHODS: dict[str, Method] = {}


def register_method(name: str, *, kind: Kind = "structured", needs_data: bool = False, citation: str = ""):
    """Register ``fn(context) -> plan`` under ``name``."""

    def decorate(fn: Callable[[PruningContext], ChannelPlan]) -> Callable[[PruningContext], ChannelPlan]:
        if name in _METHODS and _METHODS[name].select is not fn:
            raise BenchError(f"method name '{name}' is already registered; pick another name")
        _METHODS[name] = Method(name, kind, needs_data, citation or (fn.__doc__ or "").strip(), fn)
        return fn

    return decorate


def get_method(name: str) -> Method:
    try:
        return _METHODS[name]
    except KeyError:
        raise BenchError(f"unknown method '{name}'; known methods: {', '.join(sorted(_METHODS))}") from None


def list_methods() -> list[Method]:
    return [_METHODS[name] for name in sorted(_METHODS)]
