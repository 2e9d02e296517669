"""torchvision's ImageNet ResNets, always randomly initialised (weights are never downloaded)."""

import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from harness.models.registry import register_model


def block_internal_convs(model: nn.Module) -> list[str]:
    """Convs whose outputs stay inside a block; the last conv of each block feeds the residual add."""
    names = []
    for name, module in model.named_modules():
        if isinstance(module, BasicBlock):
            names.append(f"{name}.conv1")
        elif isinstance(module, Bottleneck):
            names += [f"{name}.conv1", f"{name}.conv2"]
    return names


@register_model("resnet18", prunable_layers=block_internal_convs)
def resnet18(num_classes: int) -> nn.Module:
    return torchvision.models.resnet18(weights=None, num_classes=num_classes)


@register_model("resnet34", prunable_layers=block_internal_convs)
def resnet34(num_classes: int) -> nn.Module:
    return torchvision.models.resnet34(weights=None, num_classes=num_classes)


@register_model("resnet50", prunable_layers=block_internal_convs)
def resnet50(num_classes: int) -> nn.Module:
    return torchvision.models.resnet50(weights=None, num_classes=num_classes)
