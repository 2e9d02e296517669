"""Train / validation / test splits and the batches they yield.

The validation split is carved from the official training split with the split seed and is the
only split tuning may see. The test split sits behind :meth:`Splits.open_test`, which counts
reads, so the tuner and the tests can assert that it was never touched.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import InitVar, dataclass, field

import torch

from harness.core.errors import BenchError
from harness.data.augment import augment_batch
from harness.data.spec import DataSpec, resolve_count

Batch = tuple[torch.Tensor, torch.Tensor]


class Split(ABC):
    """What training and evaluation code may rely on, whether the data is resident or on disk.

    Counting batches and checking a batch request are the same for every kind of split, so they live
    here; a subclass says how long it is and how one checked epoch is produced.
    """

    @abstractmethod
    def __len__(self) -> int: ...

    def num_batches(self, batch_size: int, drop_last: bool = False) -> int:
        return len(self) // batch_size if drop_last else -(-len(self) // batch_size)

    def batches(
        self,
        batch_size: int,
        generator: torch.Generator | None,
        shuffle: bool,
        augment: bool,
        drop_last: bool = False,
    ) -> Iterator[Batch]:
        """One epoch of batches; shuffling and augmentation draw from ``generator``.

        The request is checked before the epoch starts, so a bad one fails at the call, not at the first batch.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if generator is None and (shuffle or augment):
            raise ValueError("shuffled or augmented batches need a seeded torch.Generator")
        self._check_generator(generator)
        return self._epoch(batch_size, generator, shuffle, augment, drop_last)

    def _check_generator(self, generator: torch.Generator | None) -> None:
        """Refuse a generator this split cannot draw from; any device will do unless a subclass says otherwise."""

    @abstractmethod
    def _epoch(
        self, batch_size: int, generator: torch.Generator | None, shuffle: bool, augment: bool, drop_last: bool
    ) -> Iterator[Batch]: ...


@dataclass(frozen=True)
class Normalization:
    """Per-channel statistics that map [0, 1] images to zero mean and unit variance."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def of_images(cls, images: torch.Tensor) -> Normalization:
        """Population mean and standard deviation of each channel of an (N, C, H, W) batch, in float64."""
        var, mean = torch.var_mean(images.to(torch.float64), dim=(0, 2, 3), correction=0)
        return cls(tuple(mean.tolist()), tuple(var.sqrt().clamp_min(1e-12).tolist()))

    def apply(self, images: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
        return (images - mean) / std

    @property
    def normalized_zero(self) -> tuple[float, ...]:
        """Where a raw 0 pixel lands: the padding value that matches padding before normalization."""
        return tuple(-m / s for m, s in zip(self.mean, self.std))


@dataclass(frozen=True, eq=False)
class TensorSplit(Split):
    """A split resident on one device as (float32 normalized images, int64 labels)."""

    x: torch.Tensor
    y: torch.Tensor
    crop_padding: int = 0
    horizontal_flip: bool = False
    pad_fill: tuple[float, ...] | float = 0.0
    _fill: float | torch.Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.x.dim() != 4 or self.x.dtype != torch.float32:
            raise ValueError(f"x must be a float32 (N, C, H, W) tensor, got {self.x.dtype} {tuple(self.x.shape)}")
        if self.y.dtype != torch.int64 or self.y.shape != (self.x.shape[0],):
            raise ValueError(f"y must be int64 with one label per image, got {self.y.dtype} {tuple(self.y.shape)}")
        if self.x.device != self.y.device:
            raise ValueError(f"x is on {self.x.device} but y is on {self.y.device}")
        fill = self.pad_fill
        if isinstance(fill, tuple):
            fill = torch.tensor(fill, dtype=torch.float32, device=self.x.device)
        object.__setattr__(self, "_fill", fill)

    def __len__(self) -> int:
        return self.y.shape[0]

    def __repr__(self) -> str:
        return (
            f"TensorSplit({len(self)} x {tuple(self.x.shape[1:])} on {self.x.device}, "
            f"crop_padding={self.crop_padding}, horizontal_flip={self.horizontal_flip})"
        )

    def _check_generator(self, generator: torch.Generator | None) -> None:
        """Shuffling and augmentation run on this split's device, so they draw from a generator there."""
        if generator is not None and generator.device != self.x.device:
            raise ValueError(
                f"generator is on {generator.device} but the split is on {self.x.device}; "
                f"use torch.Generator(device={str(self.x.device)!r})"
            )

    def _epoch(
        self, batch_size: int, generator: torch.Generator | None, shuffle: bool, augment: bool, drop_last: bool
    ) -> Iterator[Batch]:
        order = torch.randperm(len(self), generator=generator, device=self.x.device) if shuffle else None
        for start in range(0, self.num_batches(batch_size, drop_last) * batch_size, batch_size):
            if order is None:
                x, y = self.x[start : start + batch_size], self.y[start : start + batch_size]
            else:
                index = order[start : start + batch_size]
                x, y = self.x[index], self.y[index]
            if augment:
                x = augment_batch(x, self.crop_padding, self.horizontal_flip, generator, self._fill)
            yield x, y


