"""One run, start to finish: dense checkpoint -> target allocation -> plan -> (twin) -> validate ->
surgery or masking -> count -> retrain under a schedule for a fixed budget -> final test
evaluation -> a run record.

A ``Workspace`` holds what many runs of one track share (the loaded data, dense baselines,
counts per architecture, resolved targets, the dense latency) so a grid pays for them once.
It is an explicit object, never global.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import platform
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import torch

from harness import __version__
from harness.core.device import device_name
from harness.core.errors import BenchError
from harness.core.layout import ResultsLayout
from harness.core.seeding import generator
from harness.data import DataSpec, load_splits
from harness.dense.baseline import DenseBaseline, load_or_train_dense, new_model
from harness.methods import PruningContext, get_method
from harness.methods.isolation import Isolation
from harness.methods.location import recorded_file
from harness.methods.phase import PhaseRun
from harness.methods.plugins import registered_digest
from harness.methods.sources import harness_digest
from harness.methods.training import (
    BudgetSplit,
    PhaseContext,
    TrainingDiverged,
    round_counts,
    split_budget,
)
from harness.plans import ChannelPlan, MaskPlan, Plan
from harness.prune.allocation import Allocation, resolve_target
from harness.prune.counting import Counts, SparseCounts, count, count_sparse
from harness.prune.latency import (
    LatencyMeasurement,
    LatencySettings,
    compare_latency,
    measure_latency,
)
from harness.prune.surgery import apply_masks, prune_channels
from harness.prune.twins import random_plan, random_twin
from harness.prune.validation import validate_plan
from harness.run.record import Curves, Latency, Phases, Protocol, RunConfig, RunRecord
from harness.track.definition import Track
from harness.track.schedules import StepValues, get_schedule, step_values, warmup_epochs
from harness.train.engines import (
    CompileCache,
    EngineSettings,
    StepFactory,
    step_factory,
)
from harness.train.fusion import FusedRun, train_fused
from harness.train.loop import Checkpoint, TrainResult, evaluate, steps_per_epoch, train

METHOD_BATCHES = 8


def data_spec(track: Track) -> DataSpec:
    aug = track.recipe.augmentation
    return DataSpec(
        dataset=track.data.dataset, root=track.data.root, split_seed=track.data.split_seed,
        val_size=track.data.val_size, test_size=track.data.test_size, train_size=track.data.train_size,
        crop_padding=aug.crop_padding, horizontal_flip=aug.horizontal_flip, protocol=track.data.protocol,
    )


def environment(device: str) -> dict:
    return {
        "harness_version": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "device": device_name(device),
        "device_type": device,
        "threads": torch.get_num_threads(),
    }


class Workspace:
    """Shared, lazily built state for the runs of one track on one device.

    With ``latency`` settings, every run also times dense vs pruned inference on ``device``; ``engine``
    says how retraining steps run (``harness.train.engines``; compiled steps are cached here, per architecture).
    ``dense`` baselines given by seed are used as they are: a worker without the results folder
    gets them from its driver instead of training its own. ``isolation`` computes plugin plans; workspaces
    that share one share its cache of plugin outcomes.
    """

    def __init__(self, track: Track, layout: ResultsLayout, *, device: str = "cpu",
                 latency: LatencySettings | None = None, dense: Mapping[int, DenseBaseline] | None = None,
                 engine: EngineSettings = EngineSettings(), isolation: Isolation | None = None):
        self.track = track
        self.engine = engine
        self.layout = layout
        self.device = device
        self.latency = latency
        self._splits = None
        self._dense: dict[int, DenseBaseline] = dict(dense or {})
        self._counts: dict[tuple, Counts] = {}
        self._allocations: dict[tuple[str, str], Allocation] = {}
        self._dense_latency: LatencyMeasurement | None = None
        self.isolation = isolation or Isolation()

    @functools.cached_property
    def make_step(self) -> StepFactory:
        """The step factory of a run retrained alone (compiled steps are cached per architecture)."""
        return step_factory(self.engine, CompileCache())

    @property
    def splits(self):
        if self._splits is None:
            self._splits = load_splits(data_spec(self.track), device=self.device)
        return self._splits

    def dense(self, seed: int) -> DenseBaseline:
        if seed not in self._dense:
            self._dense[seed] = load_or_train_dense(self.track, seed, self.splits, self.layout, self.device)
        return self._dense[seed]

    def dense_model(self, seed: int) -> torch.nn.Module:
        model = new_model(self.track, seed).to(self.device)
        model.load_state_dict(self.dense(seed).state_dict)
        return model

    def counts(self, model: torch.nn.Module) -> Counts:
        """fvcore counts, cached per architecture (a plan and its twin share one); not for masked models."""
        key = tuple((name, tuple(p.shape)) for name, p in model.named_parameters())
        if key not in self._counts:
            self._counts[key] = count(model, self.track.model.input_shape)
        return self._counts[key]

    def example_input(self) -> torch.Tensor:
        return torch.zeros((1, *self.track.model.input_shape), device=self.device)

    def allocation(self, target: str, kind: str, model: torch.nn.Module) -> Allocation:
        """The track's target resolved for this architecture and kind of method (weights do not matter)."""
        if (target, kind) not in self._allocations:
            self._allocations[(target, kind)] = resolve_target(
                self.track.target(target), kind, self.track.model.name, model, self.track.model.input_shape)
        return self._allocations[(target, kind)]

    def make_plan(self, method_name: str, target: str, seed: int, model: torch.nn.Module, twin: bool = False,
                  allocation: Allocation | None = None, memory: Mapping | None = None, stream: str = "method") -> Plan:
        """A method's validated plan on ``model`` (left untouched), or its random twin. ``allocation`` replaces the
        target's (a pruning round's counts); ``memory`` is what the method's training phase kept; ``stream`` names
        the method's random stream (each pruning round draws its own)."""
        method = get_method(method_name)
        allocation = allocation or self.allocation(target, method.kind, model)
        ranks_globally = method.global_ranking and allocation.redistributes
        splits = self.splits if method.needs_data else None
        context = PruningContext(
            model=copy.deepcopy(model).eval(), sizes=allocation.sizes, keep=dict(allocation.keep),
            generator=generator(seed, stream),
            max_batches=METHOD_BATCHES if method.needs_data else 0,
            batch_source=(lambda: splits.train.batches(
                self.track.recipe.batch_size, generator=generator(seed, "method-data", self.device),
                shuffle=True, augment=False)) if method.needs_data else None,
            kind=method.kind, example_input=self.example_input(),
            allocate=allocation.rank_globally if ranks_globally else None, memory=dict(memory or {}),
        )
        plan = validate_plan(method.name, self.isolation.select(method, context), allocation.shapes,
                             keep=None if ranks_globally else allocation.keep,
                             goal_miss=allocation.miss if ranks_globally else None, kind=method.kind)
        if twin:
            plan = random_twin(plan, allocation.sizes, generator(seed, "twin"))
        return plan

    def train_phase(self, config: RunConfig, model: torch.nn.Module, epochs: int) -> PhaseRun:
        """The method's pre-pruning phase on ``model``, in place (``harness.methods.phase``)."""
        method = get_method(config.method)
        allocation = self.allocation(config.target, method.kind, model)
        tracer = PruningContext(model=model, sizes=allocation.sizes, keep=allocation.keep,
                                generator=generator(config.seed, "phase"), example_input=self.example_input())
        context = PhaseContext(model=model, sizes=allocation.sizes, keep=dict(allocation.keep),
                               batchnorms=tracer.batchnorms(required=False), generator=tracer.generator,
                               steps=epochs * steps_per_epoch(len(self.splits.train), self.track.recipe.batch_size),
                               epochs=epochs)
        return self.isolation.train_phase(method, context, self.splits.train, self.track.recipe,
                                          generator(config.seed, "phase-data", self.device))

    def plan(self, config: RunConfig, model: torch.nn.Module) -> Plan:
        """The method's validated plan, or its random twin, for this run."""
        return self.make_plan(config.method, config.target, config.seed, model, config.twin)

    def latency_comparison(self, dense_seed: int, pruned: torch.nn.Module) -> Latency:
        """Dense (timed once per workspace: every dense seed shares the architecture) vs pruned latency."""
        shape = self.track.model.input_shape
        if self._dense_latency is None:
            self._dense_latency = measure_latency(self.dense_model(dense_seed), shape, self.device, self.latency)
        return compare_latency(self._dense_latency, pruned, shape, self.device, self.latency).to_record()


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
    warmup = warmup_epochs(params["warmup_fraction"], epochs) if "warmup_fraction" in params else None
    aug = track.recipe.augmentation
    return Protocol(
        optimizer=track.recipe.optimizer, momentum=track.recipe.momentum, nesterov=track.recipe.nesterov,
        weight_decay=track.recipe.weight_decay, batch_size=track.recipe.batch_size,
        crop_padding=aug.crop_padding, horizontal_flip=aug.horizontal_flip,
        peak_lr=peak, warmup_epochs=warmup,
    )


