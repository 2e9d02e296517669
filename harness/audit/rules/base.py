"""What every rule reads (:class:`AuditInput`) and the helpers the rules share."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Hashable, Iterable, Sequence

from harness.audit.claims import ClaimTest
from harness.audit.comparisons import Comparison
from harness.audit.findings import Severity
from harness.audit.tuning import TuningStudy
from harness.run.cells import Cell


@dataclass(frozen=True)
class AuditInput:
    cells: tuple[Cell, ...]
    comparisons: tuple[Comparison, ...]
    claims: tuple[ClaimTest, ...] = ()
    studies: tuple[TuningStudy, ...] = ()


def capped(cell: Cell, severity: Severity) -> Severity:
    """Findings on reported cells qualify a paper's number: at most a warning."""
    return "warn" if severity == "fail" and not cell.reproduced else severity


def mode(values: Iterable[Hashable]) -> Any:
    """The most common value; ties go to the smallest by ``repr`` (which orders any value, such as
    protocol rows holding None), so the reference never depends on the order of the cells."""
    counts = Counter(values)
    top = max(counts.values())
    return min((v for v, c in counts.items() if c == top), key=repr)


def relative(value: float, reference: float) -> float:
    return abs(value - reference) / abs(reference) if reference else (0.0 if value == reference else math.inf)


def reference_pool(members: Sequence[tuple[Cell, Any]]) -> list[Any]:
    """Reproduced cells set the reference; reported ones only when nothing else is there."""
    reproduced = [value for cell, value in members if cell.reproduced]
    return reproduced or [value for _, value in members]


def claim_evidence(claim: ClaimTest, **numbers: Any) -> dict[str, Any]:
    return {"claim": claim.name, **numbers}
