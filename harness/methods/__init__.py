"""Pruning methods: the registry plus one module per built-in method (importing one registers it)."""

from harness.methods import l1_norm  # noqa: F401
from harness.methods.registry import Method, PruningContext, get_method, list_methods, register_method

__all__ = ["Method", "PruningContext", "get_method", "list_methods", "register_method"]
