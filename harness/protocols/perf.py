"""Throughput of retraining: a reference-style pipeline against the harness's fast path.

``measure`` times, in one process on one device and on the same images, (a) a reference-style
pipeline -- torchvision transforms on PIL images (``RandomCrop(32, padding=4)``,
``RandomHorizontalFlip``, ``ToTensor``, ``Normalize``), a ``DataLoader`` with worker processes,
eager fp32, ``torch.optim.SGD`` -- and (b) the harness's path: the split resident on the
device, batched crop/flip there, and the step of the chosen engine (``harness.train.engines``).
Both run the track protocol's optimizer and batch size; both time steady-state steps of full
batches after a warm-up (graph capture and compilation happen in the warm-up), without
per-epoch evaluation. Grid throughput runs ``in_flight`` copies of (b) in as many processes at
once, started together, and divides all their images by the wall time; with ``fuse`` above one,
each of those processes trains that many runs as one network (the ``fused`` engine,
``harness.train.fusion``), each run on its own batches. The reference runs one run at a time, as its
own code would.

Whether the fast engines change accuracy is ``harness.protocols.equivalence``.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Iterator

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from harness.core.device import device_name
from harness.core.errors import BenchError
from harness.core.seeding import seeded_init
from harness.data import DataSpec, Splits, TensorSplit, load_splits
from harness.models import create_model
from harness.track.definition import load_track
from harness.track.recipe import Recipe
from harness.train.engines import CompileCache, EngineSettings, step_factory
from harness.train.fusion import FusedStep
from harness.train.loop import make_optimizer

CIFAR_EPOCH_IMAGES = 45_000
"""Training images per epoch on the CIFAR tracks (50,000 less the 5,000 carved for validation)."""
NUM_CLASSES = 10


@dataclass(frozen=True)
class PerfSettings:
    """What ``measure`` times; ``tiny`` is a configuration a CPU finishes in seconds.

    Both paths train with ``track``'s recipe (optimizer, weight decay, augmentation, initial learning
    rate) at its batch size unless ``batch_size`` says otherwise.
    """

    models: tuple[str, ...] = ("cifar-resnet56", "cifar-vgg16")
    device: str = "cpu"
    track: str = "cifar10-resnet56"
    batch_size: int | None = None
    steps: int = 200
    warmup: int = 20
    loader_workers: int = 4
    in_flight: int = 1
    fuse: int = 1
    engine: EngineSettings = EngineSettings("graph")
    dataset: str = "synthetic-cifar"
    synthetic_images: int = 5000
    epoch_images: int = CIFAR_EPOCH_IMAGES
    seed: int = 0

    def __post_init__(self) -> None:
        if self.dataset not in ("synthetic-cifar", "cifar10"):
            raise BenchError(f"bench perf times CIFAR-shaped data: use synthetic-cifar or cifar10, "
                             f"not {self.dataset!r}")
        if min(self.batch_size or 1, self.steps, self.in_flight, self.fuse, self.synthetic_images,
               self.epoch_images) < 1:
            raise BenchError("batch size, steps, runs in flight, fused runs and image counts must be at least 1")
        if self.engine.fused:
            raise BenchError("the single run is timed with --engine eager, graph or compile; "
                             "time fused runs for the grid with --fuse K")
        if self.warmup < 0 or self.loader_workers < 0:
            raise BenchError("warm-up steps and loader workers cannot be negative")
        if self.dataset == "synthetic-cifar" and self.synthetic_images < (self.batch_size or 1):
            raise BenchError(f"--synthetic-images {self.synthetic_images} is less than one batch of {self.batch_size}")

    @classmethod
    def tiny(cls, **overrides) -> PerfSettings:
        """ResNet-20, batch 16, a few steps on 128 synthetic images, one loader worker."""
        return cls(**{**dict(models=("cifar-resnet20",), batch_size=16, steps=3, warmup=1, loader_workers=1,
                             synthetic_images=128), **overrides})


@dataclass(frozen=True)
class PathTiming:
    """One path's steady-state speed: ``steps`` timed steps of ``batch_size`` images each."""

    path: str
    images_per_second: float
    seconds_per_epoch: float
    steps: int
    batch_size: int
    seconds: float


