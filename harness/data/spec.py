"""What data a run uses: the dataset, where it lives, how its splits are carved, how batches are augmented.

A spec is hashed into run records, so it is frozen and every size is normalized on construction
(``5000.0`` from a TOML/pydantic float becomes the count ``5000``). ``None`` sizes mean "the
dataset's standard"; :meth:`DataSpec.resolved` fills them in so records store concrete values.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import BenchError

DATASETS = ("digits", "cifar10", "cifar100", "imagenet", "synthetic-cifar", "fashion-mnist")
DATA_ROOT_ENV = "PRUNE_BENCH_DATA"

PROTOCOLS = ("held-out", "paper")
"""``held-out`` (the default): validation is carved out of the training split and normalization uses the
remaining training images' statistics. ``paper``: the official code's protocol (Le & Hua 2021, PFEC):
dense training and retraining on the whole official training split, fixed normalization constants; the
validation split is then a seeded sample *of the training images* (a training-accuracy monitor, not
held out), so tuning on it is meaningless."""
_PAPER_DATASETS = ("cifar10", "cifar100")
# Datasets whose training split may be cut to train_size examples (after validation is carved).
_SUBSET_TRAIN = ("synthetic-cifar", "fashion-mnist")

# Datasets without an official test split carve one; only they take test_size.
_CARVED_TEST = ("digits", "synthetic-cifar")
# (val_size, test_size, train_size) when the spec leaves them out.
_DEFAULT_SIZES: dict[str, tuple[int | float, int | float | None, int | None]] = {
    "digits": (0.1, 0.2, None),
    "cifar10": (5000, None, None),
    "cifar100": (5000, None, None),
    "imagenet": (10000, None, None),
    "synthetic-cifar": (1000, 1000, 5000),
    "fashion-mnist": (5000, None, None),
}


def default_data_root() -> Path:
    """Where on-disk datasets live unless a spec names a root: $PRUNE_BENCH_DATA or ~/.cache/prune-bench/data."""
    configured = os.environ.get(DATA_ROOT_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "prune-bench" / "data"


def _normalized_size(name: str, value: int | float | None) -> int | float | None:
    """A fraction stays a float in (0, 1); anything >= 1 must be a whole count and becomes an int."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BenchError(f"{name} must be a count or a fraction in (0, 1), got {value!r}")
    if 0 < value < 1:
        return float(value)
    if value >= 1 and float(value).is_integer():
        return int(value)
    raise BenchError(f"{name} must be a whole count >= 1 or a fraction in (0, 1), got {value!r}")


@dataclass(frozen=True)
class DataSpec:
    """A dataset and how it is split and augmented.

    val_size / test_size: a count, or a fraction of the set they are carved from (the official
    training split; for digits the whole dataset). test_size only for datasets without an official
    test split (digits, synthetic-cifar); train_size only for synthetic-cifar, whose sizes are counts,
    and fashion-mnist, where it keeps a stratified sample of that many training images (a smoke run).
    protocol: see :data:`PROTOCOLS`; ``paper`` applies to CIFAR only.
    """

    dataset: str
    root: str | None = None
    split_seed: int = 0
    val_size: int | float | None = None
    test_size: int | float | None = None
    train_size: int | None = None
    crop_padding: int = 0
    horizontal_flip: bool = False
    protocol: str = "held-out"

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise BenchError(f"unknown dataset {self.dataset!r}; choose from {', '.join(DATASETS)}")
        if isinstance(self.split_seed, bool) or not isinstance(self.split_seed, int):
            raise BenchError(f"split_seed must be an integer, got {self.split_seed!r}")
        for name in ("val_size", "test_size", "train_size"):
            object.__setattr__(self, name, _normalized_size(name, getattr(self, name)))
        if self.test_size is not None and self.dataset not in _CARVED_TEST:
            raise BenchError(
                f"test_size does not apply to {self.dataset}, which has an official test split; remove it"
            )
        if self.train_size is not None and self.dataset not in _SUBSET_TRAIN:
            raise BenchError(
                f"train_size applies only to {' and '.join(_SUBSET_TRAIN)}, not {self.dataset}; remove it"
            )
        if self.protocol not in PROTOCOLS:
            raise BenchError(f"unknown data protocol {self.protocol!r}; choose from {', '.join(PROTOCOLS)}")
        if self.protocol == "paper" and self.dataset not in _PAPER_DATASETS:
            raise BenchError(
                f"protocol 'paper' (the official code's CIFAR protocol) does not apply to {self.dataset}; "
                f"use it with {' or '.join(_PAPER_DATASETS)}, or remove it"
            )
        if self.dataset == "synthetic-cifar":
            for name in ("val_size", "test_size", "train_size"):
                if isinstance(getattr(self, name), float):
                    raise BenchError(f"synthetic-cifar sizes are example counts; give {name} as a whole number")
        if isinstance(self.crop_padding, bool) or not isinstance(self.crop_padding, int) or self.crop_padding < 0:
            raise BenchError(f"crop_padding must be a non-negative integer, got {self.crop_padding!r}")
        if self.dataset == "imagenet" and self.crop_padding:
            raise BenchError(
                "crop_padding does not apply to imagenet, whose loader uses RandomResizedCrop; set it to 0"
            )

    def resolved(self) -> DataSpec:
        """The same spec with every size the dataset's standard fills in."""
        val, test, train = _DEFAULT_SIZES[self.dataset]
        return dataclasses.replace(
            self,
            val_size=val if self.val_size is None else self.val_size,
            test_size=test if self.test_size is None else self.test_size,
            train_size=train if self.train_size is None else self.train_size,
        )

    def data_root(self) -> Path:
        return Path(self.root).expanduser() if self.root else default_data_root()


def resolve_count(size: int | float, pool: int, name: str) -> int:
    """Turn a count or fraction of ``pool`` into a count that leaves examples on both sides."""
    count = round(size * pool) if isinstance(size, float) else size
    if not 1 <= count < pool:
        raise BenchError(
            f"{name}={size} takes {count} of {pool} examples; choose a size that leaves at least one on each side"
        )
    return count
