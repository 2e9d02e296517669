"""Tuning: Optuna searches a schedule's declared hyperparameters, on the validation split only.

Tuning one's own method while the baselines keep their defaults is a classic unfair comparison.
Here every cell -- a method or its random twin, a target, a schedule, a budget -- gets its own
study with the same trial budget; the search space is exactly the schedule's declared tunables
(optimizer, batch size, weight decay, augmentation, budget and pruning plan stay fixed by the
track); the objective is validation accuracy at the end of the fixed budget, averaged over the
tuning seeds; and the test split is never opened (checked through the data layer's read count).

Budget: ``trials`` counts trials that finished (COMPLETE or PRUNED) plus those running. A trial
that failed -- an interrupted or crashed worker -- does not count and is replaced, so a killed
study rerun with the same command ends with exactly ``trials`` finished trials. Each TPE/random
trial is sampled with a seed derived from (``seed``, number of trials finished before it), so a
sequential study gives the same trials whether or not it was interrupted.

Intermediate values: seeds are retrained one after another; step ``s`` is the validation accuracy
after epoch ``s % budget_epochs`` of the ``s // budget_epochs``-th tuning seed, so pruners compare
trials at the same seed and epoch. A seed whose training diverges scores 0.

Each trial's end rewrites the study's history (``harness.tune.history``, the one schema every
reader uses); ``harness.tune.tuned`` applies finished studies to a grid of runs.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import statistics
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Mapping, Sequence

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from harness.core.choices import PRUNERS, SAMPLERS
from harness.core.errors import BenchError
from harness.core.seeding import derive_seed
from harness.dense.baseline import dense_hash
from harness.grid.selection import Selection, dense_seed_for, expand
from harness.run.cells import CELL_FIELDS, CellKey
from harness.run.pipeline import PrunedModel, Workspace, prune, retrain
from harness.run.record import RunConfig
from harness.track.definition import Track
from harness.track.schedules import Tunable, get_schedule
from harness.tune.history import (
    OBJECTIVE,
    SELECTION_SPLIT,
    StudyHistory,
    TrialRecord,
    checked_name,
    export_history,
    study_name,
)

STALE_RETRIES = 3
FIXED_BY_TRACK = "the optimizer, batch size, weight decay, augmentation, budget and pruning plan are fixed by the track"


@dataclass(frozen=True)
class TuneOptions:
    """How each cell's study is run; every cell of one ``tune_cells`` call gets the same."""

    trials: int
    seeds: tuple[int, ...]
    sampler: str = "tpe"
    seed: int = 0
    pruner: str = "median"
    params: tuple[str, ...] | None = None
    storage: str | None = None
    heartbeat: int | None = None
    study_prefix: str | None = None


@dataclass(frozen=True)
class TuneProgress:
    """Reported while tuning: a study ``opened``, an ``epoch`` of a trial ended, a ``trial`` finished."""

    study: str
    event: Literal["opened", "epoch", "trial"]
    finished: int
    requested: int
    trial: int | None = None
    step: int | None = None
    value: float | None = None


def search_space(track: Track, schedule: str, params: Sequence[str] | None = None) -> tuple[Tunable, ...]:
    """The schedule's declared tunables (or the named subset of them); anything else is refused."""
    declared = get_schedule(schedule).tunables(track.recipe)
    if not declared:
        raise BenchError(f"schedule '{schedule}' declares no tunable hyperparameters, so there is nothing to tune; "
                         "it always runs with its fixed values")
    names = [t.name for t in declared]
    for name in params or ():
        if name not in names:
            raise BenchError(f"cannot tune '{name}': schedule '{schedule}' tunes only {', '.join(names)}; "
                             f"{FIXED_BY_TRACK}")
    return tuple(t for t in declared if params is None or t.name in params)


def has_tunables(track: Track, schedule: str) -> bool:
    return bool(get_schedule(schedule).tunables(track.recipe))


def tuning_cells(track: Track, selection: Selection) -> tuple[list[CellKey], list[str]]:
    """Every cell of the selection to tune, and the selected schedules skipped for declaring no tunables."""
    schedules = [s for s in selection.schedules if has_tunables(track, s)]
    skipped = [s for s in selection.schedules if s not in schedules]
    cells = [CellKey(track.name, method, twin, target, schedule, budget)
             for method in selection.methods
             for twin in ((False, True) if selection.twins else (False,))
             for target in selection.targets
             for schedule in schedules
             for budget in selection.budgets]
    return cells, skipped


