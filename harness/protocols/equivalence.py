"""Engine equivalence: whether a fast engine changes accuracy.

``compare_engines`` retrains the same configurations with the plain loop and with a fast engine
and tests, with the audit's own statistics (paired TOST at the audit's margin, Welch), whether their
test accuracies across seeds are equivalent. Its TOST is at ``ENGINE_CHECK_LEVEL`` per side (the 90 %
interval inside the margin, the usual equivalence convention), looser than the audit's 2.5 %: it checks
an engine, it decides no comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from harness.audit.config import AuditConfig
from harness.core.errors import BenchError
from harness.core.layout import ResultsLayout
from harness.grid.selection import expand, select
from harness.protocols.perf import NUM_CLASSES
from harness.run.execution import execute_many
from harness.run.pipeline import Workspace
from harness.run.record import RunConfig
from harness.stats import EquivalenceResult, TestResult, tost, welch_test
from harness.track.definition import DataSection, Track
from harness.train.engines import EngineSettings

ENGINE_CHECK_LEVEL = 0.05
"""One-sided level of each of the engine check's two tests (the audit's own is ``AuditConfig.claim_level``)."""


@dataclass(frozen=True)
class EngineEquivalence:
    """Test accuracy per seed from the plain loop and from a fast engine, and the audit's verdict on them.

    ``tost`` pairs runs by seed (same dense checkpoint, plan, data order and initial weights), as
    the audit pairs cells that share their seeds; ``welch`` is the unpaired test of a difference.
    """

    track: str
    synthetic: bool
    engine: str
    precision: str
    method: str
    target: str
    schedule: str
    budget: int
    seeds: tuple[int, ...]
    plain: tuple[float, ...]
    fast: tuple[float, ...]
    tost: EquivalenceResult
    welch: TestResult

    @property
    def equivalent(self) -> bool:
        return self.tost.equivalent

    def as_dict(self) -> dict:
        return {**{k: v for k, v in vars(self).items() if k not in ("tost", "welch")},
                "tost": vars(self.tost), "welch": vars(self.welch), "equivalent": self.equivalent}


def cifar_shaped_track(base: Track, model: str | None = None, train_size: int = 1000, eval_size: int = 500,
                       dense_epochs: int = 4) -> Track:
    """``base`` (a CIFAR track) on synthetic CIFAR-shaped images, with its recipe shortened to ``dense_epochs``.

    Milestones keep their place in the schedule (half and three quarters of the way). The name
    says both changes, so its dense baselines never mix with the real track's.
    """
    if tuple(base.model.input_shape) != (3, 32, 32):
        raise BenchError(f"track '{base.name}' does not take CIFAR-shaped input; choose a CIFAR track")
    milestones = tuple(sorted({m for m in (dense_epochs // 2, 3 * dense_epochs // 4) if 0 < m < dense_epochs}))
    recipe = base.recipe.model_copy(update={"epochs": dense_epochs, "milestones": milestones})
    model_section = base.model.model_copy(update={"name": model or base.model.name, "num_classes": NUM_CLASSES})
    return base.model_copy(update={
        "name": f"{base.name}-synthetic-{model_section.name}-{dense_epochs}ep",
        "description": f"{base.description} -- on synthetic CIFAR-shaped data, "
                       f"dense recipe cut to {dense_epochs} epochs",
        "data": DataSection(dataset="synthetic-cifar", split_seed=base.data.split_seed, train_size=train_size,
                            val_size=eval_size, test_size=eval_size),
        "model": model_section, "recipe": recipe,
    })


def _test_accuracies(workspace: Workspace, configs: Sequence[RunConfig]) -> list[float]:
    """Test accuracy of each configuration retrained by ``workspace``'s engine (the fused engine: as one group)."""
    settings = workspace.engine
    runs = [config.model_copy(update={"engine": settings.name, "precision": settings.precision}) for config in configs]
    records = {record.id: record for record in execute_many(workspace, runs)}
    accuracies = []
    for config, run in zip(configs, runs):
        record = records[run.run_id]
        if record.status != "ok":
            raise BenchError(f"{config.label} ended {record.status} with the {settings.name} engine; "
                             f"choose a schedule and budget that train")
        accuracies.append(record.test_acc)
    return accuracies


def compare_engines(
    track: Track, layout: ResultsLayout, engine: EngineSettings, seeds: Sequence[int], schedule: str, budget: int,
    method: str | None = None, target: str | None = None, device: str = "cpu",
    margin: float = AuditConfig().equivalence_margin,
) -> EngineEquivalence:
    """Retrain each seed's run with the plain loop and with ``engine``; compare test accuracies.

    Dense baselines are cached in the layout as for a grid; the runs' records are not written.
    """
    if engine.name == "eager" and not engine.bf16:
        raise BenchError("compare a fast engine with the plain loop: choose --engine graph, compile or fused")
    if len(seeds) < 2:
        raise BenchError("an equivalence test needs at least two seeds; pass more --seeds")
    selection = select(track, methods=[method or track.pruning.methods[0]],
                       targets=[target or track.pruning.targets[0].name], schedules=[schedule], budgets=[budget],
                       seeds=seeds, twins=False)
    configs = expand(track, selection)
    plain_workspace = Workspace(track, layout, device=device)
    fast_workspace = Workspace(track, layout, device=device, engine=engine)
    plain = _test_accuracies(plain_workspace, configs)
    fast = _test_accuracies(fast_workspace, configs)
    return EngineEquivalence(
        track=track.name, synthetic=plain_workspace.splits.synthetic, engine=engine.name, precision=engine.precision,
        method=selection.methods[0], target=selection.targets[0], schedule=schedule,
        budget=configs[0].budget_epochs, seeds=tuple(c.seed for c in configs), plain=tuple(plain), fast=tuple(fast),
        tost=tost(fast, plain, margin, ENGINE_CHECK_LEVEL, paired=True), welch=welch_test(fast, plain),
    )
