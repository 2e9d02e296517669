"""The audit rules R1-R15 (design brief, "What the audit flags"), one pure function each.

Every rule reads the same :class:`AuditInput` -- cells, the tables' comparisons, the prepared
claims, the tuning histories -- and returns findings with a stable rule id, a severity, the cells
involved, the numbers behind it and a one-sentence fix. Thresholds come from :class:`AuditConfig`.

Severity follows one principle: a problem that makes a comparison of reproduced runs unfair, or
a headline claim unsupported, is ``fail`` (the exit status of ``bench audit`` gates on it); a
result that qualifies a comparison (few seeds, a method no better than random, a paper's number
that does not reproduce) is ``warn``; context a reader should know is ``info``. Findings about
*reported* cells are at most ``warn``: they qualify what a paper's number means, they never stop
the leaderboard.
"""

from __future__ import annotations

from typing import Callable

from harness.audit.config import AuditConfig
from harness.audit.findings import Finding
from harness.audit.rules.base import AuditInput
from harness.audit.rules.evidence import (
    r5_too_few_seeds,
    r6_not_significant,
    r7_multiple_comparisons,
    r8_no_loss_without_equivalence,
    r9_no_better_than_twin,
    r11_reported_gap,
    r12_one_source_of_randomness,
    r13_aggregation,
)
from harness.audit.rules.fairness import (
    r1_budget_mismatch,
    r2_schedule_mismatch,
    r3_compression_mismatch,
    r4_dense_mismatch,
    r10_unequal_tuning,
    r15_phase_split,
)
from harness.audit.rules.isolation import r14_below_required_isolation

RULE_FUNCTIONS: tuple[Callable[[AuditInput, AuditConfig], list[Finding]], ...] = (
    r1_budget_mismatch, r2_schedule_mismatch, r3_compression_mismatch, r4_dense_mismatch, r5_too_few_seeds,
    r6_not_significant, r7_multiple_comparisons, r8_no_loss_without_equivalence, r9_no_better_than_twin,
    r10_unequal_tuning, r11_reported_gap, r12_one_source_of_randomness, r13_aggregation,
    r14_below_required_isolation, r15_phase_split,
)

__all__ = ["AuditInput", "RULE_FUNCTIONS"]
