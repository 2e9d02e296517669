"""Parameter and MAC counts at batch 1, the units the pruning literature reports.

fvcore counts one multiply-add as one "flop", i.e. MACs. Its total also includes
batch-norm and pooling; papers count only convolutions and fully connected layers, so
both are reported. ``count_flop_counter_mode`` is an independent count by PyTorch itself
(two FLOPs per MAC) that the tests use to cross-check fvcore.

Masks leave every multiply in place, so a masked model's real MACs are the dense model's;
``count_sparse`` reports the MACs its zeros would save on hardware that skipped them, marked
theoretical. ``ChannelCosts`` and ``WeightCosts`` predict the counts of a per-layer allocation
without building it, so targets can search over allocations; tests hold them to fvcore.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.utils.flop_counter import FlopCounterMode

from harness.core.errors import BenchError
from harness.prune.surgery import channel_dependents

with warnings.catch_warnings():
    # fvcore scripts a loss function at import time, which torch>=2.9 flags as deprecated.
    warnings.simplefilter("ignore", FutureWarning)
    from fvcore.nn import FlopCountAnalysis

CONV_LINEAR_OPERATORS = frozenset({"conv", "linear", "addmm", "mm", "bmm", "matmul", "einsum"})
MASK_SUFFIX = "_mask"
ORIGINAL_SUFFIX = "_orig"


@dataclass(frozen=True)
class Counts:
    params: int
    macs: int
    macs_conv_linear: int
    nonzero_params: int


def count(model: nn.Module, input_shape: tuple[int, int, int]) -> Counts:
    """Count ``model`` on one ``(C, H, W)`` input; the model itself is left untouched."""
    analysis = _fvcore_analysis(model, input_shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        by_operator = analysis.by_operator()
    return Counts(
        params=sum(parameter.numel() for parameter in model.parameters()),
        macs=int(sum(by_operator.values())),
        macs_conv_linear=int(sum(n for op, n in by_operator.items() if op in CONV_LINEAR_OPERATORS)),
        nonzero_params=_count_nonzero_effective_params(model),
    )


def _fvcore_analysis(model: nn.Module, input_shape: tuple[int, int, int]) -> FlopCountAnalysis:
    return (
        FlopCountAnalysis(_eval_copy_on_cpu(model), _example_input(input_shape))
        .unsupported_ops_warnings(False)
        .uncalled_modules_warnings(False)
    )


@dataclass(frozen=True)
class SparseCounts:
    """What a masked model's zeros amount to. ``theoretical_macs_conv_linear`` assumes zeros cost nothing."""

    sparsity: float
    nonzero_params: int
    theoretical_macs_conv_linear: int


