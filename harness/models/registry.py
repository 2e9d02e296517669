"""Name -> model factory registry, in the style of timm's ``register_model``.

Each entry also says which convs have prunable output channels: that is the track's
decision (design brief), so it lives beside the architecture rather than in a method.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from harness.core.errors import BenchError

ModelFactory = Callable[[int], nn.Module]
PrunableLayers = Callable[[nn.Module], list[str]]


@dataclass(frozen=True)
class ModelEntry:
    factory: ModelFactory
    prunable_layers: PrunableLayers


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, prunable_layers: PrunableLayers) -> Callable[[ModelFactory], ModelFactory]:
    """Register ``factory(num_classes) -> nn.Module`` under ``name``."""

    def decorate(factory: ModelFactory) -> ModelFactory:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelEntry(factory=factory, prunable_layers=prunable_layers)
        return factory

    return decorate


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def _entry(name: str) -> ModelEntry:
    if name not in _REGISTRY:
        raise BenchError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}")
    return _REGISTRY[name]


def create_model(name: str, num_classes: int) -> nn.Module:
    """Build a freshly initialised model; seed with ``torch.manual_seed`` first for reproducibility."""
    if num_classes < 1:
        raise BenchError(f"num_classes must be a positive integer, got {num_classes}; fix the track's dataset")
    return _entry(name).factory(num_classes)


def prunable_layers(name: str, model: nn.Module) -> list[str]:
    """Qualified names (as in ``model.named_modules()``) of convs whose output channels may be pruned."""
    return _entry(name).prunable_layers(model)


def all_convs(model: nn.Module) -> list[str]:
    return [name for name, module in model.named_modules() if isinstance(module, nn.Conv2d)]


def initialise_like_pfec(model: nn.Module, bn_scale: float, linear_std: float | None = None) -> None:
    """The PFEC reference code's initialisation, which the paper's code keeps: He-normal convs (fan-out),
    BN scale ``bn_scale`` with zero shift, and (where the reference sets one) N(0, ``linear_std``) linears
    with zero bias; so runs start where the reference's do."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
            nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.constant_(module.weight, bn_scale)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear) and linear_std is not None:
            nn.init.normal_(module.weight, 0.0, linear_std)
            nn.init.zeros_(module.bias)
