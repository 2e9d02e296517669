"""`bench perf` runs both paths on the same images; `bench perf-equivalence` applies the audit's tests."""

import json

import pytest
import torch
from conftest import TRACKS
from PIL import Image
from torchvision import transforms
from typer.testing import CliRunner

from harness.cli import app
from harness.core.errors import BenchError
from harness.core.layout import ResultsLayout
from harness.protocols.equivalence import (
    ENGINE_CHECK_LEVEL,
    cifar_shaped_track,
    compare_engines,
)
from harness.protocols.perf import (
    PerfSettings,
    measure,
    perf_splits,
    reference_dataset,
)
from harness.stats import tost, welch_test
from harness.track.definition import load_track
from harness.train.engines import EngineSettings

runner = CliRunner()


def test_reference_pipeline_reads_the_same_pixels_the_harness_trains_on():
    splits = perf_splits(PerfSettings.tiny(), load_track("cifar10-resnet56", TRACKS).recipe, "cpu")
    dataset = reference_dataset(splits)
    to_tensor_and_normalize = transforms.Compose(dataset.transform.transforms[-2:])  # no random crop or flip
    unaugmented = torch.stack([to_tensor_and_normalize(Image.fromarray(dataset.images[i])) for i in range(8)])
    torch.testing.assert_close(unaugmented, splits.train.x[:8], rtol=0, atol=1e-5)
    image, label = dataset[0]
    assert image.shape == (3, 32, 32) and label == splits.train.y[0].item()


def test_tiny_measurement_reports_both_paths_and_the_ratios_between_them():
    report = measure(PerfSettings.tiny(in_flight=2))
    assert report.synthetic and report.device == "cpu" and (report.engine, report.precision) == ("graph", "fp32")
    (model,) = report.models
    assert model.model == "cifar-resnet20"
    for timing in (model.reference, model.harness):
        assert timing.steps == 3 and timing.batch_size == 16
        assert timing.images_per_second == pytest.approx(3 * 16 / timing.seconds)
        assert timing.seconds_per_epoch == pytest.approx(45_000 / timing.images_per_second)
    assert model.harness_grid.runs_in_flight == 2 and model.reference_grid.runs_in_flight == 1
    assert model.reference_grid.run_epochs_per_hour == pytest.approx(3600 / model.reference.seconds_per_epoch)
    assert model.single_run_ratio == pytest.approx(model.harness.images_per_second / model.reference.images_per_second)
    assert model.grid_ratio == pytest.approx(model.harness_grid.run_epochs_per_hour /
                                             model.reference_grid.run_epochs_per_hour)


def test_bench_perf_tiny_prints_json():
    result = runner.invoke(app, ["perf", "--tiny", "--engine", "eager", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["synthetic"] is True and payload["engine"] == "eager" and payload["batch_size"] == 16
    assert set(payload["models"][0]) >= {"reference", "harness", "harness_grid", "single_run_ratio", "grid_ratio"}


@pytest.mark.parametrize("arguments, message", [
    (["perf", "--tiny", "--dataset", "digits"], "use synthetic-cifar or cifar10"),
    (["perf", "--tiny", "--engine", "eager", "--bf16"], "--engine graph"),
    (["perf", "--tiny", "--device", "tpu"], "unknown device"),
    (["perf-equivalence", "--engine", "eager"], "choose --engine graph, compile or fused"),
    (["perf-equivalence", "--seeds", "0"], "at least two seeds"),
    (["perf-equivalence", "--model", "cifar-resnet20"], "--model only applies with --cifar-shaped"),
    (["perf-equivalence", "--cifar-shaped"], "does not take CIFAR-shaped input"),
])
def test_bad_options_are_one_line_errors(arguments, message):
    result = runner.invoke(app, arguments)
    assert result.exit_code == 2 and message in result.output


def test_graph_engine_is_equivalent_to_the_plain_loop_on_digits(digits_track, trained_results):
    result = compare_engines(digits_track, ResultsLayout(trained_results), EngineSettings("graph"), seeds=[0, 5, 10, 15],
                             schedule="clr", budget=3)
    assert result.seeds == (0, 5, 10, 15) and result.synthetic is False
    assert result.tost == tost(result.fast, result.plain, 0.005, ENGINE_CHECK_LEVEL, paired=True)
    assert result.welch == welch_test(result.fast, result.plain)
    assert result.equivalent and result.welch.pvalue > 0.05
    assert max(abs(a - b) for a, b in zip(result.fast, result.plain)) <= 2 / 359


def test_cifar_shaped_track_keeps_the_protocol_and_says_what_changed():
    base = load_track("cifar10-resnet56", TRACKS)
    track = cifar_shaped_track(base, "cifar-resnet20", train_size=256, eval_size=64, dense_epochs=4)
    assert track.name == "cifar10-resnet56-synthetic-cifar-resnet20-4ep"
    assert track.data.dataset == "synthetic-cifar" and track.model.name == "cifar-resnet20"
    assert track.recipe.milestones == (2, 3) and track.recipe.epochs == 4
    assert track.recipe.model_dump(exclude={"epochs", "milestones"}) == base.recipe.model_dump(
        exclude={"epochs", "milestones"})
    with pytest.raises(BenchError, match="does not take CIFAR-shaped input"):
        cifar_shaped_track(load_track("digits-cnn", TRACKS))


@pytest.mark.slow
def test_graph_engine_is_equivalent_to_the_plain_loop_on_cifar_shaped_data(tmp_path):
    track = cifar_shaped_track(load_track("cifar10-resnet56", TRACKS), "cifar-resnet20", train_size=128,
                               eval_size=64, dense_epochs=2)
    result = compare_engines(track, ResultsLayout(tmp_path), EngineSettings("graph"), seeds=[0, 1, 2], schedule="ft", budget=1)
    assert result.synthetic and len(result.plain) == len(result.fast) == 3
    assert result.equivalent and result.welch.pvalue > 0.05
