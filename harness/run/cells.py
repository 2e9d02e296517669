"""Cells: the unit every comparison is made in -- one method (or its twin), target, schedule and budget,
from one source. :class:`CellKey` names a cell, :class:`Cell` holds its runs; every other module derives
keys from these (``without_source``, ``without_twin``, ``as_twin``, ``context``) instead of building
tuples of cell fields by hand."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Iterable, Mapping

from harness.core.identity import canonical_json
from harness.run.record import REPRODUCED, RunRecord, twin_suffix
from harness.stats import Summary

ANY_SOURCE = ""
"""The source of a key made by :meth:`CellKey.without_source`: the configuration, whoever ran it."""
CELL_FIELDS = ("track", "method", "twin", "target", "schedule", "budget_epochs")
"""A cell's configuration as files spell it (tuning histories, study protocols): every key but the source."""


@dataclass(frozen=True, order=True)
class CellKey:
    track: str
    method: str
    twin: bool
    target: str
    schedule: str
    budget_epochs: int
    source: str = REPRODUCED
    twin_trains: bool = False
    """A trained twin: the method's own training, units drawn at random (``RunConfig.twin_trains``)."""

    @property
    def entry(self) -> str:
        """The method column as people read it: ``l1-norm``, ``random twin of l1-norm`` or ``trained random twin
        of network-slimming``."""
        if self.twin:
            return f"{'trained ' if self.twin_trains else ''}random twin of {self.method}"
        return self.method

    @property
    def label(self) -> str:
        """``track/method[+twin|+trained-twin]/target/schedule@budget``, with ``[source]`` for cells not reproduced
        here."""
        entry = f"{self.method}{twin_suffix(self.twin, self.twin_trains)}"
        text = f"{self.track}/{entry}/{self.target}/{self.schedule}@{self.budget_epochs}"
        return text if self.source in (REPRODUCED, ANY_SOURCE) else f"{text} [{self.source}]"

    @property
    def reproduced(self) -> bool:
        return self.source == REPRODUCED

    @property
    def context(self) -> tuple[str, str, str, int]:
        """Where entries are compared with each other: same track, target, schedule and budget."""
        return self.track, self.target, self.schedule, self.budget_epochs

    def without_source(self) -> "CellKey":
        """The configuration whatever its source: a reported cell and its reproduced match share it."""
        return replace(self, source=ANY_SOURCE)

    def without_twin(self) -> "CellKey":
        """The method's own cell: a method and its random twins share it."""
        return replace(self, twin=False, twin_trains=False)

    def as_twin(self) -> "CellKey":
        """The random twin's cell of the same method, context and source."""
        return replace(self, twin=True, twin_trains=False)

    def as_trained_twin(self) -> "CellKey":
        """The trained random twin's cell of the same method, context and source."""
        return replace(self, twin=True, twin_trains=True)

    @property
    def plain_twin(self) -> bool:
        """The random twin that prunes the dense model once (not the trained one)."""
        return self.twin and not self.twin_trains

    def config(self) -> dict[str, Any]:
        """The :data:`CELL_FIELDS` as a JSON object."""
        return {name: getattr(self, name) for name in CELL_FIELDS}

    @classmethod
    def of_config(cls, raw: Mapping[str, Any]) -> "CellKey":
        """The cell a JSON object's :data:`CELL_FIELDS` name, typed (KeyError/ValueError when malformed)."""
        return cls(str(raw["track"]), str(raw["method"]), bool(raw["twin"]), str(raw["target"]),
                   str(raw["schedule"]), int(raw["budget_epochs"]))


def context(key: CellKey) -> tuple[str, str, str, int]:
    """``key.context``, as a function for sorting and grouping."""
    return key.context


def cell_key(record: RunRecord) -> CellKey:
    return CellKey(record.track, record.method, record.twin, record.target, record.schedule,
                   record.budget_epochs, record.source, record.twin_trains)


