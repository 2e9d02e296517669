"""Pruning methods: the registry plus one module per built-in method, imported (with torch) when a method
is first asked for (``harness.methods.registry.BUILTIN_MODULES``)."""

from harness.methods.registry import (
    Method,
    PruningContext,
    ensure_registered,
    get_method,
    list_methods,
    register_method,
)
from harness.methods.training import TrainingPhase

__all__ = ["Method", "PruningContext", "TrainingPhase", "ensure_registered", "get_method", "list_methods",
           "register_method"]