@dataclass(frozen=True)
class GridThroughput:
    """Retraining run-epochs per hour with ``runs_in_flight`` runs at once (the reference: one at a time):
    ``processes`` processes, each training ``fused`` runs as one network."""

    runs_in_flight: int
    images_per_second: float
    run_epochs_per_hour: float
    processes: int = 1
    fused: int = 1


@dataclass(frozen=True)
class ModelPerf:
    model: str
    reference: PathTiming
    harness: PathTiming
    reference_grid: GridThroughput
    harness_grid: GridThroughput

    @property
    def single_run_ratio(self) -> float:
        return self.harness.images_per_second / self.reference.images_per_second

    @property
    def grid_ratio(self) -> float:
        return self.harness_grid.run_epochs_per_hour / self.reference_grid.run_epochs_per_hour

    def as_dict(self) -> dict:
        return {"model": self.model, "reference": vars(self.reference), "harness": vars(self.harness),
                "reference_grid": vars(self.reference_grid), "harness_grid": vars(self.harness_grid),
                "single_run_ratio": self.single_run_ratio, "grid_ratio": self.grid_ratio}


@dataclass(frozen=True)
class PerfReport:
    device: str
    device_name: str
    torch_version: str
    track: str
    dataset: str
    synthetic: bool
    engine: str
    precision: str
    batch_size: int
    epoch_images: int
    loader_workers: int
    models: tuple[ModelPerf, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict:
        return {**{k: v for k, v in vars(self).items() if k != "models"}, "models": [m.as_dict() for m in self.models]}


def perf_splits(settings: PerfSettings, recipe: Recipe, device: str) -> Splits:
    """The timed images, augmented as ``recipe`` says: synthetic CIFAR-shaped ones, or CIFAR-10's training split."""
    augmentation = dict(crop_padding=recipe.augmentation.crop_padding,
                        horizontal_flip=recipe.augmentation.horizontal_flip)
    if settings.dataset == "cifar10":
        spec = DataSpec("cifar10", val_size=5000, **augmentation)
    else:
        spec = DataSpec("synthetic-cifar", split_seed=settings.seed, train_size=settings.synthetic_images,
                        val_size=1, test_size=1, **augmentation)
    return load_splits(spec, device)


class PILImages(Dataset):
    """Images as torchvision's CIFAR datasets serve them: a uint8 HWC array per image, made a PIL image, transformed."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: Callable):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.images[index])), int(self.labels[index])


def reference_dataset(splits: Splits) -> PILImages:
    """The training split's raw pixels (undoing the normalization exactly) behind the reference transforms,
    which augment as the split does: ``RandomCrop`` with its padding, then ``RandomHorizontalFlip``."""
    train = splits.train
    norm = splits.normalization
    mean = torch.tensor(norm.mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(norm.std, dtype=torch.float32).view(1, -1, 1, 1)
    raw = ((train.x.cpu() * std + mean) * 255).round().clamp(0, 255).to(torch.uint8)
    transform = transforms.Compose([
        transforms.RandomCrop(raw.shape[-1], padding=train.crop_padding),
        transforms.RandomHorizontalFlip(0.5 if train.horizontal_flip else 0.0),
        transforms.ToTensor(),
        transforms.Normalize(norm.mean, norm.std),
    ])
    return PILImages(raw.permute(0, 2, 3, 1).numpy(), train.y.cpu().numpy(), transform)


def _forever(epochs: Callable[[], Iterator]) -> Iterator:
    while True:
        yield from epochs()


def _training_batches(train: TensorSplit, batch_size: int, generator: torch.Generator) -> Iterator:
    """Shuffled, augmented full batches, epoch after epoch."""
    return _forever(lambda: train.batches(batch_size, generator, shuffle=True, augment=True, drop_last=True))


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


@dataclass(frozen=True)
class TimedPath:
    """A path ready to time: one call of ``step`` trains ``images_per_step`` images (all runs' together)."""

    name: str
    step: Callable[[], None]
    images_per_step: int


def _timed(path: TimedPath, settings: PerfSettings, device: str) -> PathTiming:
    for _ in range(settings.warmup):
        path.step()
    _synchronize(device)
    started = time.perf_counter()
    for _ in range(settings.steps):
        path.step()
    _synchronize(device)
    seconds = time.perf_counter() - started
    rate = settings.steps * path.images_per_step / seconds
    return PathTiming(path.name, rate, settings.epoch_images / rate, settings.steps, path.images_per_step, seconds)


def _model(name: str, device: str, seed: int) -> nn.Module:
    with seeded_init(seed):
        return create_model(name, NUM_CLASSES).to(device).train()


def time_reference(model_name: str, splits: Splits, recipe: Recipe, settings: PerfSettings,
                   device: str) -> PathTiming:
    """(a): PIL transforms in DataLoader workers, batches copied to the device, eager fp32 ``torch.optim.SGD``."""
    model = _model(model_name, device, settings.seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov,
                                weight_decay=recipe.weight_decay)
    batch_size = settings.batch_size or recipe.batch_size
    loader = DataLoader(reference_dataset(splits), batch_size=batch_size, shuffle=True, drop_last=True,
                        num_workers=settings.loader_workers, persistent_workers=settings.loader_workers > 0,
                        pin_memory=device.startswith("cuda"), generator=torch.Generator().manual_seed(settings.seed))
    batches = _forever(lambda: iter(loader))

    def step() -> None:
        x, y = next(batches)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return _timed(TimedPath("reference", step, batch_size), settings, device)


def harness_path(model_name: str, splits: Splits, recipe: Recipe, settings: PerfSettings, device: str,
                 cache: CompileCache | None = None) -> TimedPath:
    """(b): device-resident split, batched crop/flip, the engine's step (as ``harness.train.loop.train`` runs it)."""
    model = _model(model_name, device, settings.seed)
    train_step = step_factory(settings.engine, cache or CompileCache())(model, make_optimizer(model, recipe), ())
    generator = torch.Generator(device).manual_seed(settings.seed)
    train: TensorSplit = splits.train
    batch_size = settings.batch_size or recipe.batch_size
    batches = _training_batches(train, batch_size, generator)
    loss_sum = torch.zeros((), device=device)

    def step() -> None:
        nonlocal loss_sum
        x, y = next(batches)
        loss_sum += train_step(x, y, recipe.lr, None)

    return TimedPath("harness", step, batch_size)


def fused_path(model_name: str, splits: Splits, recipe: Recipe, settings: PerfSettings, device: str) -> TimedPath:
    """(b) for ``settings.fuse`` runs trained as one network: each its own initial weights and batches."""
    models = [_model(model_name, device, settings.seed + offset) for offset in range(settings.fuse)]
    fused = EngineSettings("fused", bf16=settings.engine.bf16, group_size=settings.fuse)
    train_step = FusedStep(models, [{}] * settings.fuse, recipe, fused)
    train: TensorSplit = splits.train
    batch_size = settings.batch_size or recipe.batch_size
    streams = [_training_batches(train, batch_size, torch.Generator(device).manual_seed(settings.seed + offset))
               for offset in range(settings.fuse)]
    neg_lr = torch.full((settings.fuse,), -recipe.lr, device=device)
    momentum = torch.full((settings.fuse,), recipe.momentum, device=device)
    loss_sum = torch.zeros(settings.fuse, device=device)

    def step() -> None:
        nonlocal loss_sum
        batches = [next(stream) for stream in streams]
        x = torch.stack([b[0] for b in batches])
        y = torch.stack([b[1] for b in batches])
        loss_sum += train_step(x, y, neg_lr, momentum)

    return TimedPath(f"harness, {settings.fuse} fused", step, batch_size * settings.fuse)


def grid_process_path(model_name: str, splits: Splits, recipe: Recipe, settings: PerfSettings,
                      device: str) -> TimedPath:
    """What one process of the grid measurement trains: one run, or ``settings.fuse`` runs as one network."""
    if settings.fuse > 1:
        return fused_path(model_name, splits, recipe, settings, device)
    return harness_path(model_name, splits, recipe, settings, device)


def _in_flight_worker(model_name: str, recipe: Recipe, settings: PerfSettings, device: str, threads: int,
                      barrier, results) -> None:
    """One of the runs in flight: warm up (capture, compile), wait for the others, time the same steps."""
    torch.set_num_threads(threads)
    path = grid_process_path(model_name, perf_splits(settings, recipe, device), recipe, settings, device)
    for _ in range(max(settings.warmup, 1)):
        path.step()
    _synchronize(device)
    barrier.wait()
    started = time.perf_counter()
    timing = _timed(path, replace(settings, warmup=0), device)
    results.put((started, started + timing.seconds, timing.steps * timing.batch_size))


def _gather(results, workers) -> list[tuple[float, float, int]]:
    spans = []
    while len(spans) < len(workers):
        try:
            spans.append(results.get(timeout=1.0))
        except queue.Empty:
            dead = [w for w in workers if w.exitcode not in (None, 0)]
            if dead:
                raise BenchError(f"a timing process died (exit code {dead[0].exitcode}); "
                                 f"try fewer --in-flight runs") from None
    return spans


def grid_throughput(model_name: str, splits: Splits, recipe: Recipe, settings: PerfSettings, device: str,
                    single: PathTiming) -> GridThroughput:
    """Run-epochs per hour of the harness path with ``settings.in_flight`` processes training at once,
    each ``settings.fuse`` runs as one network."""
    if settings.in_flight == 1:
        rate = (single if settings.fuse == 1 else _timed(fused_path(model_name, splits, recipe, settings, device),
                                                         settings, device)).images_per_second
    else:
        context = multiprocessing.get_context("spawn")
        barrier, results = context.Barrier(settings.in_flight), context.Queue()
        workers = [context.Process(target=_in_flight_worker, args=(model_name, recipe, settings, device,
                                                                   torch.get_num_threads(), barrier, results))
                   for _ in range(settings.in_flight)]
        for worker in workers:
            worker.start()
        try:
            spans = _gather(results, workers)
        finally:
            for worker in workers:
                if worker.is_alive():
                    worker.terminate()
                worker.join()
        rate = sum(images for _, _, images in spans) / (max(end for _, end, _ in spans) -
                                                       min(start for start, _, _ in spans))
    return GridThroughput(settings.in_flight * settings.fuse, rate, 3600 * rate / settings.epoch_images,
                          processes=settings.in_flight, fused=settings.fuse)


def measure(settings: PerfSettings) -> PerfReport:
    """Time (a) and (b) for every model on ``settings.device``; see the module docstring."""
    device = settings.device
    recipe = load_track(settings.track).recipe
    splits = perf_splits(settings, recipe, device)
    cache = CompileCache()
    models = []
    for name in settings.models:
        reference = time_reference(name, splits, recipe, settings, device)
        harness = _timed(harness_path(name, splits, recipe, settings, device, cache), settings, device)
        models.append(ModelPerf(
            model=name, reference=reference, harness=harness,
            reference_grid=GridThroughput(1, reference.images_per_second,
                                          3600 * reference.images_per_second / settings.epoch_images),
            harness_grid=grid_throughput(name, splits, recipe, settings, device, harness),
        ))
    return PerfReport(
        device=device, device_name=device_name(device), torch_version=torch.__version__, track=settings.track,
        dataset=settings.dataset, synthetic=splits.synthetic, engine=settings.engine.name,
        precision=settings.engine.precision, batch_size=settings.batch_size or recipe.batch_size, epoch_images=settings.epoch_images, loader_workers=settings.loader_workers,
        models=tuple(models),
    )
