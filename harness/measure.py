"""Parameter and MAC counts at batch 1, the units the pruning literature reports.

fvcore counts one multiply-add as one "flop", i.e. MACs. Its total also includes
batch-norm and pooling; papers count only convolutions and fully connected layers, so
both are reported. ``count_flop_counter_mode`` is an independent count by PyTorch itself
(two FLOPs per MAC) that the tests use to cross-check fvcore.
"""

import copy
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.utils.flop_counter import FlopCounterMode

from harness.errors import BenchError

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
    probe = _eval_copy_on_cpu(model)
    analysis = (
        FlopCountAnalysis(probe, _example_input(input_shape))
        .unsupported_ops_warnings(False)
        .uncalled_modules_warnings(False)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        by_operator = analysis.by_operator()
    return Counts(
        params=sum(parameter.numel() for parameter in model.parameters()),
        macs=int(sum(by_operator.values())),
        macs_conv_linear=int(sum(n for op, n in by_operator.items() if op in CONV_LINEAR_OPERATORS)),
        nonzero_params=_count_nonzero_effective_params(model),
    )


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