@dataclass(frozen=True)
class PrunedModel:
    """A dense checkpoint after a validated plan was applied: ready to retrain.

    For a mask plan, ``masks`` holds the 0/1 tensor of each masked layer (by name, so a deep copy
    of ``model`` can be retrained with them) and ``sparse`` what the zeros amount to.
    """

    model: torch.nn.Module
    plan: Plan
    before: Counts
    after: Counts
    masks: dict[str, torch.Tensor] = field(default_factory=dict)
    sparse: SparseCounts | None = None
    phases: Phases | None = None
    """A training method's budget split so far (the last round's steps are 0 until it retrains)."""


def budget_split(config: RunConfig) -> BudgetSplit:
    """How the run spends its budget: a method that trains, and its trained twin, split it (``split_budget``);
    every other run, and every plain random twin, prunes once and spends it all retraining -- the twin of a
    training method gets the same total budget as plain retraining."""
    method = get_method(config.method)
    if config.twin_trains and not method.trains:
        raise BenchError(f"method '{config.method}' does not train, so it has no trained twin; drop --trained-twins "
                         "for it (its random twin is the control)")
    if (config.twin and not config.twin_trains) or not method.trains:
        return BudgetSplit(0, (config.budget_epochs,))
    return split_budget(config.budget_epochs, method.training, method.rounds)


