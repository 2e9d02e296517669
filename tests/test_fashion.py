"""Fashion-MNIST: the idx loader against torchvision's reading of the same files, its checks and errors,
the fashion-resnet20 model and track (every shipped structured method plans on it), and one real-data
smoke run through the library when the Debian package is installed."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch
from conftest import TRACKS
from torchvision.datasets import FashionMNIST

from harness.core.errors import BenchError
from harness.core.layout import ResultsLayout
from harness.data import DataSpec, fashion, load_splits, training_examples
from harness.grid.selection import expand, select
from harness.methods import get_method
from harness.models import create_model, prunable_layers
from harness.run.execution import execute
from harness.run.pipeline import Workspace, data_spec, prune
from harness.track.definition import load_track

SMALL = {"train": 120, "test": 30}
STRUCTURED = ("l1-norm", "l2-norm", "random", "fpgm", "taylor", "bn-scale", "hrank")


def _idx(magic: int, array: np.ndarray) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(size.to_bytes(4, "big") for size in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_fashion(folder, rng, counts=SMALL, gzipped=False):
    """Idx files as the official archive holds them (optionally gzipped); returns {split: (images, labels)}."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for split, (images_name, labels_name) in fashion.FILES.items():
        images = rng.integers(0, 256, size=(counts[split], 28, 28), dtype=np.uint8)
        labels = np.arange(counts[split]) % 10
        rng.shuffle(labels)
        for name, data in ((images_name, _idx(0x803, images)), (labels_name, _idx(0x801, labels))):
            if gzipped:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
        written[split] = (images, labels)
    return written


@pytest.fixture
def small_counts(monkeypatch, tmp_path):
    """Small files pass the size check, and the Debian folder is out of sight."""
    monkeypatch.setattr(fashion, "EXPECTED_COUNTS", dict(SMALL))
    monkeypatch.setattr(fashion, "DEBIAN_FOLDER", tmp_path / "no-debian-package")


def test_the_loader_reads_what_torchvision_reads_from_the_same_files(tmp_path, small_counts):
    written = write_fashion(tmp_path / "FashionMNIST" / "raw", np.random.default_rng(0))
    folder = fashion.find_folder(DataSpec("fashion-mnist", root=str(tmp_path)))
    for split, train in (("train", True), ("test", False)):
        reference = FashionMNIST(str(tmp_path), train=train, download=False)
        images, labels = fashion.read_split(folder, split)
        assert images.dtype == torch.uint8 and images.shape == (SMALL[split], 1, 28, 28)
        assert torch.equal(images[:, 0], reference.data) and torch.equal(labels, reference.targets)
        assert np.array_equal(images[:, 0].numpy(), written[split][0])


def test_gzipped_files_read_the_same_as_plain_ones(tmp_path, small_counts):
    rng_state = np.random.default_rng(1)
    write_fashion(tmp_path / "plain", np.random.default_rng(1))
    write_fashion(tmp_path / "zipped", rng_state, gzipped=True)
    for split in fashion.FILES:
        plain, zipped = fashion.read_split(tmp_path / "plain", split), fashion.read_split(tmp_path / "zipped", split)
        assert torch.equal(plain[0], zipped[0]) and torch.equal(plain[1], zipped[1])


def test_splits_carve_stratified_validation_and_keep_the_official_test_set(tmp_path, small_counts):
    written = write_fashion(tmp_path / "FashionMNIST" / "raw", np.random.default_rng(2))
    spec = DataSpec("fashion-mnist", root=str(tmp_path), val_size=20, crop_padding=4, horizontal_flip=True)
    splits = load_splits(spec)
    assert (len(splits.train), len(splits.val), splits.num_test) == (100, 20, 30)
    assert splits.num_classes == 10 and splits.input_shape == (1, 28, 28) and not splits.synthetic
    assert torch.bincount(splits.val.y, minlength=10).tolist() == [2] * 10
    assert splits.train.x.mean().item() == pytest.approx(0, abs=1e-5)
    test = splits.open_test()
    mean, std = splits.normalization.mean[0], splits.normalization.std[0]
    assert torch.allclose(test.x[:, 0].double(), (torch.from_numpy(written["test"][0]).double() / 255 - mean) / std,
                          atol=1e-5)
    subset = load_splits(DataSpec("fashion-mnist", root=str(tmp_path), val_size=20, train_size=50))
    assert len(subset.train) == 50 and torch.bincount(subset.train.y, minlength=10).tolist() == [5] * 10
    def raw(split, normalization):
        return (split.x * normalization.std[0] + normalization.mean[0]) * 255

    full = load_splits(spec)  # the carve comes first, the subset after: the same validation images
    assert torch.allclose(raw(subset.val, subset.normalization), raw(full.val, full.normalization), atol=1e-3)
    assert training_examples(DataSpec("fashion-mnist", val_size=5000)) == 55_000
    assert training_examples(DataSpec("fashion-mnist", val_size=5000, train_size=300)) == 300


