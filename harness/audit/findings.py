"""What the audit says: findings, each tied to one rule, the cells involved, numbers and a fix."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Collection, Iterable, Literal, Mapping

Severity = Literal["fail", "warn", "info"]
SEVERITIES: tuple[Severity, ...] = ("fail", "warn", "info")


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    checks: str


RULES: dict[str, Rule] = {rule.id: rule for rule in (
    Rule("R1", "budget mismatch", "compared entries train for the same number of steps in total, before and after pruning (within the tolerance)"),
    Rule("R2", "schedule mismatch", "compared entries share schedule type, peak lr, warm-up, optimizer, weight decay and augmentation"),
    Rule("R3", "compression mismatch", "compared entries reach the same MACs and sparsity (within the tolerances)"),
    Rule("R4", "dense-baseline mismatch", "compared entries start from the same dense checkpoints"),
    Rule("R5", "too few seeds", "every cell has enough successful seeds to test"),
    Rule("R6", "difference not significant", "a claimed difference is significant (Welch or paired t, permutation test as a check)"),
    Rule("R7", "multiple comparisons", "significance survives Holm (claims, and each method's family in the tables)"),
    Rule("R8", "no-loss claim without equivalence", "a 'no accuracy loss' claim is shown by TOST with a stated margin"),
    Rule("R9", "no better than its random twin", "a method beats random pruning of the same layer sizes under the same schedule and budget"),
    Rule("R10", "unequal tuning budgets", "compared entries were tuned with equal trial counts, on the validation split"),
    Rule("R11", "reported-vs-reproduced gap", "a number quoted from a paper matches the reproduced runs"),
    Rule("R12", "one source of randomness", "seeds vary both the dense checkpoint and the run, and change the outcome"),
    Rule("R13", "aggregation across tracks", "cross-track statements rest on IQM and probability of improvement with stratified-bootstrap intervals"),
    Rule("R14", "below the required sandbox level", "every reproduced entry's plugin plans ran at the sandbox level the leaderboard requires, without --unsafe-isolation"),
    Rule("R15", "phase split", "compared entries split their total budget alike: the same epochs before pruning and the same rounds of retraining"),
)}


@dataclass(frozen=True)
class Finding:
    """One flagged problem. ``cells`` are cell labels; ``evidence`` holds the numbers (and, for a
    claim, its name under ``"claim"``); ``fix`` is one sentence saying what to do."""

    rule: str
    severity: Severity
    message: str
    cells: tuple[str, ...]
    evidence: Mapping[str, Any] = field(default_factory=dict)
    fix: str = ""

    @property
    def claim(self) -> str | None:
        return self.evidence.get("claim")

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "severity": self.severity, "message": self.message, "cells": list(self.cells),
                "evidence": dict(self.evidence), "fix": self.fix}


def sort_key(finding: Finding) -> tuple:
    return (SEVERITIES.index(finding.severity), int(finding.rule[1:]), finding.cells, finding.message)


def touching(findings: Iterable[Finding], cells: Collection[str],
             severities: Collection[Severity] = ("fail",)) -> list[Finding]:
    """The findings of these severities that name one of ``cells`` (cell labels)."""
    wanted = set(cells)
    return [f for f in findings if f.severity in severities and not wanted.isdisjoint(f.cells)]


def rule_ids(findings: Iterable[Finding]) -> tuple[str, ...]:
    """The distinct rules of these findings, in rule order (R1, R2, ..., R15)."""
    return tuple(sorted({f.rule for f in findings}, key=lambda rule: int(rule[1:])))