def count_sparse(model: nn.Module, masks: Mapping[str, torch.Tensor], input_shape: tuple[int, int, int]) -> SparseCounts:
    """Sparsity over the masked layers' weights, non-zero parameters, and each masked layer's fvcore
    MACs scaled by the fraction of its weights kept (the others' MACs unchanged)."""
    analysis = _fvcore_analysis(model, input_shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        by_operator, by_module = analysis.by_operator(), analysis.by_module()
    dense_macs = sum(n for op, n in by_operator.items() if op in CONV_LINEAR_OPERATORS)
    saved = sum(by_module.get(layer, 0) * int((~mask.bool()).sum()) // mask.numel() for layer, mask in masks.items())
    total = sum(mask.numel() for mask in masks.values())
    zeroed = sum(int((~mask.bool()).sum()) for mask in masks.values())
    return SparseCounts(
        sparsity=zeroed / total if total else 0.0,
        nonzero_params=_count_nonzero_effective_params(model),
        theoretical_macs_conv_linear=int(dense_macs - saved),
    )


@dataclass(frozen=True)
class Estimate:
    """Predicted parameters and conv+linear MACs (batch 1) of one allocation."""

    params: int
    macs: int


@dataclass(frozen=True)
class _ModuleCost:
    """``params = per_in_out*in*out + per_out*out + fixed``, ``macs = macs_per_in_out*in*out``; ``in``/``out``
    are the dense sizes unless a prunable layer's kept count (times a multiplier) replaces them."""

    in_size: int
    out_size: int
    params_per_in_out: int
    params_per_out: int
    params_fixed: int
    macs_per_in_out: int
    in_from: tuple[str, int] | None = None
    out_from: tuple[str, int] | None = None

    def estimate(self, keep: Mapping[str, int]) -> tuple[int, int]:
        size_in = keep[self.in_from[0]] * self.in_from[1] if self.in_from else self.in_size
        size_out = keep[self.out_from[0]] * self.out_from[1] if self.out_from else self.out_size
        params = self.params_per_in_out * size_in * size_out + self.params_per_out * size_out + self.params_fixed
        return params, self.macs_per_in_out * size_in * size_out


@dataclass(frozen=True)
class ChannelCosts:
    """Counts of the model after keeping ``keep[layer]`` output channels of each prunable layer."""

    sizes: Mapping[str, int]
    modules: tuple[_ModuleCost, ...]

    def estimate(self, keep: Mapping[str, int]) -> Estimate:
        full = {**self.sizes, **keep}
        params = macs = 0
        for module in self.modules:
            module_params, module_macs = module.estimate(full)
            params, macs = params + module_params, macs + module_macs
        return Estimate(params, macs)

    @property
    def dense(self) -> Estimate:
        return self.estimate(self.sizes)


@dataclass(frozen=True)
class WeightCosts:
    """Counts of the model after keeping ``keep[layer]`` weights of each masked layer: parameters
    net of the zeros, and theoretical MACs (each zero saves its multiply at every output position)."""

    sizes: Mapping[str, int]
    macs_per_weight: Mapping[str, int]
    dense: Estimate

    def estimate(self, keep: Mapping[str, int]) -> Estimate:
        zeros = {layer: self.sizes[layer] - count for layer, count in keep.items()}
        return Estimate(self.dense.params - sum(zeros.values()),
                        self.dense.macs - sum(self.macs_per_weight[layer] * n for layer, n in zeros.items()))


def _output_positions(model: nn.Module, input_shape: tuple[int, int, int]) -> dict[str, int]:
    """How many output positions each conv/linear computes for one input (0 if never called)."""
    positions: dict[str, int] = {}
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            channels = module.out_channels if isinstance(module, nn.Conv2d) else module.out_features

            def record(_module, _inputs, output, name=name, channels=channels):
                positions[name] = positions.get(name, 0) + output.numel() // channels

            hooks.append(module.register_forward_hook(record))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(_example_input(input_shape).to(next(model.parameters()).device))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return positions


def weight_costs(model: nn.Module, layers: list[str], input_shape: tuple[int, int, int]) -> WeightCosts:
    """Cost model for masking the weights of ``layers`` (convs and linears)."""
    modules = dict(model.named_modules())
    positions = _output_positions(model, input_shape)
    per_weight = {}
    for layer in layers:
        module = modules[layer]
        if not isinstance(module, (nn.Conv2d, nn.Linear)):
            raise BenchError(f"layer '{layer}' is a {type(module).__name__}; only conv and linear weights can be masked")
        per_weight[layer] = positions.get(layer, 0)
    macs = sum(calls * modules[name].weight.numel() for name, calls in positions.items())
    return WeightCosts(
        sizes={layer: modules[layer].weight.numel() for layer in layers},
        macs_per_weight=per_weight,
        dense=Estimate(sum(p.numel() for p in model.parameters()), macs),
    )


def channel_costs(model: nn.Module, layers: list[str], input_shape: tuple[int, int, int]) -> ChannelCosts:
    """Cost model for removing output channels of ``layers``, from the dependency graph and one forward pass."""
    modules = dict(model.named_modules())
    positions = _output_positions(model, input_shape)
    device = next(model.parameters()).device
    sources: dict[tuple[str, str], tuple[str, int]] = {}
    for layer, dependents in channel_dependents(model, layers, _example_input(input_shape).to(device)).items():
        for dependent in dependents:
            sources[(dependent.module, dependent.axis)] = (layer, dependent.per_channel)
    costs = []
    for name, module in modules.items():
        own = sum(p.numel() for p in module.parameters(recurse=False))
        if own == 0:
            continue
        in_from, out_from = sources.get((name, "in")), sources.get((name, "out"))
        costs.append(_module_cost(name, module, own, positions.get(name, 0), in_from, out_from))
    return ChannelCosts(sizes={layer: modules[layer].out_channels for layer in layers}, modules=tuple(costs))


def _module_cost(name: str, module: nn.Module, own: int, positions: int,
                 in_from: tuple[str, int] | None, out_from: tuple[str, int] | None) -> _ModuleCost:
    bias = 0 if getattr(module, "bias", None) is None else 1
    if isinstance(module, nn.Conv2d) and module.groups == 1:
        per_in_out = math.prod(module.kernel_size)
        return _ModuleCost(module.in_channels, module.out_channels, per_in_out, bias, 0, per_in_out * positions,
                           in_from, out_from)
    if isinstance(module, nn.Linear):
        return _ModuleCost(module.in_features, module.out_features, 1, bias, 0, positions, in_from, out_from)
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return _ModuleCost(1, module.num_features, 0, own // module.num_features, 0, 0, None, out_from)
    if in_from or out_from:
        raise BenchError(f"pruning reshapes '{name}' ({type(module).__name__}), which the cost model cannot count; "
                         "prune other layers")
    macs = positions * module.weight.numel() if isinstance(module, (nn.Conv2d, nn.Linear)) else 0
    return _ModuleCost(1, 1, 0, 0, own, macs)


def count_flop_counter_mode(model: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """FLOPs (2 per MAC) of conv and matrix-multiply ops as counted by ``torch.utils.flop_counter``."""
    probe = _eval_copy_on_cpu(model)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        probe(_example_input(input_shape))
    return counter.get_total_flops()


def _eval_copy_on_cpu(model: nn.Module) -> nn.Module:
    """Deep-copy even masked models: ``torch.nn.utils.prune`` keeps its computed weight as a
    non-leaf tensor, which cannot be deep-copied; the copy gets it detached (its hook recomputes it)."""
    computed_tensors = {
        id(value): value.detach().clone()
        for module in model.modules()
        for value in vars(module).values()
        if isinstance(value, torch.Tensor) and not value.is_leaf
    }
    return copy.deepcopy(model, computed_tensors).cpu().eval()


def _example_input(input_shape: tuple[int, int, int]) -> torch.Tensor:
    if len(input_shape) != 3 or any(int(size) < 1 for size in input_shape):
        raise BenchError(f"input shape must be (channels, height, width) of positive sizes, got {input_shape}")
    return torch.zeros(1, *input_shape)


def _count_nonzero_effective_params(model: nn.Module) -> int:
    """Non-zeros of the weights the forward pass uses, so masks from ``torch.nn.utils.prune``
    or ``torch.nn.utils.parametrize`` count as zeros. Zero-initialised biases count as zeros too."""
    with torch.no_grad():
        return sum(int(torch.count_nonzero(tensor)) for tensor in _effective_tensors(model))


def _effective_tensors(model: nn.Module) -> Iterator[torch.Tensor]:
    for module in model.modules():
        if isinstance(module, parametrize.ParametrizationList):
            continue
        if parametrize.is_parametrized(module):
            yield from (getattr(module, name) for name in module.parametrizations)
        for name, parameter in module.named_parameters(recurse=False):
            masked_name = name.removesuffix(ORIGINAL_SUFFIX)
            is_masked = name.endswith(ORIGINAL_SUFFIX) and hasattr(module, masked_name + MASK_SUFFIX)
            yield getattr(module, masked_name) if is_masked else parameter
