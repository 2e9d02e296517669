"""A small CNN for scikit-learn's 8x8 digits, so whole pipelines run in seconds on a CPU."""

import torch
from torch import nn

from harness.models.registry import all_convs, register_model

STAGE_WIDTHS = (16, 32, 64)


def _conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class DigitsCNN(nn.Module):
    """Three conv3x3-BN-ReLU stages on 1x8x8 input (8 -> 4 -> 2 pixels), global average pool, linear."""

    def __init__(self, num_classes: int):
        super().__init__()
        first, second, third = STAGE_WIDTHS
        self.features = nn.Sequential(
            *_conv_bn_relu(1, first),
            nn.MaxPool2d(2),
            *_conv_bn_relu(first, second),
            nn.MaxPool2d(2),
            *_conv_bn_relu(second, third),
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(third, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


@register_model("digits-cnn", prunable_layers=all_convs)
def digits_cnn(num_classes: int) -> DigitsCNN:
    return DigitsCNN(num_classes)
