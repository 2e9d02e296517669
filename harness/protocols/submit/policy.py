"""What a submission must satisfy before anything runs: enough seeds, the targets its kind can be held to,
and -- when it is tuned -- exactly the trial budget and protocol the leaderboard's baselines were tuned with."""

from __future__ import annotations

from collections import Counter

from harness.audit import AuditConfig
from harness.core.errors import BenchError
from harness.core.layout import ResultsLayout
from harness.dense.baseline import new_model
from harness.prune.allocation import resolve_target
from harness.track.definition import Track
from harness.tune.history import (
    StudyHistory,
    check_reusable,
    load_histories,
    study_name,
    unreadable,
)
from harness.tune.search import TuneOptions

MIN_SEEDS = AuditConfig().recommended_seeds
"""A submission runs enough seeds that the audit does not warn of too few (R5)."""

def submission_seeds(track: Track, count: int, counted: tuple[int, ...] | None = None) -> tuple[int, ...]:
    """The leaderboard's seeds (default: the track's run seeds) first, so runs pair with the baselines',
    then the next integers."""
    if count < MIN_SEEDS:
        raise BenchError(f"--seeds {count} is too few: a submission runs at least {MIN_SEEDS} seeds "
                         "(the audit fails cells under 3 and warns under 5)")
    seeds = list((track.seeds.runs if counted is None else counted)[:count])
    while len(seeds) < count:
        seeds.append(max(seeds) + 1)
    return tuple(seeds)

def applicable_targets(track: Track, kind: str) -> tuple[tuple[str, ...], dict[str, str]]:
    """The track's targets a method of ``kind`` can be held to, and why the others cannot."""
    model = new_model(track, track.seeds.dense[0])
    usable, skipped = [], {}
    for target in track.pruning.targets:
        try:
            resolve_target(target, kind, track.model.name, model, track.model.input_shape)
            usable.append(target.name)
        except BenchError as exc:
            skipped[target.name] = str(exc)
    if not usable:
        raise BenchError(f"track '{track.name}' has no target a {kind} method can be held to "
                         f"({'; '.join(skipped.values())})")
    return tuple(usable), skipped

def baseline_histories(layout: ResultsLayout, track: Track, method: str) -> list[StudyHistory]:
    """The tuning histories of the entries already on the leaderboard (every method but ``method``);
    any history of the track that cannot be reused is refused."""
    histories, problems = load_histories(layout, track.name)
    if problems:
        raise unreadable(problems[0].path, problems[0].reason)
    reusable = [check_reusable(history, path) for path, history in histories.items()]
    return [history for history in reusable if history.cell.method != method]

def _prefix(history: StudyHistory) -> str | None:
    plain = study_name(history.cell)
    return history.study.removesuffix("." + plain) if history.study != plain else None

def equal_tuning(layout: ResultsLayout, track: Track, method: str, trials: int) -> tuple[TuneOptions, str | None]:
    """Options that tune the new method exactly as the baselines were: trials, seeds, sampler, seed, pruner."""
    histories = baseline_histories(layout, track, method)
    if not histories:
        raise BenchError(f"--tune-trials: no entry on track '{track.name}' was tuned (no histories under "
                         f"{layout.tuning(track.name)}); submit untuned so every entry keeps its "
                         "schedule defaults")
    budgets = sorted({h.trials_requested for h in histories})
    if len(budgets) > 1:
        raise BenchError(f"the baselines on track '{track.name}' were tuned with unequal budgets {budgets}; "
                         "retune them equally before submitting a tuned method")
    if trials != budgets[0]:
        raise BenchError(f"--tune-trials {trials} differs from the {budgets[0]} trials every baseline on track "
                         f"'{track.name}' was tuned with; pass --tune-trials {budgets[0]}")
    protocols = Counter((tuple(h.seeds), h.sampler, h.seed, h.pruner, _prefix(h)) for h in histories)
    if len(protocols) > 1:
        raise BenchError(f"the baselines on track '{track.name}' were tuned under different protocols (seeds, sampler, "
                         "seed, pruner or study prefix); retune them alike before submitting a tuned method")
    (seeds, sampler, seed, pruner, prefix), = protocols
    return TuneOptions(trials=trials, seeds=seeds, sampler=sampler, seed=seed, pruner=pruner,
                       study_prefix=prefix), prefix
