"""A submission's outcome as people read it: per cell, the new method against its random twin and the
baselines, the audit's findings that involve it, and the runs that failed."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from harness.audit.engine import AuditResult
from harness.audit.findings import Finding, rule_ids, touching
from harness.publish.leaderboard import MIRRORED
from harness.run.record import (
    RunRecord,
)


@dataclass(frozen=True)
class VerdictRow:
    """The new method in one cell: its accuracy, its random twin, and the existing entries it beats,
    ties with or loses to (Benjamini-Hochberg corrected, as in the audit's tables)."""

    target: str
    schedule: str
    budget_epochs: int
    n: int
    failed: int
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    twin_difference: float | None
    twin_verdict: str | None
    better_than: tuple[str, ...]
    tied_with: tuple[str, ...]
    worse_than: tuple[str, ...]
    fails: tuple[str, ...]

@dataclass(frozen=True)
class TrackSubmission:
    track: str
    targets: tuple[str, ...]
    skipped_targets: dict[str, str]
    seeds: tuple[int, ...]
    tune_trials: int | None
    planned: int
    ran: int
    failures: tuple[str, ...]
    rows: tuple[VerdictRow, ...]
    findings: tuple[Finding, ...]
    report: Path

    @property
    def passed(self) -> bool:
        return not self.failures and not any(f.severity == "fail" for f in self.findings)

    def as_dict(self) -> dict[str, Any]:
        return {"track": self.track, "passed": self.passed, "targets": list(self.targets),
                "skipped_targets": self.skipped_targets, "seeds": list(self.seeds), "tune_trials": self.tune_trials,
                "planned": self.planned, "ran": self.ran, "failures": list(self.failures),
                "rows": [asdict(row) for row in self.rows], "findings": [f.as_dict() for f in self.findings],
                "report": str(self.report)}

@dataclass(frozen=True)
class Submission:
    method: str
    kind: str
    source: Path
    method_digest: str
    tracks: tuple[TrackSubmission, ...]

    @property
    def passed(self) -> bool:
        return all(t.passed for t in self.tracks)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "kind": self.kind, "source": str(self.source),
                "method_digest": self.method_digest, "passed": self.passed,
                "tracks": [t.as_dict() for t in self.tracks]}

def failures(records: Sequence[RunRecord]) -> tuple[str, ...]:
    lines = []
    for record in records:
        if record.status != "ok":
            reason = (record.error or "non-finite training loss").strip().splitlines()[-1]
            lines.append(f"{record.status}: {record.config().label}: {reason}")
    return tuple(lines)

def verdict_rows(result: AuditResult, method: str) -> tuple[VerdictRow, ...]:
    """One row per cell of the new method, in the audit's display order."""
    cells = {c.label: c for c in result.cells}
    rows = []
    for cell in result.cells:
        key = cell.key
        if key.method != method or key.twin or not cell.reproduced:
            continue
        twin_label = next((c.label for c in result.cells if c.reproduced and c.key == key.as_twin()), None)
        twin = next((c for c in result.comparisons if c.kind == "twin" and c.a == cell.label), None)
        against: dict[str, list[str]] = {"better": [], "tie": [], "equivalent": [], "worse": []}
        for c in result.comparisons:
            if c.kind == "methods" and cell.label in (c.a, c.b):
                other = cells[c.b if c.a == cell.label else c.a].key.method
                against[c.verdict if c.a == cell.label else MIRRORED[c.verdict]].append(other)
        fails = rule_ids(touching(result.findings, {cell.label, twin_label}))
        summary = cell.summary
        rows.append(VerdictRow(
            target=key.target, schedule=key.schedule, budget_epochs=key.budget_epochs, n=cell.n,
            failed=cell.n_failed, mean=summary.mean if summary else None,
            ci_low=summary.ci_low if summary else None, ci_high=summary.ci_high if summary else None,
            twin_difference=twin.difference if twin else None, twin_verdict=twin.verdict if twin else None,
            better_than=tuple(sorted(against["better"])),
            tied_with=tuple(sorted(against["tie"] + against["equivalent"])),
            worse_than=tuple(sorted(against["worse"])), fails=tuple(fails),
        ))
    return tuple(rows)

def method_findings(result: AuditResult, method: str) -> tuple[Finding, ...]:
    """The audit's fail and warn findings that involve the new method or its twin."""
    labels = {c.label for c in result.cells if c.key.method == method}
    return tuple(touching(result.findings, labels, ("fail", "warn")))
