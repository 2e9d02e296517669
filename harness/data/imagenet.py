"""ImageNet from an ImageFolder tree, streamed from disk because it does not fit in memory."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import default_loader

from harness.core.errors import BenchError
from harness.data.spec import DATA_ROOT_ENV, DataSpec, resolve_count
from harness.data.splits import Batch, Normalization, Split, Splits, stratified_carve

IMAGENET_NORMALIZATION = Normalization(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
IMAGE_SIZE = 224
RESIZE_SIZE = 256
_SEED_MIX = 0x9E3779B97F4A7C15


def default_loader_workers() -> int:
    return min(8, len(os.sched_getaffinity(0)))


class _SeededImages(Dataset):
    """Decoded, transformed images whose random transform is a function of (epoch seed, index).

    torchvision's transforms draw from the global torch RNG; seeding it per sample inside a forked
    RNG state makes an epoch's augmentation depend only on the batches() generator, not on the
    number of loader workers or on anything else that touched the global RNG.
    """

    def __init__(self, samples: tuple[tuple[str, int], ...], transform: Callable, epoch_seed: int | None):
        self.samples = samples
        self.transform = transform
        self.epoch_seed = epoch_seed

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        image = default_loader(path)
        if self.epoch_seed is None:
            return self.transform(image), label
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed((self.epoch_seed ^ (index * _SEED_MIX)) % 2**63)
            return self.transform(image), label


@dataclass(frozen=True, eq=False)
class FolderSplit(Split):
    """A split of image files decoded by a DataLoader, with the same batches() contract as TensorSplit."""

    samples: tuple[tuple[str, int], ...]
    train_transform: Callable
    eval_transform: Callable
    device: torch.device
    num_workers: int = 0

    def __len__(self) -> int:
        return len(self.samples)

    def __repr__(self) -> str:
        return f"FolderSplit({len(self)} images, device={self.device}, num_workers={self.num_workers})"

    def _epoch(
        self, batch_size: int, generator: torch.Generator | None, shuffle: bool, augment: bool, drop_last: bool
    ) -> Iterator[Batch]:
        """``augment`` picks the training transform. ``generator`` may live on any device.

        Two seeds are drawn from ``generator`` per epoch, at the call: one for the sampler's order, one
        for the per-image augmentation.
        """
        order_seed, augment_seed = (
            torch.randint(0, 2**62, (2,), generator=generator, device=generator.device).tolist()
            if generator is not None
            else (0, None)
        )
        order_generator = torch.Generator().manual_seed(order_seed)
        order = torch.randperm(len(self), generator=order_generator).tolist() if shuffle else range(len(self))
        images = _SeededImages(
            self.samples,
            self.train_transform if augment else self.eval_transform,
            augment_seed if augment else None,
        )
        loader = DataLoader(
            images,
            batch_size=batch_size,
            sampler=order,
            drop_last=drop_last,
            num_workers=self.num_workers,
            pin_memory=self.device.type == "cuda",
            generator=order_generator,
        )
        return ((x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)) for x, y in loader)


def imagenet_transforms(horizontal_flip: bool) -> tuple[Callable, Callable]:
    """(train, eval) transforms of the standard ImageNet recipe."""
    to_normalized_tensor = [
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_NORMALIZATION.mean, IMAGENET_NORMALIZATION.std),
    ]
    flip = [transforms.RandomHorizontalFlip()] if horizontal_flip else []
    train = transforms.Compose([transforms.RandomResizedCrop(IMAGE_SIZE), *flip, *to_normalized_tensor])
    evaluation = transforms.Compose(
        [transforms.Resize(RESIZE_SIZE), transforms.CenterCrop(IMAGE_SIZE), *to_normalized_tensor]
    )
    return train, evaluation


def load_imagenet_splits(spec: DataSpec, device: torch.device, loader_workers: int | None = None) -> Splits:
    """Validation carved from train/ with split_seed (stratified); the official val/ folder is the test split."""
    folder = spec.data_root() / "imagenet"
    for part in ("train", "val"):
        if not (folder / part).is_dir():
            raise BenchError(
                f"ImageNet not found at {folder / part}; put the ImageFolder tree there "
                f"(imagenet/train/<wnid>/*.JPEG and imagenet/val/<wnid>/*.JPEG) "
                f"and set {DATA_ROOT_ENV}=DIR (or data.root in the track file)"
            )
    train_folder, test_folder = _read_folder(folder / "train"), _read_folder(folder / "val")
    if test_folder.classes != train_folder.classes:
        raise BenchError(
            f"ImageNet at {folder}: val/ has {len(test_folder.classes)} class folders and train/ has "
            f"{len(train_folder.classes)}, or their names differ; both need the same <wnid> folders"
        )
    pool_labels = torch.tensor(train_folder.targets, dtype=torch.int64)
    train_index, val_index = stratified_carve(
        pool_labels,
        resolve_count(spec.val_size, len(pool_labels), "val_size"),
        torch.Generator().manual_seed(spec.split_seed),
    )
    train_transform, eval_transform = imagenet_transforms(spec.horizontal_flip)
    workers = default_loader_workers() if loader_workers is None else loader_workers

    def split(samples: list[tuple[str, int]]) -> FolderSplit:
        return FolderSplit(tuple(samples), train_transform, eval_transform, device, workers)

    return Splits(
        train=split([train_folder.samples[i] for i in train_index.tolist()]),
        val=split([train_folder.samples[i] for i in val_index.tolist()]),
        test=split(test_folder.samples),
        num_classes=len(train_folder.classes),
        input_shape=(3, IMAGE_SIZE, IMAGE_SIZE),
        normalization=IMAGENET_NORMALIZATION,
        spec=spec,
        synthetic=False,
    )


def _read_folder(path: Path) -> ImageFolder:
    try:
        return ImageFolder(path)
    except FileNotFoundError as exc:
        raise BenchError(
            f"ImageNet folder {path} is not an ImageFolder tree ({exc}); add <wnid>/*.JPEG class folders"
        ) from None
