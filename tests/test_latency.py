"""Latency: what is measured and recorded (never how fast: timings are not asserted)."""

import json

import pytest
import torch
from typer.testing import CliRunner

from harness.cli import app
from harness.core.errors import BenchError
from harness.core.layout import ResultsLayout
from harness.grid.selection import expand, select
from harness.models import create_model
from harness.prune.latency import (
    LatencyComparison,
    LatencyMeasurement,
    LatencySettings,
    compare_latency,
    measure_latency,
)
from harness.run.execution import execute
from harness.run.pipeline import Workspace


def test_median_and_interquartile_range_follow_numpys_definitions():
    measured = LatencyMeasurement("cpu", 1, 0, (1.0, 2.0, 3.0, 4.0, 10.0), 1)
    assert measured.median_ms == 3.0
    assert measured.iqr_ms == 2.0
    comparison = LatencyComparison(measured, LatencyMeasurement("cpu", 1, 0, (1.0, 1.5, 2.0), 1))
    assert comparison.speedup == 2.0
    record = comparison.to_record()
    assert (record.dense_median_ms, record.pruned_median_ms, record.speedup, record.repeats) == (3.0, 1.5, 2.0, 5)


def test_a_measurement_times_the_requested_repeats_and_leaves_the_model_alone():
    model = create_model("digits-cnn", 10).train()
    settings = LatencySettings(batch_size=4, warmup=1, repeats=3)
    measured = measure_latency(model, (1, 8, 8), "cpu", settings)
    assert len(measured.times_ms) == 3 and all(t > 0 for t in measured.times_ms)
    assert (measured.device, measured.batch_size, measured.warmup) == ("cpu", 4, 1)
    assert model.training
    comparison = compare_latency(measured, create_model("digits-cnn", 10), (1, 8, 8), "cpu", settings)
    assert comparison.dense is measured and len(comparison.pruned.times_ms) == 3


def test_settings_are_checked():
    with pytest.raises(BenchError, match="repeats >= 1"):
        LatencySettings(repeats=0)


def test_bench_latency_reports_medians_spread_and_macs_side_by_side(digits_results):
    result = CliRunner().invoke(app, ["latency", "--method", "l1-norm", "--target", "uniform-50", "--repeats", "2",
                                      "--warmup", "0", "--batch-size", "2", "--json", "--results", str(digits_results)])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert (payload["device"], payload["batch_size"], payload["repeats"]) == ("cpu", 2, 2)
    assert payload["pruned"]["macs"] < payload["dense"]["macs"]
    assert payload["speedup"] == pytest.approx(payload["dense"]["median_ms"] / payload["pruned"]["median_ms"])
    plain = CliRunner().invoke(app, ["latency"])
    assert plain.exit_code == 2 and "give --plan NAME or --method M --target X" in plain.output


def test_a_run_can_record_dense_and_pruned_latency(digits_track, trained_results):
    workspace = Workspace(digits_track, ResultsLayout(trained_results), latency=LatencySettings(warmup=0, repeats=2))
    config = expand(digits_track, select(digits_track, methods=["l1-norm"], targets=["uniform-50"],
                                         schedules=["none"], seeds=[0], twins=False))[0]
    record = execute(workspace, config)
    assert record.latency is not None
    assert (record.latency.device, record.latency.batch_size, record.latency.repeats) == ("cpu", 1, 2)
    assert record.latency.speedup == pytest.approx(record.latency.dense_median_ms / record.latency.pruned_median_ms)
    assert torch.isfinite(torch.tensor(record.latency.pruned_iqr_ms))
