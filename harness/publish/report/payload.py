"""The audit as JSON: what ``audit.json`` holds and ``bench audit --json`` prints.

Non-finite numbers (an undefined test, an infinite detectable difference) become ``null`` so
the file is strict JSON; key order is fixed and nothing depends on time, so the same audit
always serializes to the same bytes.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, fields
from typing import Any

from harness.audit.comparisons import Cell
from harness.audit.engine import AuditResult
from harness.audit.rules.fairness import cell_split
from harness.publish.leaderboard import Leaderboard
from harness.publish.report.cell_tables import reported_spread


def finite(value: Any) -> Any:
    """Recursively replace NaN and infinities by None; tuples become lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value) if isinstance(value, (set, frozenset)) else value
        return [finite(v) for v in items]
    return value


def _fields(flat: Any) -> dict[str, Any]:
    """A dataclass of plain values by field name: ``asdict`` without its deep copy of every value, which
    :func:`finite` makes unneeded (thousands of comparisons)."""
    return {field.name: getattr(flat, field.name) for field in fields(flat)}


def cell_payload(cell: Cell) -> dict[str, Any]:
    key = cell.key
    summary = cell.summary
    reported_std, reported_n = reported_spread(cell)
    return {
        "cell": cell.label, "track": key.track, "method": key.method, "twin": key.twin, "twin_trains": key.twin_trains,
        "target": key.target,
        "schedule": key.schedule, "budget_epochs": key.budget_epochs, "source": key.source,
        "n": cell.n, "n_failed": cell.n_failed,
        "test_acc_mean": summary.mean if summary else None, "test_acc_std": summary.std if summary else None,
        "ci": [summary.ci_low, summary.ci_high] if summary else None,
        "ci_method": summary.ci_method if summary else None,
        "val_acc_mean": cell.mean_of("val_acc"), "dense_test_acc": cell.mean_of("dense_test_acc"),
        "macs_before": cell.mean_of("macs_before"), "macs_after": cell.mean_of("macs_after"),
        "params_before": cell.mean_of("params_before"), "params_after": cell.mean_of("params_after"),
        "sparsity": cell.mean_of("sparsity"), "retrain_steps": cell.mean_of("retrain_steps"),
        "total_steps": cell.mean_of("total_steps"), "budget_split": list(cell_split(cell)),
        "seeds": [[dense_seed, seed] for _, dense_seed, seed in cell.pairing],
        "reported_std": reported_std, "reported_n": reported_n,
    }


def audit_payload(result: AuditResult, leaderboard: Leaderboard) -> dict[str, Any]:
    return finite({
        "harness_version": result.version,
        "seed": result.seed,
        "config": result.config.as_dict(),
        "tracks": list(result.tracks),
        "exit_status": result.exit_code,
        "counts": {severity: result.count(severity) for severity in ("fail", "warn", "info")},
        "cells": [cell_payload(c) for c in result.cells],
        "comparisons": [_fields(c) for c in result.comparisons],
        "findings": [f.as_dict() for f in result.findings],
        "claims": [c.as_dict() for c in result.claims],
        "leaderboard": leaderboard.as_dict(),
        "aggregates": {
            "methods": [{"method": m.method, "tasks": [list(t) for t in m.tasks], "iqm": asdict(m.iqm)}
                        for m in result.method_aggregates],
            "pairs": [{"a": p.a, "b": p.b, "tasks": [list(t) for t in p.tasks],
                       "probability_of_improvement": asdict(p.probability_of_improvement)}
                      for p in result.pair_aggregates],
        },
        "skipped_files": [{"path": str(p.path), "reason": p.reason} for p in result.problems],
    })


def dumps(payload: dict[str, Any]) -> str:
    return json.dumps(payload, indent=1, allow_nan=False) + "\n"
