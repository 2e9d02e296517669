"""Benchmark: auditing 10,000 schema-valid records, report generation included.

Measured, never asserted (timings depend on the machine). Run it with
``python -m pytest tests/bench_audit.py --benchmark-enable``; the design's target is under 10 s on
2 cores for loading and validating the records from disk, the audit (cells, BH-corrected
comparisons, all rules), the leaderboard and every report file with its plots.

``test_audit_of_10000_records_with_report`` computes the audit every round (the audit memo is off);
``test_audit_of_10000_records_warm`` is the same audit as `bench audit` runs it a second time: the
record index (files whose bytes were verified are only parsed), the audit memo (the audit and its
``audit.json`` text) and the plot cache are warm. The whole-process figures, start-up included and
against the code before the caches, come from ``scripts/bench_audit_speed.py``.
"""

from __future__ import annotations

import json

import pytest
from audit_fixtures import synthetic_grid

from harness.audit import audit_results, memo
from harness.core.layout import ResultsLayout
from harness.publish.report import write_report
from harness.run.record import record_path, seal

N_RECORDS = 10_000
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("results")
    for record in synthetic_grid(N_RECORDS):
        path = record_path(ResultsLayout(folder), record)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(seal(record).model_dump(mode="json"), indent=1, sort_keys=True) + "\n")
    return folder


def test_audit_of_10000_records_with_report(benchmark, results, tmp_path, monkeypatch):
    monkeypatch.setattr(memo, "machine_key", lambda: None)

    def audit_and_report():
        result = audit_results(ResultsLayout(results))
        write_report(result, tmp_path / "report")
        return result

    result = benchmark.pedantic(audit_and_report, rounds=3, iterations=1, warmup_rounds=0)
    assert sum(len(c.records) for c in result.cells) == N_RECORDS
    assert result.problems == ()
    assert (tmp_path / "report" / "REPORT.md").exists()


def test_audit_of_10000_records_warm(benchmark, results, tmp_path):
    layout = ResultsLayout(results)

    def audit_and_report():
        result = audit_results(layout)
        write_report(result, tmp_path / "report", plot_cache=layout.plot_cache(),
                     payload_memo=layout.payload_memo())
        return result

    result = benchmark.pedantic(audit_and_report, rounds=3, iterations=1, warmup_rounds=1)
    assert sum(len(c.records) for c in result.cells) == N_RECORDS
    assert result.problems == ()
    assert layout.record_index("bench-a").exists() and any(layout.plot_cache().iterdir())
    assert layout.audit_memo().exists() and layout.payload_memo().exists()