def check_options(options: TuneOptions) -> None:
    if options.trials < 1:
        raise BenchError(f"--trials must be at least 1, got {options.trials}")
    if not options.seeds:
        raise BenchError("tuning needs at least one seed; pass --seeds")
    if options.sampler not in SAMPLERS:
        raise BenchError(f"unknown sampler {options.sampler!r}; choose one of: {', '.join(SAMPLERS)}")
    if options.pruner not in PRUNERS:
        raise BenchError(f"unknown pruner {options.pruner!r}; choose one of: {', '.join(PRUNERS)}")
    if options.heartbeat is not None and options.heartbeat < 1:
        raise BenchError(f"--heartbeat must be a positive number of seconds, got {options.heartbeat}")
    if options.study_prefix is not None:
        checked_name(options.study_prefix, "study prefix")


def open_storage(url: str, heartbeat: int | None = None) -> optuna.storages.RDBStorage:
    """An RDB storage; with ``heartbeat``, trials of dead workers are failed after two beats and retried."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            beat = {} if heartbeat is None else {
                "heartbeat_interval": heartbeat,
                "heartbeat_stale_trial_callback": optuna.storages.RetryHeartbeatStaleTrialCallback(STALE_RETRIES),
            }
            return optuna.storages.RDBStorage(url, engine_kwargs=engine, **beat)
    except Exception as exc:  # SQLAlchemy's URL, driver and connection errors share no base class
        raise BenchError(f"cannot open tuning storage {url!r} ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
                         "give an SQLAlchemy URL such as sqlite:///results/optuna.db or postgresql://user@host/db") from None


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna logs every trial at INFO and warns that heartbeats are experimental; keep both for the duration."""
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(previous)


def _grid_values(tunable: Tunable, points: int) -> list[float]:
    spaced = np.geomspace if tunable.log else np.linspace
    return [min(max(float(v), tunable.low), tunable.high) for v in spaced(tunable.low, tunable.high, points)]


def grid_points(trials: int, dimensions: int) -> int:
    """Points per hyperparameter so the grid holds at least ``trials`` distinct settings."""
    return max(2, math.ceil(trials ** (1 / dimensions) - 1e-9))


def _sampler(name: str, space: tuple[Tunable, ...], points: int, seed: int, finished: int) -> optuna.samplers.BaseSampler:
    if name == "grid":  # the grid's shuffled order comes from one seed; trial n takes point n
        return optuna.samplers.GridSampler({t.name: _grid_values(t, points) for t in space}, seed=seed)
    trial_seed = derive_seed(seed, f"tune-trial-{finished}") % 2**32
    if name == "random":
        return optuna.samplers.RandomSampler(seed=trial_seed)
    return optuna.samplers.TPESampler(seed=trial_seed)


def _pruner(name: str, max_resource: int) -> optuna.pruners.BasePruner:
    if name == "median":
        return optuna.pruners.MedianPruner()
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_resource)
    return optuna.pruners.NopPruner()


def _cell_configs(track: Track, cell: CellKey, seeds: Sequence[int], params: Mapping[str, float]) -> list[RunConfig]:
    selection = Selection(methods=(cell.method,), targets=(cell.target,), schedules=(cell.schedule,),
                          budgets=(cell.budget_epochs,), seeds=tuple(seeds), twins=cell.twin)
    key = (cell.method, cell.twin, cell.target, cell.schedule, cell.budget_epochs)
    return [c for c in expand(track, selection, cell_params={key: params}) if c.twin == cell.twin]


def _protocol(track: Track, cell: CellKey, space: tuple[Tunable, ...], options: TuneOptions) -> dict[str, Any]:
    """What makes two invocations the same study; a mismatch on resume is refused."""
    return {
        **cell.config(), "track": track.name, "seeds": list(options.seeds),
        "dense_hashes": [dense_hash(track, dense_seed_for(track, s)) for s in options.seeds],
        "sampler": options.sampler, "seed": options.seed, "pruner": options.pruner,
        "space": {t.name: {"low": t.low, "high": t.high, "log": t.log} for t in space},
        "objective": OBJECTIVE, "split": SELECTION_SPLIT,
    }