def prune(workspace: Workspace, config: RunConfig) -> PrunedModel:
    """Dense model -> (the method's training: phase, rounds) -> method plan (or its twin) -> validation -> surgery
    or masking -> counts."""
    model = workspace.dense_model(config.dense_seed)
    before = workspace.counts(model)
    method = get_method(config.method)
    if method.trains:
        if not config.twin or config.twin_trains:
            return _train_and_prune(workspace, config, model, before)
        allocation = workspace.allocation(config.target, method.kind, model)
        if method.global_ranking and allocation.redistributes:  # the counts are the trained method's choice
            counts = _train_and_prune(workspace, config.model_copy(update={"twin": False}), model, before).plan.counts()
            model = workspace.dense_model(config.dense_seed)
        else:
            counts = dict(allocation.keep)
        plan = random_plan(counts, allocation.shapes, generator(config.seed, "twin"),
                           structured=method.kind == "structured")
    else:
        plan = workspace.plan(config, model)
    return _apply(workspace, model, plan, before)


def _apply(workspace: Workspace, model: torch.nn.Module, plan: Plan, before: Counts,
           phases: Phases | None = None) -> PrunedModel:
    if isinstance(plan, MaskPlan):
        masks = apply_masks(model, plan, workspace.example_input())
        sparse = count_sparse(model, plan.masks, workspace.track.model.input_shape)
        after = dataclasses.replace(before, nonzero_params=sparse.nonzero_params)
        return PrunedModel(model, plan, before, after, masks, sparse, phases)
    prune_channels(model, plan, workspace.example_input())
    return PrunedModel(model, plan, before, workspace.counts(model), phases=phases)


