"""Random CIFAR-shaped images for throughput tests on machines without CIFAR.

Each class has its own smooth colour pattern added to noise, so a network can learn something
and accuracy curves are not flat; the images are uint8 like CIFAR's, so they take the same path
through normalization and padding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.data.spec import DataSpec
from harness.data.splits import Splits, build_tensor_splits

NUM_CLASSES = 10
IMAGE_SHAPE = (3, 32, 32)
_PATTERN_CELLS = 4
_SIGNAL, _NOISE, _GREY = 48.0, 32.0, 128.0
_CHUNK = 4096


def load_synthetic_cifar_splits(spec: DataSpec, device: torch.device) -> Splits:
    """Everything is drawn from one generator seeded by split_seed: class patterns, pool, test set, carve."""
    generator = torch.Generator().manual_seed(spec.split_seed)
    coarse = torch.randn(NUM_CLASSES, IMAGE_SHAPE[0], _PATTERN_CELLS, _PATTERN_CELLS, generator=generator)
    patterns = F.interpolate(coarse, size=IMAGE_SHAPE[1:], mode="bilinear", align_corners=False)
    pool_images, pool_labels = _draw(patterns, spec.train_size + spec.val_size, generator)
    test_images, test_labels = _draw(patterns, spec.test_size, generator)
    return build_tensor_splits(
        pool_images,
        pool_labels,
        test_images,
        test_labels,
        val_count=spec.val_size,
        generator=generator,
        scale=255,
        spec=spec,
        num_classes=NUM_CLASSES,
        synthetic=True,
        device=device,
    )


def _draw(patterns: torch.Tensor, count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.randint(0, NUM_CLASSES, (count,), generator=generator)
    images = torch.empty(count, *IMAGE_SHAPE, dtype=torch.uint8)
    for start in range(0, count, _CHUNK):
        chunk = labels[start : start + _CHUNK]
        noise = torch.randn(len(chunk), *IMAGE_SHAPE, generator=generator)
        pixels = _GREY + _SIGNAL * patterns[chunk] + _NOISE * noise
        images[start : start + _CHUNK] = pixels.round_().clamp_(0, 255).to(torch.uint8)
    return images, labels