def test_a_missing_data_set_is_one_line_naming_the_debian_package(tmp_path, small_counts):
    with pytest.raises(BenchError, match="apt-get install dataset-fashion-mnist") as error:
        load_splits(DataSpec("fashion-mnist", root=str(tmp_path)))
    assert "\n" not in str(error.value) and str(tmp_path / "FashionMNIST" / "raw") in str(error.value)


def test_the_debian_folder_is_used_when_the_data_root_has_none(tmp_path, small_counts, monkeypatch):
    write_fashion(tmp_path / "debian", np.random.default_rng(3), gzipped=True)
    monkeypatch.setattr(fashion, "DEBIAN_FOLDER", tmp_path / "debian")
    assert fashion.find_folder(DataSpec("fashion-mnist", root=str(tmp_path / "empty"))) == tmp_path / "debian"


def test_sizes_and_headers_are_verified(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion, "DEBIAN_FOLDER", tmp_path / "no-debian-package")
    folder = tmp_path / "FashionMNIST" / "raw"
    write_fashion(folder, np.random.default_rng(4))
    with pytest.raises(BenchError, match="holds images \\(120, 28, 28\\).*not 60,000 images"):
        load_splits(DataSpec("fashion-mnist", root=str(tmp_path)))
    monkeypatch.setattr(fashion, "EXPECTED_COUNTS", dict(SMALL))
    labels = folder / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-1])
    with pytest.raises(BenchError, match="declares shape \\(30,\\) but holds 29 bytes"):
        load_splits(DataSpec("fashion-mnist", root=str(tmp_path)))
    labels.write_bytes(_idx(0x803, np.zeros((30, 1, 1))))
    with pytest.raises(BenchError, match="magic number 0x00000803, not 0x00000801"):
        load_splits(DataSpec("fashion-mnist", root=str(tmp_path)))


def test_fashion_resnet20_is_cifar_resnet20_with_a_one_channel_stem():
    fashion_model, cifar_model = create_model("fashion-resnet20", 10), create_model("cifar-resnet20", 10)
    params = [sum(p.numel() for p in m.parameters()) for m in (fashion_model, cifar_model)]
    assert params[1] - params[0] == 2 * 16 * 3 * 3
    assert fashion_model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert prunable_layers("fashion-resnet20", fashion_model) == prunable_layers("cifar-resnet20", cifar_model)


def test_the_track_mirrors_the_cifar_recipe_and_lists_every_structured_method():
    track = load_track("fashion-resnet20", TRACKS)
    recipe = track.recipe
    assert (recipe.lr, recipe.momentum, recipe.weight_decay, recipe.batch_size) == (0.1, 0.9, 1e-4, 64)
    assert [m / recipe.epochs for m in recipe.milestones] == [0.5, 0.75]
    assert set(track.pruning.methods) == set(STRUCTURED)
    assert all(get_method(name).kind == "structured" for name in STRUCTURED)
    assert training_examples(data_spec(track)) == 55_000


@pytest.fixture
def small_fashion_track(tmp_path, small_counts):
    write_fashion(tmp_path / "data" / "FashionMNIST" / "raw", np.random.default_rng(5))
    track = load_track("fashion-resnet20", TRACKS)
    return track.model_copy(update={
        "data": track.data.model_copy(update={"root": str(tmp_path / "data"), "val_size": 20}),
        "recipe": track.recipe.model_copy(update={"epochs": 2, "milestones": (1,)}),
    })


def test_every_structured_method_prunes_fashion_resnet20_at_every_target(small_fashion_track, tmp_path):
    workspace = Workspace(small_fashion_track, ResultsLayout(tmp_path / "results"))
    configs = expand(small_fashion_track, select(small_fashion_track, methods=list(STRUCTURED), schedules=["none"],
                                                 targets=["uniform-50", "macs-50"], seeds=[0], twins=False))
    assert {(c.method, c.target) for c in configs} == {(m, t) for m in STRUCTURED for t in ("uniform-50", "macs-50")}
    for config in configs:
        pruned = prune(workspace, config)
        assert pruned.after.params < pruned.before.params, config.label


def _real_data_available() -> bool:
    try:
        fashion.find_folder(DataSpec("fashion-mnist"))
    except BenchError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not _real_data_available(),
                    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_a_real_data_smoke_run_through_the_library(tmp_path):
    """A few hundred real training images, one dense and one retraining epoch, the full 10,000-image test set."""
    track = load_track("fashion-resnet20", TRACKS)
    track = track.model_copy(update={
        "data": track.data.model_copy(update={"train_size": 300, "val_size": 500}),
        "recipe": track.recipe.model_copy(update={"epochs": 1, "milestones": ()}),
    })
    workspace = Workspace(track, ResultsLayout(tmp_path / "results"))
    assert len(workspace.splits.train) == 300 and workspace.splits.num_test == 10_000
    config = expand(track, select(track, methods=["l1-norm"], targets=["uniform-50"], schedules=["ft"],
                                  budgets=[1], seeds=[0], twins=False))[0]
    record = execute(workspace, config)
    assert record.status == "ok", record.error
    assert record.steps_per_epoch == 5 and record.retrain_steps == 5
    assert 0.1 < record.dense_test_acc and 0 < record.test_acc <= 1
