"""The data layer: datasets as seeded train / validation / test splits with batched augmentation.

Data that fits in memory lives on the training device as tensors and is augmented a batch at a
time; ImageNet streams from disk through a DataLoader behind the same ``batches()`` contract.
"""

from __future__ import annotations

import torch

from harness.data.augment import augment_batch
from harness.data.cifar import load_cifar_splits
from harness.data.digits import load_digits_splits
from harness.data.imagenet import FolderSplit, load_imagenet_splits
from harness.data.spec import (
    DATA_ROOT_ENV,
    DATASETS,
    DataSpec,
    default_data_root,
    resolve_count,
)
from harness.data.splits import (
    Normalization,
    Split,
    Splits,
    TensorSplit,
    stratified_carve,
)
from harness.data.synthetic import load_synthetic_cifar_splits

__all__ = [
    "DATASETS",
    "DATA_ROOT_ENV",
    "DataSpec",
    "FolderSplit",
    "Normalization",
    "Split",
    "Splits",
    "TensorSplit",
    "augment_batch",
    "default_data_root",
    "load_splits",
    "stratified_carve",
    "training_examples",
]


def load_splits(spec: DataSpec, device: str | torch.device = "cpu", *, loader_workers: int | None = None) -> Splits:
    """Load ``spec``'s dataset as splits on ``device``; ``loader_workers`` only matters for imagenet."""
    spec = spec.resolved()
    device = torch.device(device)
    if spec.dataset == "digits":
        return load_digits_splits(spec, device)
    if spec.dataset in ("cifar10", "cifar100"):
        return load_cifar_splits(spec, device)
    if spec.dataset == "imagenet":
        return load_imagenet_splits(spec, device, loader_workers)
    return load_synthetic_cifar_splits(spec, device)


OFFICIAL_TRAIN_SIZES = {"cifar10": 50_000, "cifar100": 50_000}


def training_examples(spec: DataSpec) -> int:
    """Size of the training split (after validation is carved out), without reading CIFAR's pixels."""
    spec = spec.resolved()
    if spec.dataset in OFFICIAL_TRAIN_SIZES:
        pool = OFFICIAL_TRAIN_SIZES[spec.dataset]
        return pool - resolve_count(spec.val_size, pool, "val_size")
    return len(load_splits(spec).train)