def _train_and_prune(workspace: Workspace, config: RunConfig, model: torch.nn.Module, before: Counts) -> PrunedModel:
    """A training method's way to its pruned model: its phase, then each round's plan, retraining between rounds
    under the run's schedule at that round's share of the budget (LRW rewinds each round to the recipe's rate at
    the matching epoch, as Renda et al. describe). A trained twin runs the same phase (the same seeds) and keeps
    each round's counts with units drawn at random."""
    method = get_method(config.method)
    split = budget_split(config)
    memory: dict = {}
    phase_steps, phase_loss = 0, []
    if method.training is not None and split.pre_pruning:
        phase = workspace.train_phase(config, model, split.pre_pruning)
        if phase.status != "ok":
            raise TrainingDiverged(f"method '{method.name}': its pre-pruning phase diverged (a non-finite loss in "
                                   f"epoch {len(phase.train_loss)} of {split.pre_pruning}); its penalty or hook "
                                   "drove the weights there")
        memory, phase_steps, phase_loss = phase.memory, phase.steps, phase.train_loss
    allocation = workspace.allocation(config.target, method.kind, model)
    surgery_rounds = method.kind == "structured" and method.rounds > 1
    if surgery_rounds and method.global_ranking and allocation.redistributes:
        raise BenchError(f"method '{method.name}' ranks channels globally and prunes in {method.rounds} rounds, which "
                         f"target '{config.target}' leaves without per-layer counts between rounds; use a target "
                         "that fixes every layer's count (a ratio or per-layer target)")
    counts = round_counts(allocation.sizes, allocation.keep, method.rounds)
    kept = {layer: tuple(range(size)) for layer, size in allocation.sizes.items()}  # dense indices still in model
    round_steps = []
    for index, keep in enumerate(counts):
        last = index == len(counts) - 1
        this_round = (_channels_left(allocation, model, keep) if surgery_rounds
                      else None if last else allocation.for_round(keep, (index + 1) / len(counts)))
        plan = workspace.make_plan(method.name, config.target, config.seed, model, allocation=this_round,
                                   memory=memory, stream="method" if index == 0 else f"method-round{index + 1}")
        if config.twin_trains:  # the method's counts, its units drawn at random
            stream = "twin" if last else f"twin-round{index + 1}"
            plan = random_twin(plan, (this_round or allocation).sizes, generator(config.seed, stream))
        if surgery_rounds:  # channels removed every round; the record's plan names the dense model's channels
            kept = {layer: tuple(kept[layer][i] for i in plan.kept.get(layer, range(len(kept[layer]))))
                    for layer in kept}
            prune_channels(model, plan, workspace.example_input())
        if last:
            break
        masks = {} if surgery_rounds else apply_masks(model, plan, workspace.example_input())
        values = _schedule_steps(workspace, config, split.rounds[index])
        modules = dict(model.named_modules())
        result = train(model, workspace.splits.train, workspace.splits.val, workspace.track.recipe, values,
                       generator(config.seed, f"retrain-data-round{index + 1}", workspace.device),
                       masks=[(modules[layer].weight, mask) for layer, mask in masks.items()],
                       make_step=None if workspace.engine.fused else workspace.make_step)
        if result.status != "ok":
            raise TrainingDiverged(f"method '{method.name}': retraining after pruning round {index + 1} of "
                                   f"{len(counts)} diverged (a non-finite loss)")
        round_steps.append(result.steps)
    phases = Phases(pre_pruning_epochs=split.pre_pruning, pre_pruning_steps=phase_steps,
                    pre_pruning_loss=_finite_or_none(phase_loss), round_epochs=list(split.rounds),
                    round_steps=[*round_steps, 0], total_epochs=split.total,
                    total_steps=phase_steps + sum(round_steps))
    if surgery_rounds:
        return PrunedModel(model, ChannelPlan(kept), before, workspace.counts(model), phases=phases)
    return _apply(workspace, model, plan, before, phases)


def _channels_left(allocation: Allocation, model: torch.nn.Module, keep: Mapping[str, int]) -> Allocation:
    """A pruning round's allocation for a structured model already pruned by earlier rounds: each layer's
    channels as they are now, ``keep`` of them to keep (fixed counts: the rounds' geometric steps)."""
    modules = dict(model.named_modules())
    shapes = {layer: (modules[layer].out_channels,) for layer in allocation.shapes}
    return dataclasses.replace(allocation, shapes=shapes, keep=dict(keep), goal=None, pooled=False)


def _schedule_steps(workspace: Workspace, config: RunConfig, epochs: int) -> StepValues:
    track = workspace.track
    per_epoch = steps_per_epoch(len(workspace.splits.train), track.recipe.batch_size)
    return step_values(get_schedule(config.schedule), track.recipe, epochs, per_epoch, config.schedule_params)


def retraining_steps(workspace: Workspace, config: RunConfig) -> StepValues:
    """The retraining after the (final) pruning: the whole budget, or a training method's last round."""
    return _schedule_steps(workspace, config, budget_split(config).rounds[-1])


def retrain(
    workspace: Workspace, config: RunConfig, pruned: PrunedModel,
    on_epoch: Callable[[int, float, float], None] | None = None, checkpoint: Checkpoint | None = None,
) -> tuple[TrainResult, StepValues]:
    """Retrain ``pruned.model`` in place under the run's schedule and budget (validation split only);
    with a ``checkpoint``, continue from its last saved epoch and save after every epoch."""
    values = retraining_steps(workspace, config)
    splits = workspace.splits
    modules = dict(pruned.model.named_modules())
    masks = [(modules[layer].weight, mask) for layer, mask in pruned.masks.items()]
    result = train(pruned.model, splits.train, splits.val, workspace.track.recipe, values,
                   generator(config.seed, "retrain-data", workspace.device), on_epoch=on_epoch, masks=masks,
                   checkpoint=checkpoint, make_step=workspace.make_step)
    return result, values


