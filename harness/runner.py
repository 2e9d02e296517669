"""One run, start to finish: dense checkpoint -> plan -> (twin) -> validate -> surgery -> count ->
retrain under a schedule for a fixed budget -> final test evaluation -> a run record.

A ``Workspace`` holds what many runs of one track share (the loaded data, dense baselines,
counts per architecture) so a grid pays for them once. It is an explicit object, never global.
"""

from __future__ import annotations

import copy
import math
import platform
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from harness import __version__
from harness.data import DataSpec, load_splits
from harness.dense import DenseBaseline, load_or_train_dense, new_model
from harness.errors import BenchError
from harness.measure import Counts, count
from harness.methods import PruningContext, get_method
from harness.models import prunable_layers
from harness.plans import ChannelPlan, keep_counts, random_twin, validate_plan
from harness.records import Curves, Protocol, RunConfig, RunRecord
from harness.schedules import StepValues, get_schedule, step_values
from harness.seeding import generator
from harness.surgery import prune_channels
from harness.tracks import Track
from harness.train import TrainResult, evaluate, steps_per_epoch, train

METHOD_BATCHES = 8


def data_spec(track: Track) -> DataSpec:
    aug = track.recipe.augmentation
    return DataSpec(
        dataset=track.data.dataset, root=track.data.root, split_seed=track.data.split_seed,
        val_size=track.data.val_size, test_size=track.data.test_size, train_size=track.data.train_size,
        crop_padding=aug.crop_padding, horizontal_flip=aug.horizontal_flip,
    )


def environment(device: str) -> dict:
    return {
        "harness_version": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "device": torch.cuda.get_device_name(device) if device.startswith("cuda") else platform.processor() or "cpu",
        "device_type": device,
        "threads": torch.get_num_threads(),
    }


class Workspace:
    """Shared, lazily built state for the runs of one track on one device."""

    def __init__(self, track: Track, results_dir: str | Path, device: str = "cpu"):
        self.track = track
        self.results_dir = Path(results_dir)
        self.device = device
        self._splits = None
        self._dense: dict[int, DenseBaseline] = {}
        self._counts: dict[tuple, Counts] = {}

    @property
    def splits(self):
        if self._splits is None:
            self._splits = load_splits(data_spec(self.track), device=self.device)
        return self._splits

    def dense(self, seed: int) -> DenseBaseline:
        if seed not in self._dense:
            self._dense[seed] = load_or_train_dense(self.track, seed, self.splits, self.results_dir, self.device)
        return self._dense[seed]

    def dense_model(self, seed: int) -> torch.nn.Module:
        model = new_model(self.track, seed).to(self.device)
        model.load_state_dict(self.dense(seed).state_dict)
        return model

    def counts(self, model: torch.nn.Module) -> Counts:
        """fvcore counts, cached per architecture (a plan and its twin share one)."""
        key = tuple((name, tuple(p.shape)) for name, p in model.named_parameters())
        if key not in self._counts:
            self._counts[key] = count(model, self.track.model.input_shape)
        return self._counts[key]

    def example_input(self) -> torch.Tensor:
        return torch.zeros((1, *self.track.model.input_shape), device=self.device)

    def plan(self, config: RunConfig, model: torch.nn.Module) -> ChannelPlan:
        """The method's validated plan, or its random twin, for this run."""
        modules = dict(model.named_modules())
        sizes = {name: modules[name].out_channels for name in prunable_layers(self.track.model.name, model)}
        keep = keep_counts(sizes, self.track.target(config.target).ratio)
        method = get_method(config.method)
        splits = self.splits
        context = PruningContext(
            model=copy.deepcopy(model).eval(), sizes=sizes, keep=keep,
            generator=generator(config.seed, "method"),
            max_batches=METHOD_BATCHES if method.needs_data else 0,
            batch_source=(lambda: splits.train.batches(
                self.track.recipe.batch_size, generator=generator(config.seed, "method-data", self.device),
                shuffle=True, augment=False)) if method.needs_data else None,
        )
        plan = validate_plan(method.name, method.select(context), sizes, keep)
        if config.twin:
            plan = random_twin(plan, sizes, generator(config.seed, "twin"))
        return plan


