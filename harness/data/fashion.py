"""Fashion-MNIST (Xiao et al. 2017) from its idx files; never downloads.

The files are looked for in ``DATA_ROOT/FashionMNIST/raw/`` (where torchvision's ``FashionMNIST``
keeps them; ``DATA_ROOT`` is data.root or $PRUNE_BENCH_DATA) and then in the Debian package
``dataset-fashion-mnist``'s folder. Each file may be plain or gzipped (``<name>`` or ``<name>.gz``).
Headers are checked against the file sizes, and the two splits against the official 60,000 / 10,000.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from harness.core.errors import BenchError
from harness.data.spec import DATA_ROOT_ENV, DataSpec
from harness.data.splits import Splits, build_official_splits

DEBIAN_FOLDER = Path("/usr/share/datasets/fashion-mnist")
INSTALL_HINT = "apt-get install dataset-fashion-mnist"
IMAGE_SIDE = 28
PIXEL_MAX = 255
NUM_CLASSES = 10
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
EXPECTED_COUNTS = {"train": 60_000, "test": 10_000}
"""The official split sizes every loaded copy is checked against (tests of small files replace them)."""
_IMAGES_MAGIC, _LABELS_MAGIC = 0x00000803, 0x00000801


def candidate_folders(spec: DataSpec) -> list[Path]:
    return [spec.data_root() / "FashionMNIST" / "raw", DEBIAN_FOLDER]


def _file(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def find_folder(spec: DataSpec) -> Path:
    """The first candidate folder holding all four files, or a one-line error naming the fix."""
    folders = candidate_folders(spec)
    for folder in folders:
        if all(_file(folder, name) for pair in FILES.values() for name in pair):
            return folder
    looked = " or ".join(str(folder) for folder in folders)
    raise BenchError(
        f"Fashion-MNIST not found (looked in {looked}); install it with `{INSTALL_HINT}` "
        f"or put its idx files in ${DATA_ROOT_ENV}/FashionMNIST/raw/"
    )


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise BenchError(f"cannot read {path} ({exc}); reinstall it with `{INSTALL_HINT}`") from None


def read_idx(path: Path, magic: int, dims: int) -> np.ndarray:
    """An idx file's uint8 array; the header's magic number and sizes must match the payload exactly."""
    data = _read_bytes(path)
    header = 4 + 4 * dims
    if len(data) < header:
        raise BenchError(f"{path} is too short for an idx header; reinstall it with `{INSTALL_HINT}`")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise BenchError(f"{path} has magic number {found:#010x}, not {magic:#010x} (idx uint8 with {dims} "
                         f"dimensions); reinstall it with `{INSTALL_HINT}`")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    if len(data) - header != int(np.prod(shape)):
        raise BenchError(f"{path} declares shape {shape} but holds {len(data) - header} bytes of data; "
                         f"reinstall it with `{INSTALL_HINT}`")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def read_split(folder: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 N x 1 x 28 x 28 images, int64 labels) of the ``train`` or ``test`` split, checked."""
    images_name, labels_name = FILES[split]
    images_path, labels_path = _file(folder, images_name), _file(folder, labels_name)
    images = read_idx(images_path, _IMAGES_MAGIC, 3)
    labels = read_idx(labels_path, _LABELS_MAGIC, 1)
    expected = EXPECTED_COUNTS[split]
    if images.shape != (expected, IMAGE_SIDE, IMAGE_SIDE) or labels.shape != (expected,):
        raise BenchError(
            f"Fashion-MNIST {split} split at {folder} holds images {images.shape} and labels {labels.shape}, "
            f"not {expected:,} images of {IMAGE_SIDE}x{IMAGE_SIDE} with one label each; "
            f"reinstall it with `{INSTALL_HINT}`"
        )
    if labels.size and labels.max() >= NUM_CLASSES:
        raise BenchError(f"{labels_path} has labels outside 0..{NUM_CLASSES - 1}; reinstall it with `{INSTALL_HINT}`")
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


def load_fashion_splits(spec: DataSpec, device: torch.device) -> Splits:
    """Validation carved (stratified, split_seed) from the 60,000 training images; the official 10,000 test."""
    folder = find_folder(spec)
    pool_images, pool_labels = read_split(folder, "train")
    test_images, test_labels = read_split(folder, "test")
    return build_official_splits(
        pool_images, pool_labels, test_images, test_labels, spec, device, scale=PIXEL_MAX, num_classes=NUM_CLASSES
    )
