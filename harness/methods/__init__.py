"""Pruning methods: the registry plus one module per built-in method (importing one registers it)."""

from harness.methods import (  # noqa: F401
    bn_scale,
    fpgm,
    hrank,
    l1_norm,
    l2_norm,
    magnitude_global,
    magnitude_layerwise,
    random,
    random_unstructured,
    taylor,
    taylor_weight,
)
from harness.methods.registry import (
    Method,
    PruningContext,
    ensure_registered,
    get_method,
    list_methods,
    register_method,
)

__all__ = ["Method", "PruningContext", "ensure_registered", "get_method", "list_methods", "register_method"]