def _counts_fields(before: Counts, after: Counts | None) -> dict[str, int | None]:
    """MACs are conv+linear multiply-adds at batch 1 (the literature's figure); ``macs_total`` is fvcore's total."""
    return {
        "params_before": before.params, "params_after": after and after.params,
        "macs_before": before.macs_conv_linear, "macs_after": after and after.macs_conv_linear,
        "macs_total_before": before.macs, "macs_total_after": after and after.macs,
    }


def _finite_or_none(values: list[float]) -> list[float | None]:
    return [v if math.isfinite(v) else None for v in values]


def protocol(track: Track, config: RunConfig, epochs: int) -> Protocol:
    params = config.schedule_params
    peak = max((v for k, v in params.items() if k in ("lr", "peak_lr", "max_lr")), default=None)
    if config.schedule == "lrw":
        peak = track.recipe.lr_at_epoch(track.recipe.epochs - epochs)
    warmup = int(params["warmup_fraction"] * epochs) if "warmup_fraction" in params else None
    aug = track.recipe.augmentation
    return Protocol(
        optimizer=track.recipe.optimizer, momentum=track.recipe.momentum, nesterov=track.recipe.nesterov,
        weight_decay=track.recipe.weight_decay, batch_size=track.recipe.batch_size,
        crop_padding=aug.crop_padding, horizontal_flip=aug.horizontal_flip,
        peak_lr=peak, warmup_epochs=warmup,
    )


@dataclass(frozen=True)
class PrunedModel:
    """A dense checkpoint after a validated plan was applied: ready to retrain."""

    model: torch.nn.Module
    plan: ChannelPlan
    before: Counts
    after: Counts


def prune(workspace: Workspace, config: RunConfig) -> PrunedModel:
    """Dense model -> method plan (or its twin) -> validation -> surgery -> counts."""
    model = workspace.dense_model(config.dense_seed)
    before = workspace.counts(model)
    plan = workspace.plan(config, model)
    prune_channels(model, plan, workspace.example_input())
    return PrunedModel(model, plan, before, workspace.counts(model))


def retraining_steps(workspace: Workspace, config: RunConfig) -> StepValues:
    track = workspace.track
    per_epoch = steps_per_epoch(len(workspace.splits.train), track.recipe.batch_size)
    return step_values(get_schedule(config.schedule), track.recipe, config.budget_epochs, per_epoch,
                       config.schedule_params)


def retrain(
    workspace: Workspace, config: RunConfig, pruned: PrunedModel,
    on_epoch: Callable[[int, float, float], None] | None = None,
) -> tuple[TrainResult, StepValues]:
    """Retrain ``pruned.model`` in place under the run's schedule and budget (validation split only)."""
    values = retraining_steps(workspace, config)
    splits = workspace.splits
    result = train(pruned.model, splits.train, splits.val, workspace.track.recipe, values,
                   generator(config.seed, "retrain-data", workspace.device), on_epoch=on_epoch)
    return result, values


def execute(workspace: Workspace, config: RunConfig) -> RunRecord:
    """Run one configuration; a method's own failure becomes a ``failed`` record, not a crash."""
    started = time.perf_counter()
    track = workspace.track
    dense = workspace.dense(config.dense_seed)
    base = dict(config.model_dump(), id=config.run_id, dense_test_acc=dense.test_acc,
                dense_val_acc=dense.val_acc, env=environment(workspace.device),
                synthetic_data=workspace.splits.synthetic)
    try:
        pruned = prune(workspace, config)
    except Exception as exc:  # the method's code, or its plan, is at fault: record it and go on
        message = str(exc) if isinstance(exc, BenchError) else traceback.format_exc(limit=-3)
        before = workspace.counts(workspace.dense_model(config.dense_seed))
        return RunRecord(**base, status="failed", error=message, **_counts_fields(before, None),
                         wall_seconds=time.perf_counter() - started)
    model, splits = pruned.model, workspace.splits
    result, values = retrain(workspace, config, pruned)
    ok = result.status == "ok"
    return RunRecord(
        **base,
        status=result.status,
        test_acc=evaluate(model, splits.open_test()) if ok else None,
        val_acc=evaluate(model, splits.val) if ok else None,
        **_counts_fields(pruned.before, pruned.after),
        kept=pruned.plan.counts(), steps_per_epoch=values.steps_per_epoch, retrain_steps=result.steps,
        protocol=protocol(track, config, config.budget_epochs),
        curves=Curves(train_loss=_finite_or_none(result.train_loss), val_acc=result.val_acc, lr=result.lr),
        wall_seconds=time.perf_counter() - started,
    )
