"""Cells: the unit every comparison is made in -- one method (or its twin), target, schedule and budget."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable

from harness.core.identity import canonical_json
from harness.run.record import RunRecord


@dataclass(frozen=True, order=True)
class CellKey:
    track: str
    method: str
    twin: bool
    target: str
    schedule: str
    budget_epochs: int
    source: str = "reproduced"

    @property
    def entry(self) -> str:
        """The method column as people read it: ``l1-norm`` or ``random twin of l1-norm``."""
        return f"random twin of {self.method}" if self.twin else self.method


def cell_key(record: RunRecord) -> CellKey:
    return CellKey(record.track, record.method, record.twin, record.target, record.schedule,
                   record.budget_epochs, record.source)


def group_cells(records: Iterable[RunRecord]) -> dict[CellKey, list[RunRecord]]:
    """Records by cell, cells in a stable order, records within a cell ordered by seed."""
    cells: dict[CellKey, list[RunRecord]] = defaultdict(list)
    for record in records:
        cells[cell_key(record)].append(record)
    return {key: sorted(cells[key], key=lambda r: (r.seed, r.dense_seed)) for key in sorted(cells)}


SIGNATURE_FIELDS = ("target_spec", "schedule_params", "method_params", "harness_version", "engine", "precision")


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
        if key.source != "reproduced":
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
