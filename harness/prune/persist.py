"""Pruned checkpoints that reload into a model with the pruned shapes.

A checkpoint stores the architecture's registry name, class count and input shape, the plan
(kept channel indices, or masks) and the state dict -- plain data only. Loading builds the dense
architecture, replays the plan through the same surgery and loads the weights strictly. So the
file loads with ``weights_only=True`` (no pickled code to trust), and a shape mismatch is a clear
error instead of a silently half-loaded model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from harness.core.atomic import torch_save_atomic
from harness.core.errors import BenchError
from harness.models import create_model
from harness.plans import ChannelPlan, MaskPlan, Plan
from harness.prune.surgery import apply_masks, prune_channels

FORMAT = "prune-bench/pruned-model"
VERSION = 1


@dataclass(frozen=True)
class PrunedCheckpoint:
    model: nn.Module
    plan: Plan
    model_name: str
    num_classes: int
    input_shape: tuple[int, ...]


def save_pruned(
    path: str | Path, model: nn.Module, plan: Plan, *, model_name: str, num_classes: int,
    input_shape: tuple[int, ...],
) -> Path:
    """Write ``model`` (already pruned by ``plan``) atomically to ``path``."""
    path = Path(path)
    payload = {
        "format": FORMAT, "version": VERSION, "model_name": model_name, "num_classes": num_classes,
        "input_shape": list(input_shape),
        "kept": plan.to_json() if isinstance(plan, ChannelPlan) else None,
        "masks": dict(plan.masks) if isinstance(plan, MaskPlan) else None,
        "state_dict": {key: value.detach().cpu() for key, value in model.state_dict().items()},
    }
    torch_save_atomic(payload, path)
    return path


def load_pruned(path: str | Path, device: str = "cpu") -> PrunedCheckpoint:
    """Rebuild the pruned model saved at ``path`` on ``device``."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as exc:
        raise BenchError(f"cannot read pruned checkpoint {path}: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise BenchError(f"{path} is not a prune-bench pruned checkpoint; save it with harness.prune.persist.save_pruned")
    if payload["version"] != VERSION:
        raise BenchError(f"{path} has checkpoint version {payload['version']}; this harness reads version {VERSION}")
    input_shape = tuple(payload["input_shape"])
    example = torch.zeros((1, *input_shape))
    model = create_model(payload["model_name"], payload["num_classes"])
    if payload["kept"] is not None:
        plan: Plan = ChannelPlan({layer: tuple(indices) for layer, indices in payload["kept"].items()})
        prune_channels(model, plan, example)
    else:
        plan = MaskPlan(payload["masks"])
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as exc:
        raise BenchError(f"{path}: weights do not fit the rebuilt model ({str(exc).splitlines()[0]})") from None
    if isinstance(plan, MaskPlan):
        apply_masks(model, plan, example)
    return PrunedCheckpoint(model.to(device), plan, payload["model_name"], payload["num_classes"], input_shape)
