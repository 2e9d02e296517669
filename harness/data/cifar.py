"""CIFAR-10 and CIFAR-100 from a local directory in torchvision's on-disk format; never downloads."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from harness.core.errors import BenchError
from harness.data.spec import DATA_ROOT_ENV, DataSpec
from harness.data.splits import Normalization, Splits, build_official_splits

IMAGE_SHAPE = (3, 32, 32)
PIXEL_MAX = 255
PAPER_NORMALIZATION = Normalization(mean=(0.4914, 0.4822, 0.4465), std=(0.2023, 0.1994, 0.2010))
"""The official code's fixed constants (Le & Hua 2021, PFEC's reference code), for CIFAR-10 and CIFAR-100
alike; used under ``protocol = "paper"``."""


@dataclass(frozen=True)
class CifarLayout:
    """Where torchvision's extracted archive keeps each part, and the pickle keys it uses."""

    title: str
    torchvision_class: str
    directory: str
    train_files: tuple[str, ...]
    test_file: str
    meta_file: str
    label_key: bytes
    class_names_key: bytes


LAYOUTS = {
    "cifar10": CifarLayout(
        title="CIFAR-10",
        torchvision_class="CIFAR10",
        directory="cifar-10-batches-py",
        train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test_file="test_batch",
        meta_file="batches.meta",
        label_key=b"labels",
        class_names_key=b"label_names",
    ),
    "cifar100": CifarLayout(
        title="CIFAR-100",
        torchvision_class="CIFAR100",
        directory="cifar-100-python",
        train_files=("train",),
        test_file="test",
        meta_file="meta",
        label_key=b"fine_labels",
        class_names_key=b"fine_label_names",
    ),
}


def load_cifar_splits(spec: DataSpec, device: torch.device) -> Splits:
    layout = LAYOUTS[spec.dataset]
    folder = spec.data_root() / layout.directory
    how_to_fix = (
        f"download it once with torchvision ({layout.torchvision_class}(root, download=True)) on a machine "
        f"with internet, then set {DATA_ROOT_ENV}=DIR (or data.root in the track file)"
    )
    if not folder.is_dir():
        raise BenchError(f"{layout.title} not found at {folder}; {how_to_fix}")
    expected = (*layout.train_files, layout.test_file, layout.meta_file)
    missing = [name for name in expected if not (folder / name).is_file()]
    if missing:
        raise BenchError(f"{layout.title} at {folder} is incomplete (missing {', '.join(missing)}); {how_to_fix}")
    num_classes = len(_read_pickle(folder / layout.meta_file, (layout.class_names_key,))[layout.class_names_key])
    parts = [_read_part(folder / name, layout.label_key, num_classes) for name in layout.train_files]
    pool_images = torch.cat([images for images, _ in parts])
    pool_labels = torch.cat([labels for _, labels in parts])
    test_images, test_labels = _read_part(folder / layout.test_file, layout.label_key, num_classes)
    return build_official_splits(
        pool_images, pool_labels, test_images, test_labels, spec, device,
        scale=PIXEL_MAX, num_classes=num_classes, paper_normalization=PAPER_NORMALIZATION,
    )


def _read_pickle(path: Path, keys: tuple[bytes, ...]) -> dict:
    try:
        with path.open("rb") as handle:
            entry = pickle.load(handle, encoding="bytes")
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise BenchError(f"cannot read {path} ({exc}); re-download the dataset with torchvision") from None
    if not isinstance(entry, dict) or any(key not in entry for key in keys):
        wanted = ", ".join(repr(key) for key in keys)
        raise BenchError(
            f"{path} is not a CIFAR pickle (expected keys {wanted}); re-download the dataset with torchvision"
        )
    return entry


def _read_part(path: Path, label_key: bytes, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 N x 3 x 32 x 32 images, int64 labels) from one pickle; rows are stored channel-major."""
    entry = _read_pickle(path, (b"data", label_key))
    data = np.asarray(entry[b"data"], dtype=np.uint8)
    labels = np.asarray(entry[label_key], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != np.prod(IMAGE_SHAPE) or len(labels) != len(data):
        raise BenchError(
            f"{path} holds data of shape {data.shape} and {len(labels)} labels, not N x 3072 images with one label "
            f"each; re-download the dataset with torchvision"
        )
    if len(labels) and not (labels.min() >= 0 and labels.max() < num_classes):
        raise BenchError(f"{path} has labels outside 0..{num_classes - 1}; re-download the dataset with torchvision")
    return torch.from_numpy(data.reshape(-1, *IMAGE_SHAPE).copy()), torch.from_numpy(labels)
