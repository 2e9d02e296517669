"""The data layer: datasets as seeded train / validation / test splits with batched augmentation.

Data that fits in memory lives on the training device as tensors and is augmented a batch at a
time; ImageNet streams from disk through a DataLoader behind the same ``batches()`` contract.
"""

from __future__ import annotations

import torch

from harness.data.augment import augment_batch
from harness.data.cifar import load_cifar_splits
from harness.data.digits import load_digits_splits
from harness.data.fashion import load_fashion_splits
from harness.data.imagenet import FolderSplit, load_imagenet_splits
from harness.data.spec import (
    DATA_ROOT_ENV,
    DATASETS,
    PROTOCOLS,
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
    "PROTOCOLS",
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
    if spec.dataset == "fashion-mnist":
        return load_fashion_splits(spec, device)
    return load_synthetic_cifar_splits(spec, device)


OFFICIAL_TRAIN_SIZES = {"cifar10": 50_000, "cifar100": 50_000, "fashion-mnist": 60_000, "imagenet": 1_281_167}
"""Images in each dataset's official training split (ImageNet-1k's ILSVRC-2012 train/ folder)."""


def training_examples(spec: DataSpec) -> int:
    """Size of the training split (after validation is carved out, unless the paper protocol keeps it in,
    and cut to train_size where given), without reading the data set: per-step schedules need no data."""
    spec = spec.resolved()
    if spec.dataset in OFFICIAL_TRAIN_SIZES:
        pool = OFFICIAL_TRAIN_SIZES[spec.dataset]
        held = resolve_count(spec.val_size, pool, "val_size")
        if spec.protocol == "paper":
            held = 0
        return spec.train_size if spec.train_size is not None else pool - held
    return len(load_splits(spec).train)