@dataclass(frozen=True)
class Cell:
    """The runs of one cell; ``values`` are the test accuracies of its successful runs, ordered by
    ``pairing`` (dense checkpoint, dense seed, seed), so cells with equal pairings align run by run;
    ``resolution`` floors every spread computed from them."""

    key: CellKey
    records: tuple[RunRecord, ...]
    ok: tuple[RunRecord, ...]
    values: tuple[float, ...]
    pairing: tuple[tuple[str, int, int], ...]
    summary: Summary | None
    resolution: float = 0.0
    """The accuracy of one test image (1/N): the smallest spread its runs can show."""

    @cached_property
    def label(self) -> str:
        return self.key.label

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def n_failed(self) -> int:
        return len(self.records) - len(self.ok)

    @property
    def reproduced(self) -> bool:
        return self.key.reproduced

    @property
    def mean(self) -> float:
        return self.summary.mean if self.summary else math.nan

    def mean_of(self, field: str) -> float | None:
        """Mean of a numeric record field over successful runs (all runs when none succeeded);
        None when no run has it. Tolerates fields a record type does not define yet."""
        pool = self.ok or self.records
        found = [float(v) for v in (getattr(r, field, None) for r in pool) if v is not None]
        return sum(found) / len(found) if found else None

    def dense_values(self) -> tuple[float, ...] | None:
        """Each successful run's dense accuracy (aligned with ``values``), None if any is missing."""
        dense = [r.dense_test_acc for r in self.ok]
        return tuple(float(v) for v in dense if v is not None) if all(v is not None for v in dense) else None

    @property
    def family(self) -> str:
        """``unstructured`` for masked runs (their records state a sparsity), else ``structured``:
        masks keep every MAC, so the two only compare at their own operating points."""
        return "unstructured" if self.mean_of("sparsity") is not None else "structured"


def family(cell: Cell) -> str:
    """``cell.family``, as a function for grouping."""
    return cell.family


def group_cells(records: Iterable[RunRecord]) -> dict[CellKey, list[RunRecord]]:
    """Records by cell, cells in a stable order, records within a cell ordered by seed."""
    cells: dict[CellKey, list[RunRecord]] = defaultdict(list)
    for record in records:
        cells[cell_key(record)].append(record)
    return {key: sorted(cells[key], key=lambda r: (r.seed, r.dense_seed)) for key in sorted(cells)}


SIGNATURE_FIELDS = ("target_spec", "schedule_params", "method_params", "harness_version", "engine", "precision",
                    "data_protocol")


def _signature(record: RunRecord) -> tuple[str, ...]:
    return tuple(canonical_json(getattr(record, name)) for name in SIGNATURE_FIELDS)


def one_configuration_per_cell(records: Iterable[RunRecord]) -> tuple[list[RunRecord], list[tuple[RunRecord, str]]]:
    """Keep, in every reproduced cell, only the runs of one configuration; the others are returned with
    the reason. Seeds of a cell must differ only in their seed: pooling runs of another harness version,
    target definition, tuned setting or engine would count the same seed twice and inflate significance.
    The configuration with the most runs is kept (ties: the newest harness version)."""
    kept: list[RunRecord] = []
    dropped: list[tuple[RunRecord, str]] = []
    for key, cell in group_cells(records).items():
        if not key.reproduced:
            kept += cell
            continue
        variants: dict[tuple[str, ...], list[RunRecord]] = defaultdict(list)
        for record in cell:
            variants[_signature(record)].append(record)
        chosen = max(variants, key=lambda s: (len(variants[s]), variants[s][0].harness_version, s))
        kept += variants[chosen]
        reference = variants[chosen][0]
        for signature, others in variants.items():
            if signature == chosen:
                continue
            fields = ", ".join(name for name, a, b in zip(SIGNATURE_FIELDS, signature, chosen) if a != b)
            for record in others:
                dropped.append((record, f"not pooled into its cell: it differs from the cell's other "
                                        f"{len(variants[chosen])} runs ({reference.config().label.rsplit('/', 1)[0]}) "
                                        f"in {fields}; rerun it under one configuration"))
    return kept, dropped
