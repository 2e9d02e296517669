"""CIFAR ResNets of He et al. (2016), section 4.2, with the option-A shortcut.

Widths 16/32/64 in three stages of n BasicBlocks (depth 6n+2). The shortcut subsamples
spatially and zero-pads channels, so it has no parameters: ResNet-56 is exactly the
853,018-parameter / 125.5M-MAC network that PFEC and the paper prune.

``cifar-resnetN-nptm`` is the official code's variant (Le & Hua 2021, from the code of Liu et al.'s
"Rethinking the Value of Network Pruning"): the shortcut down-samples with 2x2 average pooling and is
detached, so no gradient flows through the down-sampling shortcuts. Same layout, counts and
initialisation, different function. ``fashion-resnet20`` is ResNet-20 with a 1-channel stem for
28x28 greyscale images (28 -> 14 -> 7 pixels per stage).
"""


import torch
import torch.nn.functional as F
from torch import nn

from harness.models.registry import initialise_like_pfec, register_model

STAGE_WIDTHS = (16, 32, 64)


class ZeroPadShortcut(nn.Module):
    """Option A: ``x[:, :, ::2, ::2]`` and zero channels appended, parameter-free."""

    def __init__(self, out_channels: int):
        super().__init__()
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        subsampled = x[:, :, ::2, ::2]
        return F.pad(subsampled, (0, 0, 0, 0, 0, self.out_channels - subsampled.shape[1]))


class AvgPoolShortcut(nn.Module):
    """The official code's option A: 2x2 average pooling, zero channels appended, detached from the graph."""

    def __init__(self, out_channels: int):
        super().__init__()
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.avg_pool2d(x, 2, 2).detach()
        return F.pad(pooled, (0, 0, 0, 0, 0, self.out_channels - pooled.shape[1]))


SHORTCUTS = {"subsample": ZeroPadShortcut, "avgpool-detached": AvgPoolShortcut}


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int, shortcut: str = "subsample"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        downsamples = stride != 1 or in_channels != out_channels
        self.shortcut = SHORTCUTS[shortcut](out_channels) if downsamples else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, depth: int, num_classes: int, in_channels: int = 3, shortcut: str = "subsample"):
        super().__init__()
        if (depth - 2) % 6 != 0:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
        blocks_per_stage = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, STAGE_WIDTHS[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(STAGE_WIDTHS[0])
        in_channels = STAGE_WIDTHS[0]
        stages = []
        for stage_index, width in enumerate(STAGE_WIDTHS):
            first_stride = 1 if stage_index == 0 else 2
            blocks = []
            for block_index in range(blocks_per_stage):
                blocks.append(BasicBlock(in_channels, width, first_stride if block_index == 0 else 1, shortcut))
                in_channels = width
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_classes)
        initialise_like_pfec(self, bn_scale=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def block_first_convs(model: nn.Module) -> list[str]:
    """Only block-internal channels: the zero-padding shortcut ties every other conv's outputs to the residual."""
    return [
        f"{name}.conv1" for name, module in model.named_modules() if isinstance(module, BasicBlock)
    ]


DEPTHS = (20, 32, 56, 110)
VARIANTS = {"": "subsample", "-nptm": "avgpool-detached"}
"""Name suffix -> shortcut: ``cifar-resnetN`` (option A) and ``cifar-resnetN-nptm`` (the official code's)."""


def _register(depth: int, suffix: str, shortcut: str) -> None:
    @register_model(f"cifar-resnet{depth}{suffix}", prunable_layers=block_first_convs)
    def factory(num_classes: int) -> CifarResNet:
        return CifarResNet(depth, num_classes, shortcut=shortcut)


for _suffix, _shortcut in VARIANTS.items():
    for _depth in DEPTHS:
        _register(_depth, _suffix, _shortcut)


@register_model("fashion-resnet20", prunable_layers=block_first_convs)
def fashion_resnet20(num_classes: int) -> CifarResNet:
    return CifarResNet(20, num_classes, in_channels=1)