@dataclass
class Splits:
    """Train and validation splits in the open, the test split behind a counted guard."""

    train: Split
    val: Split
    test: InitVar[Split]
    num_classes: int
    input_shape: tuple[int, int, int]
    normalization: Normalization
    spec: DataSpec
    synthetic: bool
    _test: Split = field(init=False, repr=False)
    _test_reads: int = field(init=False, default=0)

    def __post_init__(self, test: Split) -> None:
        self._test = test

    def open_test(self) -> Split:
        """The test split, for a run's final evaluation only; every call is counted."""
        self._test_reads += 1
        return self._test

    @property
    def test_reads(self) -> int:
        return self._test_reads

    @property
    def num_test(self) -> int:
        """The test split's size, which records may state without reading it."""
        return len(self._test)


def stratified_carve(
    labels: torch.Tensor, held_out: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Split indices into (kept, held) with ``held_out`` held examples in the classes' proportions.

    Each class holds floor of its exact share; the examples left over go to the classes with the
    largest remainders (lower labels first on ties). Members are drawn with ``torch.randperm`` on
    ``generator``, class by class in label order. Both index tensors come back sorted.
    """
    labels = labels.cpu()
    if not 0 < held_out < len(labels):
        raise ValueError(f"cannot hold out {held_out} of {len(labels)} examples")
    classes, counts = torch.unique(labels, return_counts=True)
    exact = counts.to(torch.float64) * held_out / len(labels)
    quota = exact.floor().long()
    by_remainder = torch.argsort(quota.to(torch.float64) - exact, stable=True)
    quota[by_remainder[: held_out - int(quota.sum())]] += 1
    members_by_class = torch.split(torch.argsort(labels, stable=True), counts.tolist())
    held = torch.cat([
        members[torch.randperm(len(members), generator=generator)[:take]]
        for members, take in zip(members_by_class, quota.tolist())
    ]).sort().values
    is_kept = torch.ones(len(labels), dtype=torch.bool)
    is_kept[held] = False
    return torch.nonzero(is_kept).flatten(), held


def build_tensor_splits(
    pool_images: torch.Tensor,
    pool_labels: torch.Tensor,
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    val_count: int,
    generator: torch.Generator,
    scale: float,
    spec: DataSpec,
    num_classes: int,
    synthetic: bool,
    device: torch.device,
    train_size: int | None = None,
    hold_out: bool = True,
    normalization: Normalization | None = None,
) -> Splits:
    """Carve validation from the training pool, normalize everything with the remaining training images.

    Raw images (integers in [0, scale]) move to ``device`` before the float conversion, so a GPU
    receives a quarter of the bytes. Training statistics only: validation and test images must not
    leak into the normalization.

    ``train_size``: keep a stratified sample of that many of the remaining training images (drawn
    after the carve, from the same generator). ``hold_out=False`` (the paper protocol) trains on the
    whole pool and leaves the carved validation images in it, so validation then monitors training
    images; ``normalization`` fixes the constants instead of computing them from the training images.
    """
    train_index, val_index = stratified_carve(pool_labels, val_count, generator)
    if not hold_out:
        train_index = torch.arange(len(pool_labels))
    if train_size is not None and train_size != len(train_index):
        if not 0 < train_size < len(train_index):
            raise BenchError(f"train_size={train_size} must be between 1 and the {len(train_index)} training "
                             "images left after the validation carve")
        _, chosen = stratified_carve(pool_labels[train_index], train_size, generator)
        train_index = train_index[chosen]
    pool = pool_images.to(device)

    def to_unit(raw: torch.Tensor) -> torch.Tensor:
        return raw.to(torch.float32).div_(scale)

    train_x = to_unit(pool[train_index.to(device)])
    if normalization is None:
        normalization = Normalization.of_images(train_x)
    augmentation = dict(
        crop_padding=spec.crop_padding,
        horizontal_flip=spec.horizontal_flip,
        pad_fill=normalization.normalized_zero,
    )

    def split(images: torch.Tensor, labels: torch.Tensor) -> TensorSplit:
        return TensorSplit(normalization.apply(images), labels.to(device=device, dtype=torch.int64), **augmentation)

    return Splits(
        train=split(train_x, pool_labels[train_index]),
        val=split(to_unit(pool[val_index.to(device)]), pool_labels[val_index]),
        test=split(to_unit(test_images.to(device)), test_labels),
        num_classes=num_classes,
        input_shape=tuple(pool_images.shape[1:]),
        normalization=normalization,
        spec=spec,
        synthetic=synthetic,
    )


def build_official_splits(
    pool_images: torch.Tensor,
    pool_labels: torch.Tensor,
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
    spec: DataSpec,
    device: torch.device,
    *,
    scale: float,
    num_classes: int,
    paper_normalization: Normalization | None = None,
) -> Splits:
    """Splits of a data set that ships its own train and test splits, all read from ``spec``.

    Validation (val_size of the official training images) is carved with a generator seeded by
    split_seed, which then draws the train_size sample where one is asked for; the official test
    split is kept whole. Under ``protocol = "paper"`` nothing is held out and ``paper_normalization``
    (the official code's constants) replaces the training images' statistics.
    """
    paper = spec.protocol == "paper"
    return build_tensor_splits(
        pool_images,
        pool_labels,
        test_images,
        test_labels,
        val_count=resolve_count(spec.val_size, len(pool_labels), "val_size"),
        generator=torch.Generator().manual_seed(spec.split_seed),
        scale=scale,
        spec=spec,
        num_classes=num_classes,
        synthetic=False,
        device=device,
        train_size=spec.train_size,
        hold_out=not paper,
        normalization=paper_normalization if paper else None,
    )
