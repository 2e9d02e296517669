"""Cells: the unit every comparison is made in -- one method (or its twin), target, schedule and budget."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable

from harness.records import RunRecord


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