def _open_study(storage, name: str, protocol: dict[str, Any], options: TuneOptions, dimensions: int) -> optuna.Study:
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize", load_if_exists=True)
    stored = study.user_attrs.get("protocol")
    if stored is None and study.trials:
        raise BenchError(f"study '{name}' already exists in the storage but was not made by bench tune; "
                         "name another --study or --storage")
    if stored is not None and stored != protocol:
        changed = next(k for k in {**stored, **protocol} if stored.get(k) != protocol.get(k))
        raise BenchError(f"study '{name}' was run with {changed}={stored.get(changed)!r}, not {protocol.get(changed)!r}; "
                         "rerun with the same options or name a new --study / --study-prefix")
    if stored is None:
        study.set_user_attr("protocol", protocol)
        study.set_user_attr("grid_points", grid_points(options.trials, dimensions))
    study.set_user_attr("trials_requested", max(options.trials, study.user_attrs.get("trials_requested", 0)))
    return study


def _count(trials: Sequence[FrozenTrial], *states: TrialState) -> int:
    return sum(t.state in states for t in trials)


def _finished(study: optuna.Study) -> int:
    return _count(study.get_trials(deepcopy=False), TrialState.COMPLETE, TrialState.PRUNED)


def _next_step(study: optuna.Study, options: TuneOptions) -> Literal["run", "wait", "stop"]:
    """Running trials count against the budget (other workers may finish them); failed ones do not.

    Without heartbeats a trial of a killed worker would look running forever, so we stop rather
    than wait for it; with them, it is failed after two missed beats and retried here.
    """
    if options.heartbeat:
        optuna.storages.fail_stale_trials(study)
    trials = study.get_trials(deepcopy=False)
    done, running = _count(trials, TrialState.COMPLETE, TrialState.PRUNED), _count(trials, TrialState.RUNNING)
    if done >= options.trials:
        return "stop"
    if done + running < options.trials:
        return "run"
    return "wait" if options.heartbeat else "stop"


def study_history(study: optuna.Study) -> StudyHistory:
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = max(complete, key=lambda t: (t.value, -t.number), default=None)
    n_complete, n_pruned = _count(trials, TrialState.COMPLETE), _count(trials, TrialState.PRUNED)
    protocol = study.user_attrs["protocol"]
    return StudyHistory(
        study=study.study_name, cell=CellKey.of_config(protocol),
        **{key: value for key, value in protocol.items() if key not in CELL_FIELDS},
        trials_requested=study.user_attrs["trials_requested"],
        n_trials=n_complete + n_pruned, n_complete=n_complete, n_pruned=n_pruned,
        n_failed=_count(trials, TrialState.FAIL), n_running=_count(trials, TrialState.RUNNING),
        trials=[TrialRecord(t.number, t.state.name, t.value if t.state == TrialState.COMPLETE else None,
                            dict(t.params), [t.intermediate_values[s] for s in sorted(t.intermediate_values)])
                for t in trials],
        best_params=dict(best.params) if best else None, best_value=best.value if best else None,
    )


class _Objective:
    """Retrains the cell's pruned model (pruned once per seed, copied per trial) and scores it on validation."""

    def __init__(self, workspace: Workspace, cell: CellKey, space: tuple[Tunable, ...], options: TuneOptions,
                 progress: Callable[[int, int, float], None]):
        self.workspace, self.cell, self.space, self.options, self.progress = workspace, cell, space, options, progress
        self._pruned: dict[int, PrunedModel] = {}
        self._test_reads: int | None = None

    def prepare(self) -> None:
        """Prune every seed (training dense baselines if needed) before counting test-split reads."""
        if self._test_reads is not None:
            return
        for config in _cell_configs(self.workspace.track, self.cell, self.options.seeds, {}):
            if config.seed not in self._pruned:
                self._pruned[config.seed] = prune(self.workspace, config)
        self._test_reads = self.workspace.splits.test_reads

    def check_test_untouched(self) -> None:
        if self.workspace.splits.test_reads != self._test_reads:
            raise BenchError("the test split was read during tuning; tuning must select on validation only")

    def __call__(self, trial: optuna.Trial) -> float:
        params = {t.name: trial.suggest_float(t.name, t.low, t.high, log=t.log) for t in self.space}
        budget = self.cell.budget_epochs
        accuracies = []
        for index, config in enumerate(_cell_configs(self.workspace.track, self.cell, self.options.seeds, params)):
            pruned = self._pruned[config.seed]
            fresh = dataclasses.replace(pruned, model=copy.deepcopy(pruned.model))

            def report(epoch: int, loss: float, val_acc: float, offset: int = index * budget) -> None:
                trial.report(val_acc, offset + epoch)
                self.progress(trial.number, offset + epoch, val_acc)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"stopped at step {offset + epoch}")

            result, _ = retrain(self.workspace, config, fresh, on_epoch=report)
            accuracies.append(result.val_acc[-1] if result.status == "ok" else 0.0)
        return statistics.fmean(accuracies)


