"""The names and defaults that several stages and the CLI's help share: the default track, the training
engines, the tuners' samplers and pruners, the recommended seeds and a plugin plan's limits.

They live here, apart from the modules that use them, because those import torch, optuna or pydantic
and ``bench --help`` must state them without importing any of that. Each has this one definition."""

DEFAULT_TRACK = "digits-cnn"
"""The embedded track every command uses unless told ``--track``."""
ENGINES = ("eager", "graph", "compile", "fused")
"""The training engines (``harness.train.engines``): the plain step, and faster ones that compute the same."""
DEFAULT_GROUP_SIZE = 8
"""Runs trained as one network by the ``fused`` engine, at most (fewer when fewer share an architecture)."""
SAMPLERS = ("tpe", "grid", "random")
"""Optuna samplers ``bench tune`` offers."""
PRUNERS = ("median", "hyperband", "none")
"""Optuna pruners ``bench tune`` offers."""
RECOMMENDED_SEEDS = 5
"""Seeds per cell the audit recommends (R5 warns below) and a submission needs."""
PLAN_WALL_SECONDS = 600.0
"""Wall-clock seconds a plugin's plan may take, from when its child is ready."""
PLAN_CPU_SECONDS = 600
"""CPU seconds a plugin's plan may use."""
PLAN_MEMORY_MB = 8192
"""MiB a plugin's plan may use."""
