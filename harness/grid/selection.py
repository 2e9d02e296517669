"""A grid: every method and its random twin, under every schedule, at every budget and seed.

Expansion is pure: the same track and selection always give the same run configurations,
whose hashes name their records, so a rerun skips whatever is already on disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from harness import __version__
from harness.core.errors import BenchError
from harness.dense.baseline import dense_hash
from harness.methods import get_method
from harness.run.record import RunConfig
from harness.track.definition import Track
from harness.track.schedules import get_schedule, resolve_params


@dataclass(frozen=True)
class Selection:
    methods: tuple[str, ...]
    targets: tuple[str, ...]
    schedules: tuple[str, ...]
    budgets: tuple[int, ...]
    seeds: tuple[int, ...]
    twins: bool = True
    trained_twins: bool = False
    """Also the trained twin of every method that trains (``RunConfig.twin_trains``)."""

    def entries(self, method: str) -> list[tuple[bool, bool]]:
        """``(twin, twin_trains)`` of each run a method gets per cell: itself, its twin, its trained twin."""
        kinds = [(False, False)] + ([(True, False)] if self.twins else [])
        return kinds + ([(True, True)] if self.trained_twins and get_method(method).trains else [])


def select(
    track: Track,
    full: bool = False,
    methods: Sequence[str] | None = None,
    targets: Sequence[str] | None = None,
    schedules: Sequence[str] | None = None,
    budgets: Sequence[int] | None = None,
    seeds: Sequence[int] | None = None,
    twins: bool = True,
    trained_twins: bool = False,
) -> Selection:
    """Explicit choices win; otherwise the track's quick grid (or its full grid when ``full``)."""
    quick = track.quick if not full else None

    def pick(explicit, quick_value, full_value):
        if explicit:
            return tuple(explicit)
        if quick is not None and quick_value is not None:
            return tuple(quick_value)
        return tuple(full_value)

    selection = Selection(
        methods=pick(methods, quick and quick.methods, track.pruning.methods),
        targets=pick(targets, quick and quick.targets, [t.name for t in track.pruning.targets]),
        schedules=pick(schedules, quick and quick.schedules, track.retraining.schedules),
        budgets=pick(budgets, quick and quick.budgets, track.retraining.budgets),
        seeds=pick(seeds, quick and quick.seeds, track.seeds.runs),
        twins=twins, trained_twins=trained_twins,
    )
    for name in selection.methods:
        get_method(name)
    if trained_twins and not any(get_method(name).trains for name in selection.methods):
        raise BenchError(f"--trained-twins: none of the selected methods ({', '.join(selection.methods)}) trains, so "
                         "none has a trained twin; select a method that trains (bench methods: the 'trains' column) "
                         "or drop the flag")
    for name in selection.schedules:
        get_schedule(name)
    for name in selection.targets:
        track.target(name)
    if any(b <= 0 for b in selection.budgets):
        raise BenchError(f"budgets must be positive epoch counts, got {list(selection.budgets)}")
    bad = [s for s in selection.seeds if not 0 <= s <= MAX_SEED]
    if bad:
        raise BenchError(f"seeds must be whole numbers from 0 to {MAX_SEED}, got {bad[:5]}; "
                         "give seeds in that range (for example --seeds 0,1,2)")
    runs = grid_size(selection)
    if runs > MAX_RUNS:
        raise BenchError(f"the grid has {runs:,} runs, more than the {MAX_RUNS:,} one command takes; select fewer "
                         "methods, targets, schedules, budgets or seeds (or split the grid over several commands)")
    return selection


MAX_SEED = 2**32 - 1
"""The largest run seed: every generator a run seeds (torch, numpy, Python's) takes 0 .. 2**32 - 1."""

MAX_RUNS = 100_000
"""The most runs one grid expands to (a full digits grid is 5,200): past it, expanding the configurations alone
takes gigabytes and the grid years."""


def grid_size(selection: Selection) -> int:
    """How many run configurations :func:`expand` makes of ``selection``, without making them."""
    per_cell = sum(1 if schedule == "none" else len(selection.budgets) for schedule in selection.schedules)
    entries = sum(len(selection.entries(method)) for method in selection.methods)
    return len(selection.seeds) * entries * len(selection.targets) * per_cell


def dense_seed_for(track: Track, seed: int) -> int:
    """Run seeds are spread over the dense seeds in turn, so runs that share a seed share a checkpoint."""
    dense = track.seeds.dense
    return dense[seed % len(dense)]


CellParamsKey = tuple[str, bool, str, str, int]
"""(method, twin, target, schedule, budget_epochs): the cell a set of tuned hyperparameters belongs to."""


def expand(
    track: Track,
    selection: Selection,
    cell_params: Mapping[CellParamsKey, Mapping[str, float]] | None = None,
    engine: str = "eager",
    precision: str = "fp32",
) -> list[RunConfig]:
    """All run configurations of the selection; ``none`` runs once per cell at budget 0.

    ``cell_params`` (a tuner's per-cell choices) overrides a schedule's defaults for one cell.
    The training engine and precision are part of each run's identity: a bf16 or graph-engine
    run never stands in for the plain fp32 one.
    """
    configs = []
    for seed in selection.seeds:
        dense_seed = dense_seed_for(track, seed)
        for method in selection.methods:
            for target in selection.targets:
                for twin, twin_trains in selection.entries(method):
                    for schedule in selection.schedules:
                        for budget in (0,) if schedule == "none" else selection.budgets:
                            params = resolve_params(get_schedule(schedule), track.recipe,
                                                    (cell_params or {}).get((method, twin, target, schedule, budget)))
                            configs.append(RunConfig(
                                track=track.name, dense_hash=dense_hash(track, dense_seed), dense_seed=dense_seed,
                                method=method, twin=twin, twin_trains=twin_trains, target=target,
                                target_spec=track.target(target).model_dump(mode="json"),
                                schedule=schedule, schedule_params=params, budget_epochs=budget,
                                seed=seed, harness_version=__version__, engine=engine, precision=precision,
                                data_protocol=track.data.protocol,
                            ))
    return configs
