"""The comparisons the audit makes, and their families, fixed in advance (:func:`table_pairs`).

Every comparison belongs to one method's
family, the method compared (``a``) -- against its random twin, and against the reference methods
declared before it in the same cell context (and, for the schedule the method does best with, against
each earlier reference's best schedule: the leaderboard's comparisons). References come in the order
the track's leaderboard protocol declares them; any other method comes after every reference and is
compared with the references only. So a newly submitted method's comparisons live in its own family,
and adding, removing or rerunning it changes no other method's p-values or verdicts. Each family is
Holm-corrected on its own. Two schedules that retrain identically at a budget are one protocol
(:func:`same_protocol`), never compared as different schedules.
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from typing import Iterable, Sequence

from harness.audit.comparisons import (
    Comparison,
    adjust,
    best_by_validation,
    compare_pairs,
    schedule_order,
)
from harness.audit.config import AuditConfig
from harness.core.errors import BenchError
from harness.run.cells import Cell
from harness.track.definition import load_track
from harness.track.schedules import same_rates


@lru_cache(maxsize=None)
def declared_references(track: str) -> tuple[str, ...] | None:
    """The reference methods the track's leaderboard protocol declares, in its order (a track without a
    protocol file declares its grid's methods); None when no track of that name is defined here."""
    try:
        definition = load_track(track)
    except (BenchError, OSError, ValueError):
        return None
    try:
        # the leaderboard protocol, where this checkout has it
        from harness.track.leaderboard import load_protocol
    except ImportError:
        return tuple(definition.pruning.methods)
    try:
        return load_protocol(definition).references
    except (BenchError, OSError, ValueError):
        return tuple(definition.pruning.methods)


@lru_cache(maxsize=None)
def _recipe(track: str):
    try:
        return load_track(track).recipe
    except (BenchError, OSError, ValueError):
        return None


def same_protocol(a: Cell, b: Cell) -> bool:
    """Whether two cells of one track, target and budget retrain identically: the same schedule, or two
    whose every step has the same rate and momentum (``ft`` and ``lrw`` within the recipe's last stage,
    each with its runs' own hyperparameters) -- one protocol under two names, never a second test."""
    if a.key.schedule == b.key.schedule:
        return True
    recipe = _recipe(a.key.track)
    first, second = a.records[0], b.records[0]
    if recipe is None or not first.steps_per_epoch or first.steps_per_epoch != second.steps_per_epoch \
            or "none" in (a.key.schedule, b.key.schedule):
        return False
    return same_rates(recipe, a.key.schedule, b.key.schedule, a.key.budget_epochs, first.steps_per_epoch,
                      (dict(first.schedule_params) or None, dict(second.schedule_params) or None))


def method_order(track: str, methods: Iterable[str], config: AuditConfig) -> tuple[list[str], set[str]]:
    """``(order, references)``: the reference methods in their declared order (``config.references``,
    else the track's leaderboard protocol, else -- no protocol found -- every method, by name), then
    every other method by name. A comparison belongs to the family of the later of its two methods."""
    methods = set(methods)
    declared = config.references if config.references is not None else declared_references(track)
    if declared is None:
        declared = tuple(sorted(methods))
    references = [m for m in declared if m in methods]
    return references + sorted(methods - set(references)), set(references)


def _best_cells(members: Sequence[Cell]) -> dict[str, Cell]:
    by_method: dict[str, list[Cell]] = defaultdict(list)
    for cell in members:
        by_method[cell.key.method].append(cell)
    best = {method: best_by_validation(found) for method, found in by_method.items()}
    return {method: cell for method, cell in best.items() if cell is not None}


def table_pairs(cells: Sequence[Cell], config: AuditConfig = AuditConfig()) -> list[tuple[Cell, Cell, str]]:
    """Every family's pre-declared comparisons, each method (``a``) against: its random twin (``twin``); for a
    method that trains, its trained random twin when it was run (``trained-twin``: the same training, units drawn
    at random, so the criterion alone differs);
    each reference method before it in :func:`method_order`, in the same context of one family of
    pruning (structured or unstructured) (``methods``); and, in the schedule it does best with (on
    validation), each earlier reference's best schedule at that target and budget, when the two differ
    and do not train identically (``leaderboard``: the leaderboard's ranks come from these and the
    ``methods`` comparisons; a best schedule that is the method's own under another name is already
    the ``methods`` comparison, so it is not a second test)."""
    usable = [c for c in cells if c.reproduced and c.n]
    by_track: dict[str, set[str]] = defaultdict(set)
    for cell in usable:
        if not cell.key.twin:
            by_track[cell.key.track].add(cell.key.method)
    orders = {track: method_order(track, methods, config) for track, methods in by_track.items()}
    contexts: dict[tuple, list[Cell]] = defaultdict(list)
    tables: dict[tuple, list[Cell]] = defaultdict(list)
    for cell in usable:
        contexts[(*cell.key.context, cell.family)].append(cell)
        if not cell.key.twin:
            tables[(cell.key.track, cell.key.target, cell.key.budget_epochs, cell.family)].append(cell)
    best_of = {key: _best_cells(members) for key, members in tables.items()}
    pairs = []
    for key in sorted(contexts, key=lambda k: (k[0], k[1], k[3], schedule_order(k[2]), k[4])):
        members = contexts[key]
        order, references = orders[key[0]]
        rank = {m: i for i, m in enumerate(order)}
        methods = sorted((c for c in members if not c.key.twin), key=lambda c: rank[c.key.method])
        twins = {c.key.method: c for c in members if c.key.plain_twin}
        trained_twins = {c.key.method: c for c in members if c.key.twin_trains}
        best = best_of.get((key[0], key[1], key[3], key[4]), {})
        for index, method in enumerate(methods):
            if method.key.method in twins:
                pairs.append((method, twins[method.key.method], "twin"))
            if method.key.method in trained_twins:
                pairs.append((method, trained_twins[method.key.method], "trained-twin"))
            earlier = [other for other in methods[:index] if other.key.method in references]
            pairs.extend((method, other, "methods") for other in earlier)
            if best.get(method.key.method) is method:
                for other in sorted(best.values(), key=lambda c: rank[c.key.method]):
                    if (rank[other.key.method] < rank[method.key.method] and other.key.method in references
                            and not same_protocol(other, method)):
                        pairs.append((method, other, "leaderboard"))
    return pairs


def table_comparisons(cells: Sequence[Cell], config: AuditConfig) -> list[Comparison]:
    """The pre-declared comparisons, Holm-corrected within each method's family (one family per cell
    of a method: the comparisons of :func:`table_pairs` whose ``a`` it is)."""
    raw = compare_pairs(table_pairs(cells, config), config)
    by_family: dict[str, list[Comparison]] = defaultdict(list)
    for comparison in raw:
        by_family[comparison.family].append(comparison)
    corrected = {id(c): d for members in by_family.values()
                 for c, d in zip(members, adjust(members, "holm", config.alpha))}
    return [corrected[id(c)] for c in raw]
