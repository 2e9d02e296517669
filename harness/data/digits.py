"""scikit-learn's bundled 8x8 handwritten digits: real data that needs no download."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits

from harness.data.spec import DataSpec, resolve_count
from harness.data.splits import Splits, build_tensor_splits, stratified_carve

PIXEL_MAX = 16


def load_digits_splits(spec: DataSpec, device: torch.device) -> Splits:
    """Stratified test, then validation, carved from all 1797 images with one generator seeded by split_seed."""
    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.uint8)).unsqueeze(1)
    labels = torch.from_numpy(bunch.target).to(torch.int64)
    total = len(labels)
    test_count = resolve_count(spec.test_size, total, "test_size")
    val_count = resolve_count(spec.val_size, total, "val_size")
    resolve_count(test_count + val_count, total, "test_size + val_size")
    generator = torch.Generator().manual_seed(spec.split_seed)
    pool_index, test_index = stratified_carve(labels, test_count, generator)
    return build_tensor_splits(
        images[pool_index],
        labels[pool_index],
        images[test_index],
        labels[test_index],
        val_count=val_count,
        generator=generator,
        scale=PIXEL_MAX,
        spec=spec,
        num_classes=len(bunch.target_names),
        synthetic=False,
        device=device,
    )
