"""Pruning plans: what a method decides, as plain data the harness can check, twin and apply.

A method never edits a model. A structured method returns a ``ChannelPlan`` -- the output
channels to keep in each prunable layer; an unstructured one returns a ``MaskPlan`` -- a
boolean keep-mask per weight. The harness validates the plan, builds its random twin and
applies it (surgery for channels, masking for weights).
"""
from harness.plans.plan import (
    ChannelPlan,
    MaskPlan,
    Plan,
    keep_counts,
    keep_top,
    keep_top_weights,
)

__all__ = ["ChannelPlan", "MaskPlan", "Plan", "keep_counts", "keep_top", "keep_top_weights"]