@dataclass(frozen=True)
class PreparedRun:
    """A run pruned and ready to retrain: what its record knows before training, and how long that took."""

    config: RunConfig
    fields: dict
    pruned: PrunedModel
    latency: Latency | None
    seconds: float


def prepare(workspace: Workspace, config: RunConfig) -> PreparedRun | RunRecord:
    """Everything before retraining; a method's own failure becomes a ``failed`` record, not a crash."""
    started = time.perf_counter()
    if (config.engine, config.precision) != (workspace.engine.name, workspace.engine.precision):
        raise BenchError(f"run {config.label} asks for the {config.engine}/{config.precision} engine but this "
                         f"workspace trains with {workspace.engine.name}/{workspace.engine.precision}")
    dense = workspace.dense(config.dense_seed)
    fields = dict(config.model_dump(), id=config.run_id, dense_test_acc=dense.test_acc,
                  dense_val_acc=dense.val_acc, env=environment(workspace.device),
                  method_digest=registered_digest(config.method), method_file=recorded_file(config.method),
                  **workspace.isolation.record_fields(config.method),
                  dense_weights_sha256=dense.weights_sha256, harness_digest=harness_digest(),
                  synthetic_data=workspace.splits.synthetic)
    try:
        pruned = prune(workspace, config)
    except Exception as exc:  # the method's code or plan is at fault (failed), or its own training diverged
        message = str(exc) if isinstance(exc, BenchError) else traceback.format_exc(limit=-3)
        before = workspace.counts(workspace.dense_model(config.dense_seed))
        status = "diverged" if isinstance(exc, TrainingDiverged) else "failed"
        return RunRecord(**fields, status=status, error=message, **_counts_fields(before, None),
                         wall_seconds=time.perf_counter() - started)
    latency = (workspace.latency_comparison(config.dense_seed, pruned.model)
               if workspace.latency is not None else None)
    return PreparedRun(config, fields, pruned, latency, time.perf_counter() - started)


def finish(workspace: Workspace, prepared: PreparedRun, result: TrainResult, values: StepValues,
           train_seconds: float, fused_group: Sequence[str] = ()) -> RunRecord:
    """The record of a retrained run: final test evaluation, counts, curves. Its wall time is its own
    preparation, ``train_seconds`` (a fused run's share of its group's training) and this evaluation."""
    started = time.perf_counter()
    pruned, config = prepared.pruned, prepared.config
    model, splits = pruned.model, workspace.splits
    ok = result.status == "ok"
    phases = pruned.phases and pruned.phases.with_final_round(result.steps)
    return RunRecord(
        **prepared.fields,
        status=result.status,
        test_acc=evaluate(model, splits.open_test()) if ok else None,
        val_acc=(result.val_acc[-1] if result.val_acc else evaluate(model, splits.val)) if ok else None,
        **_counts_fields(pruned.before, pruned.after),
        kept=pruned.plan.counts(), steps_per_epoch=values.steps_per_epoch,
        retrain_steps=sum(phases.round_steps) if phases else result.steps, phases=phases,
        sparsity=pruned.sparse.sparsity if pruned.sparse else None, nonzero_params_after=pruned.after.nonzero_params,
        theoretical_macs_after=pruned.sparse.theoretical_macs_conv_linear if pruned.sparse else None,
        latency=prepared.latency, protocol=protocol(workspace.track, config, budget_split(config).rounds[-1]),
        curves=Curves(train_loss=_finite_or_none(result.train_loss), val_acc=result.val_acc, lr=result.lr),
        wall_seconds=prepared.seconds + train_seconds + time.perf_counter() - started, fused_group=list(fused_group),
    )


def fused_run(workspace: Workspace, prepared: PreparedRun) -> FusedRun:
    """A prepared run as a member of a fused group (``harness.train.fusion``)."""
    return FusedRun(prepared.pruned.model, retraining_steps(workspace, prepared.config),
                    generator(prepared.config.seed, "retrain-data", workspace.device), prepared.pruned.masks)


def retrain_fused(workspace: Workspace, group: Sequence[PreparedRun]) -> list[RunRecord]:
    """Retrain runs of one architecture and step count as one network; their records, in order."""
    runs = [fused_run(workspace, prepared) for prepared in group]
    started = time.perf_counter()
    results = train_fused(runs, workspace.splits.train, workspace.splits.val, workspace.track.recipe,
                          workspace.engine)
    share = (time.perf_counter() - started) / len(group)
    ids = [prepared.config.run_id for prepared in group]
    return [finish(workspace, prepared, result, run.values, share, ids)
            for prepared, result, run in zip(group, results, runs)]
