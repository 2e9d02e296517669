"""Targets -> per-layer counts: how many channels (structured) or weights (unstructured) each layer keeps.

A target is a track's compression goal, resolved here for one model and one kind of method:

- ``ratio``: the same fraction removed from every prunable layer; for weights, a method with its
  own global ranking (global magnitude) may instead spread the same total across layers;
- ``layers``: a fraction per named layer;
- ``fixed``: a published configuration, e.g. PFEC's ``pfec-a`` / ``pfec-b`` for the CIFAR
  ResNets and ImageNet ResNet-34, and ``pfec-a`` for VGG-16 (Li et al. 2017, as in the public code of
  Liu et al.'s "Rethinking the Value of Network Pruning", ``cifar/l1-norm-pruning``, and of Le & Hua);
- ``macs`` / ``params``: a global reduction, reached by near-uniform per-layer counts, or by
  the method's own global ranking when it declares one (``Allocation.rank_globally``);
- ``channels``: a fraction of all the prunable layers' channels removed in total, as Network Slimming
  does with one threshold on ``|gamma|`` (Liu et al. 2017, ``vggprune.py``): a method with its own global
  ranking chooses what each layer gives, every other method gets the even split of the same total
  (``even_split``). For unstructured methods the units are conv weights: the same fraction of them in all.

Channels are pruned in the track's prunable layers; weights are masked in every conv layer (linear
layers stay dense, as in the paper's weight-level code). Counts come from the cost models of
``harness.prune.counting``, exact to fvcore's.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Literal, Mapping

import torch
from torch import nn

from harness.core.errors import BenchError
from harness.models import prunable_layers
from harness.plans import keep_counts
from harness.prune.counting import (
    ChannelCosts,
    Estimate,
    WeightCosts,
    channel_costs,
    weight_costs,
)
from harness.track.definition import Target

Units = Literal["channels", "weights"]
DEFAULT_TOLERANCE = 0.01
_BISECTION_STEPS = 60


def maskable_layers(model: nn.Module) -> list[str]:
    """Layers whose weights unstructured methods may mask: every conv. The official code of Le & Hua 2021
    (built on Liu et al.'s "Rethinking the Value of Network Pruning") thresholds conv weights only, so
    linear layers stay dense, for every unstructured method and its random twin alike."""
    return [name for name, module in model.named_modules() if isinstance(module, nn.Conv2d)]


@dataclass(frozen=True)
class Goal:
    """A global reduction of conv+linear MACs or of parameters, as a fraction of the dense count."""

    metric: Literal["macs", "params"]
    reduction: float
    tolerance: float

    def achieved(self, estimate: Estimate, dense: Estimate) -> float:
        return 1 - getattr(estimate, self.metric) / getattr(dense, self.metric)


@dataclass(frozen=True)
class Allocation:
    """A target resolved for one model: the units each layer keeps, and how to count any allocation.

    ``pooled``: only the total of ``keep`` binds a method with its own global ranking (a ratio of weights,
    a channel fraction); ``goal``: a MACs or parameter reduction binds it instead."""

    target: str
    units: Units
    shapes: Mapping[str, tuple[int, ...]]
    keep: Mapping[str, int]
    costs: ChannelCosts | WeightCosts
    goal: Goal | None = None
    pooled: bool = False

    @property
    def redistributes(self) -> bool:
        """Whether a method with its own global ranking may move units between layers."""
        return self.goal is not None or self.pooled

    @property
    def sizes(self) -> dict[str, int]:
        return {layer: math.prod(shape) for layer, shape in self.shapes.items()}

    def estimate(self, keep: Mapping[str, int]) -> Estimate:
        return self.costs.estimate(keep)

    def miss(self, keep: Mapping[str, int]) -> str | None:
        """Why an allocation fails the goal, or None when it is within tolerance."""
        if self.pooled:
            wanted, got = sum(self.keep.values()), sum(keep.values())
            return None if got == wanted else (
                f"target '{self.target}': the plan keeps {got} {self.units} in all, the target {wanted}")
        if self.goal is None:
            return None
        achieved = self.goal.achieved(self.estimate(keep), self.costs.dense)
        if abs(achieved - self.goal.reduction) > self.goal.tolerance:
            return (f"target '{self.target}': the plan removes {achieved:.2%} of {self.goal.metric}, "
                    f"outside {self.goal.reduction:.2%} +/- {self.goal.tolerance:.2%}")
        return None

    def for_round(self, keep: Mapping[str, int], done: float) -> "Allocation":
        """An intermediate pruning round's allocation: ``keep`` units per layer and, under a goal, the reduction
        whose kept share is the goal's raised to ``done`` (the share of rounds done), geometric as the counts."""
        goal = self.goal and dataclasses.replace(self.goal, reduction=1 - (1 - self.goal.reduction) ** done)
        return dataclasses.replace(self, keep=dict(keep), goal=goal)

    def rank_globally(self, scores: Mapping[str, torch.Tensor]) -> dict[str, int]:
        """Counts reached by removing the lowest-scoring units across all layers until the goal is met
        (at least one unit stays in every layer); for a pooled target, the same total as the target's
        per-layer counts; otherwise the target's own counts."""
        if self.pooled:
            return _pool_units(self, scores)
        if self.goal is None:
            return dict(self.keep)
        if self.units == "weights":
            return _rank_weights(self, scores)
        return _rank_channels(self, scores)


def resolve_target(
    target: Target, kind: str, model_name: str, model: nn.Module, input_shape: tuple[int, int, int]
) -> Allocation:
    """Per-layer counts for ``target`` on ``model`` for a method of ``kind`` (structured or unstructured)."""
    units: Units = "weights" if kind == "unstructured" else "channels"
    modules = dict(model.named_modules())
    if units == "weights":
        layers = maskable_layers(model)
        shapes = {layer: tuple(modules[layer].weight.shape) for layer in layers}
        costs = weight_costs(model, layers, input_shape)
    else:
        layers = prunable_layers(model_name, model)
        shapes = {layer: (modules[layer].out_channels,) for layer in layers}
        costs = channel_costs(model, layers, input_shape)
    sizes = {layer: math.prod(shape) for layer, shape in shapes.items()}
    if target.kind == "ratio":
        return Allocation(target.name, units, shapes, keep_counts(sizes, target.ratio), costs,
                          pooled=units == "weights")
    if target.kind == "layers":
        unknown = [layer for layer in target.ratios if layer not in sizes]
        if unknown:
            raise BenchError(f"target '{target.name}': layer '{unknown[0]}' is not a prunable layer for {kind} "
                             f"methods on {model_name} (prunable: {', '.join(sizes)})")
        keep = {layer: keep_counts({layer: sizes[layer]}, ratio)[layer] for layer, ratio in target.ratios.items()}
        return Allocation(target.name, units, shapes, {**sizes, **keep}, costs)
    if target.kind == "channels":
        return Allocation(target.name, units, shapes, even_split(sizes, target.fraction, target.name, units), costs,
                          pooled=True)
    if target.kind == "fixed":
        if units == "weights":
            raise BenchError(f"target '{target.name}' is a fixed channel configuration; an unstructured method "
                             "cannot use it (give the track a ratio, macs or params target)")
        return Allocation(target.name, units, shapes, fixed_configuration(target.config, model_name, sizes), costs)
    goal = Goal(target.kind, target.reduction, target.tolerance or DEFAULT_TOLERANCE)
    allocation = Allocation(target.name, units, shapes, dict(sizes), costs, goal)
    keep = _near_uniform(allocation)
    miss = allocation.miss(keep)
    if miss:
        raise BenchError(f"{miss} with near-uniform counts; widen its tolerance or choose another reduction")
    return Allocation(target.name, units, shapes, keep, costs, goal)


def even_split(sizes: Mapping[str, int], fraction: float, target: str, units: Units) -> dict[str, int]:
    """Units kept per layer when ``fraction`` of all units goes, spread as evenly as whole units allow.

    ``floor(fraction * total)`` go in all, as ``vggprune.py``'s ``int(total * percent)``: each layer gives
    ``floor(fraction * size)``, the rest go one each to the layers furthest below their exact share (layer
    order on ties), never a layer's last unit. The fraction is taken as written (0.29, not its binary
    neighbour), so a fraction that splits every layer exactly gives a ratio target's counts."""
    exact = Fraction(str(fraction))
    total = sum(sizes.values())
    to_remove = math.floor(exact * total)
    if to_remove > total - len(sizes):
        raise BenchError(f"target '{target}': removing a fraction {fraction:g} of the {total} {units} would empty a layer "
                         f"(at most {total - len(sizes)} can go, one staying per layer); lower its fraction")
    removed = {layer: math.floor(exact * size) for layer, size in sizes.items()}
    order = {layer: position for position, layer in enumerate(sizes)}
    for _ in range(to_remove - sum(removed.values())):
        layer = max((name for name in sizes if removed[name] < sizes[name] - 1),
                    key=lambda name: (exact * sizes[name] - removed[name], -order[name]))
        removed[layer] += 1
    return {layer: size - removed[layer] for layer, size in sizes.items()}


def _floor_counts(sizes: Mapping[str, int], ratio: float) -> dict[str, int]:
    return {layer: max(1, math.floor(size * (1 - ratio))) for layer, size in sizes.items()}


def _near_uniform(allocation: Allocation) -> dict[str, int]:
    """The smallest common ratio whose (floored) counts meet the goal, then single units handed back
    -- each to the layer left with the smallest kept fraction -- while the goal stays met."""
    goal, sizes, dense = allocation.goal, allocation.sizes, allocation.costs.dense

    def meets_goal(keep: Mapping[str, int]) -> bool:
        return goal.achieved(allocation.estimate(keep), dense) >= goal.reduction

    low, high = 0.0, 1.0
    for _ in range(_BISECTION_STEPS):
        middle = (low + high) / 2
        low, high = (low, middle) if meets_goal(_floor_counts(sizes, middle)) else (middle, high)
    keep = _floor_counts(sizes, high)
    order = {layer: position for position, layer in enumerate(sizes)}
    while True:
        candidates = [layer for layer in sizes
                      if keep[layer] < sizes[layer] and meets_goal({**keep, layer: keep[layer] + 1})]
        if not candidates:
            return keep
        layer = min(candidates, key=lambda name: ((keep[name] + 1) / sizes[name], order[name]))
        keep[layer] += 1


def _ascending_units(scores: Mapping[str, torch.Tensor], layers: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(layer id, index) of every unit, lowest score first; ties keep layer order, then index order."""
    flat = [scores[layer].detach().flatten().double().cpu() for layer in layers]
    values = torch.cat(flat)
    layer_ids = torch.cat([torch.full((len(f),), i) for i, f in enumerate(flat)])
    indices = torch.cat([torch.arange(len(f)) for f in flat])
    order = torch.sort(values, stable=True).indices
    return layer_ids[order], indices[order]


def _check_scores(allocation: Allocation, scores: Mapping[str, torch.Tensor]) -> list[str]:
    layers = list(allocation.shapes)
    for layer in layers:
        if layer not in scores or scores[layer].numel() != allocation.sizes[layer]:
            raise BenchError(f"global ranking for target '{allocation.target}' needs one score per unit of every "
                             f"prunable layer; '{layer}' has none or the wrong number")
    return layers


def _rank_channels(allocation: Allocation, scores: Mapping[str, torch.Tensor]) -> dict[str, int]:
    goal, dense = allocation.goal, allocation.costs.dense
    layers = _check_scores(allocation, scores)
    keep = allocation.sizes
    layer_ids, _ = _ascending_units(scores, layers)
    for layer_id in layer_ids.tolist():
        layer = layers[layer_id]
        if keep[layer] == 1:
            continue
        trial = {**keep, layer: keep[layer] - 1}
        achieved = goal.achieved(allocation.estimate(trial), dense)
        if achieved > goal.reduction + goal.tolerance:
            continue
        keep = trial
        if achieved >= goal.reduction:
            break
    return keep


def _pool_units(allocation: Allocation, scores: Mapping[str, torch.Tensor]) -> dict[str, int]:
    """One threshold across layers for a pooled target: the same number of units kept in all as the
    target's per-layer counts keep (the strongest unit of each layer stays regardless)."""
    layers = _check_scores(allocation, scores)
    total = sum(allocation.keep.values())
    layer_ids, _ = _ascending_units(scores, layers)
    keep = {layer: 1 for layer in layers}
    seen: set[str] = set()
    kept_in_all = len(layers)
    for layer_id in reversed(layer_ids.tolist()):
        layer = layers[layer_id]
        if layer not in seen:
            seen.add(layer)
            continue
        if kept_in_all >= total:
            break
        keep[layer] += 1
        kept_in_all += 1
    return keep


def _rank_weights(allocation: Allocation, scores: Mapping[str, torch.Tensor]) -> dict[str, int]:
    """The weight version, vectorised: units are additive, so a cumulative sum finds the cut."""
    goal, costs = allocation.goal, allocation.costs
    layers = _check_scores(allocation, scores)
    survivors = {layer: int(torch.argmax(scores[layer].detach().flatten().double().cpu())) for layer in layers}
    guarded = {layer: scores[layer].detach().flatten().double().cpu().clone() for layer in layers}
    for layer, index in survivors.items():
        guarded[layer][index] = math.inf
    layer_ids, _ = _ascending_units(guarded, layers)
    layer_ids = layer_ids[: sum(allocation.sizes.values()) - len(layers)]
    per_unit = torch.tensor([1 if goal.metric == "params" else costs.macs_per_weight[layer] for layer in layers],
                            dtype=torch.float64)
    needed = goal.reduction * getattr(costs.dense, goal.metric)
    saved = torch.cumsum(per_unit[layer_ids], 0)
    cut = int(torch.searchsorted(saved, torch.tensor([needed], dtype=torch.float64)).item()) + 1
    removed = torch.bincount(layer_ids[:cut], minlength=len(layers)).tolist()
    return {layer: allocation.sizes[layer] - removed[i] for i, layer in enumerate(layers)}


# PFEC's published configurations. Stage ratios and the skipped ("sensitive") blocks follow the
# reference code (res56prune.py, res110prune.py, vggprune.py); its conv ids count the stem as 1,
# so block b of stage s (from 0) has first-conv id 2 + 2 * (s * blocks_per_stage + b).
PFEC_RESNET: dict[tuple[str, str], tuple[tuple[int, ...], tuple[float, float, float]]] = {
    ("pfec-a", "cifar-resnet56"): ((16, 20, 38, 54), (0.1, 0.1, 0.1)),
    ("pfec-b", "cifar-resnet56"): ((16, 18, 20, 34, 38, 54), (0.6, 0.3, 0.1)),
    ("pfec-a", "cifar-resnet110"): ((36,), (0.5, 0.0, 0.0)),
    ("pfec-b", "cifar-resnet110"): ((36, 38, 74), (0.5, 0.4, 0.3)),
}
NPTM_SUFFIX = "-nptm"
"""The official code's shortcut variant of a CIFAR ResNet (``harness.models.cifar_resnet``): same layout,
so the same published configurations."""
PFEC_VGG16_A_WIDTHS = (32, 64, 128, 128, 256, 256, 256, 256, 256, 256, 256, 256, 256)
_BLOCK_CONV = re.compile(r"^layer(\d+)\.(\d+)\.conv1$")

# PFEC's ImageNet ResNet-34 configurations (Li et al. 2017, Table 1; reference code res34prune.py of the
# paper's repository): per-stage ratios for the first conv of each BasicBlock, some blocks skipped as
# sensitive. The reference counts 3x3 convs from the stem as 1 (the 1x1 down-sampling convs are not
# counted), so the first conv of block k (from 0, across all stages) has id 2 + 2k.
PFEC_RESNET34: dict[str, tuple[tuple[int, ...], tuple[float, float, float, float]]] = {
    "pfec-a": ((2, 8, 14, 16, 26, 28, 30, 32), (0.3, 0.3, 0.3, 0.0)),
    "pfec-b": ((2, 8, 14, 16, 26, 28, 30, 32), (0.5, 0.6, 0.4, 0.0)),
}


def _pfec_resnet(config: str, model_name: str, sizes: Mapping[str, int]) -> dict[str, int]:
    skipped, stage_ratios = PFEC_RESNET[(config, model_name.removesuffix(NPTM_SUFFIX))]
    blocks_per_stage = len(sizes) // len(stage_ratios)
    keep = {}
    for layer, size in sizes.items():
        stage, block = (int(part) for part in _BLOCK_CONV.match(layer).groups())
        conv_id = 2 + 2 * ((stage - 1) * blocks_per_stage + block)
        keep[layer] = size if conv_id in skipped else int(size * (1 - stage_ratios[stage - 1]))
    return keep


def _pfec_resnet34(config: str, model_name: str, sizes: Mapping[str, int]) -> dict[str, int]:
    skipped, stage_ratios = PFEC_RESNET34[config]
    keep = {}
    for block, (layer, size) in enumerate(sizes.items()):
        stage = int(_BLOCK_CONV.match(layer).group(1)) - 1
        conv_id = 2 + 2 * block
        keep[layer] = size if conv_id in skipped else int(size * (1 - stage_ratios[stage]))
    return keep


def _pfec_vgg16_a(config: str, model_name: str, sizes: Mapping[str, int]) -> dict[str, int]:
    return dict(zip(sizes, PFEC_VGG16_A_WIDTHS, strict=True))


FIXED_CONFIGURATIONS: dict[tuple[str, str], Callable[[str, str, Mapping[str, int]], dict[str, int]]] = {
    **{key: _pfec_resnet for key in PFEC_RESNET},
    **{(config, model + NPTM_SUFFIX): _pfec_resnet for config, model in PFEC_RESNET},
    ("pfec-a", "cifar-vgg16"): _pfec_vgg16_a,
    **{(config, "resnet34"): _pfec_resnet34 for config in PFEC_RESNET34},
}


def fixed_configuration(config: str, model_name: str, sizes: Mapping[str, int]) -> dict[str, int]:
    """Output channels kept per prunable layer under a named published configuration."""
    if (config, model_name) not in FIXED_CONFIGURATIONS:
        known = ", ".join(f"{c} ({m})" for c, m in sorted(FIXED_CONFIGURATIONS))
        raise BenchError(f"no fixed configuration '{config}' for model {model_name}; known: {known}")
    return FIXED_CONFIGURATIONS[(config, model_name)](config, model_name, sizes)