def tune_cell(
    workspace: Workspace,
    cell: CellKey,
    options: TuneOptions,
    study: str | None = None,
    storage: optuna.storages.RDBStorage | None = None,
    on_progress: Callable[[TuneProgress], None] | None = None,
) -> StudyHistory:
    """Run the cell's study until ``options.trials`` trials have finished; export and return its history.

    ``storage`` defaults to ``options.storage``, itself defaulting to the track's SQLite file.
    """
    check_options(options)
    track = workspace.track
    if cell.track != track.name:
        raise BenchError(f"cell is of track '{cell.track}' but the workspace holds track '{track.name}'")
    space = search_space(track, cell.schedule, options.params)
    name = checked_name(study, "study name") if study else study_name(cell, options.study_prefix)
    storage = storage or open_storage(options.storage or workspace.layout.storage(track.name), options.heartbeat)
    emit = on_progress or (lambda event: None)
    with _quiet_optuna():
        handle = _open_study(storage, name, _protocol(track, cell, space, options), options, len(space))
        handle.pruner = _pruner(options.pruner, len(options.seeds) * cell.budget_epochs)
        emit(TuneProgress(name, "opened", _finished(handle), options.trials))
        objective = _Objective(workspace, cell, space, options, lambda number, step, value: emit(
            TuneProgress(name, "epoch", _finished(handle), options.trials, number, step, value)))
        ended: list[FrozenTrial] = []
        try:
            while (step := _next_step(handle, options)) != "stop":
                if step == "wait":
                    time.sleep(options.heartbeat)
                    continue
                objective.prepare()
                handle.sampler = _sampler(options.sampler, space, handle.user_attrs["grid_points"], options.seed,
                                          _finished(handle))
                handle.optimize(objective, n_trials=1, callbacks=[lambda _, trial: ended.append(trial)])
                objective.check_test_untouched()
                export_history(workspace.layout, study_history(handle))
                emit(TuneProgress(name, "trial", _finished(handle), options.trials, ended[-1].number, None,
                                  ended[-1].value))
        finally:
            history = study_history(handle)
            export_history(workspace.layout, history)
    return history


def check_cells(track: Track, cells: Sequence[CellKey], options: TuneOptions, study: str | None = None) -> None:
    """Refuse bad options and anything outside the search spaces before a single trial runs."""
    check_options(options)
    if track.data.protocol == "paper":
        raise BenchError(f"track '{track.name}' uses the paper protocol, whose validation images are training images, "
                         "so tuning on them would select on the training set; tune under the held-out protocol")
    if study and len(cells) > 1:
        raise BenchError(f"--study names one study but {len(cells)} cells were selected; use --study-prefix instead")
    for cell in cells:
        search_space(track, cell.schedule, options.params)


def tune_cells(
    workspace: Workspace,
    cells: Sequence[CellKey],
    options: TuneOptions,
    study: str | None = None,
    storage: optuna.storages.RDBStorage | None = None,
    on_progress: Callable[[TuneProgress], None] | None = None,
) -> list[StudyHistory]:
    """The same trial budget for every cell, one study each (``--all-methods`` passes every method and twin)."""
    check_cells(workspace.track, cells, options, study)
    storage = storage or open_storage(options.storage or workspace.layout.storage(workspace.track.name),
                                      options.heartbeat)
    return [tune_cell(workspace, cell, options, study, storage, on_progress) for cell in cells]
