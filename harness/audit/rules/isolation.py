"""R14: leaderboard entries are made at the sandbox level the leaderboard requires (issue 14)."""

from __future__ import annotations

from harness.audit.config import AuditConfig
from harness.audit.findings import Finding
from harness.audit.rules.base import AuditInput
from harness.methods.sandbox import LEVELS, REQUIRED_LEVEL, greater_or_equal


def r14_below_required_isolation(audit: AuditInput, config: AuditConfig) -> list[Finding]:
    """A reproduced entry whose plugin plans were computed below the required sandbox level (or with
    ``--unsafe-isolation``) fails: its method could have read the test split or edited other records.
    Built-in methods (``in-process``) and records made before levels were recorded (no level) pass."""
    findings = []
    for cell in audit.cells:
        if not cell.reproduced:
            continue
        below = sorted({r.isolation or "" for r in cell.records if r.unsafe_isolation or (
            r.isolation in LEVELS and not greater_or_equal(r.isolation, REQUIRED_LEVEL))})
        if below:
            findings.append(Finding(
                "R14", "fail",
                f"{cell.label} was computed at sandbox level {', '.join(below)}, below the required {REQUIRED_LEVEL}",
                (cell.label,),
                {"levels": below, "required": REQUIRED_LEVEL},
                f"Rerun the entry where the sandbox reaches {REQUIRED_LEVEL} (install bubblewrap), without "
                "--unsafe-isolation.",
            ))
    return findings
