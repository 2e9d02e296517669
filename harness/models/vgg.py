"""VGG-16 for CIFAR as pruned by PFEC (Li et al. 2017).

Layout follows the public PFEC code (rethinking-network-pruning, cifar/l1-norm-pruning/
models/vgg.py): bias-free conv3x3-BN-ReLU layers, no pooling after the last stage, a
2x2 average pool, then Linear-BN1d-ReLU-Linear. That gives 14,987,722 parameters for
10 classes, and a per-layer ``cfg`` of widths reproduces PFEC's VGG-16-A.
"""

from collections.abc import Sequence

import torch
from torch import nn

from harness.models.registry import all_convs, initialise_like_pfec, register_model

POOL = "M"
VGG16_CFG: tuple[int | str, ...] = (
    64, 64, POOL, 128, 128, POOL, 256, 256, 256, POOL, 512, 512, 512, POOL, 512, 512, 512,
)


class CifarVGG(nn.Module):
    def __init__(self, cfg: Sequence[int | str], num_classes: int):
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 3
        for entry in cfg:
            if entry == POOL:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [
                    nn.Conv2d(in_channels, entry, 3, padding=1, bias=False),
                    nn.BatchNorm2d(entry),
                    nn.ReLU(inplace=True),
                ]
                in_channels = entry
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AvgPool2d(2)
        self.classifier = nn.Sequential(
            nn.Linear(in_channels, 512),
            nn.BatchNorm1d(512),
            nn.ReLU(inplace=True),
            nn.Linear(512, num_classes),
        )
        initialise_like_pfec(self, bn_scale=0.5, linear_std=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


@register_model("cifar-vgg16", prunable_layers=all_convs)
def cifar_vgg16(num_classes: int) -> CifarVGG:
    return CifarVGG(VGG16_CFG, num_classes)
