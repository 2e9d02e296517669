"""The data layer: splits carved with the split seed, loaders on files in the real on-disk formats,
batched augmentation equal to torchvision's per-image transforms, the counted test-split guard."""

from __future__ import annotations

import pickle
from collections import Counter

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from sklearn.datasets import load_digits
from torchvision import transforms

from harness.core.errors import BenchError
from harness.data import (
    DataSpec,
    Normalization,
    TensorSplit,
    augment_batch,
    default_data_root,
    load_splits,
    stratified_carve,
)

# ---------------------------------------------------------------- digits

def _raw_rows(split: TensorSplit, normalization: Normalization) -> Counter:
    """The split's images back on sklearn's 0..16 integer scale, as a multiset of rows."""
    raw = (split.x * normalization.std[0] + normalization.mean[0]) * 16
    return Counter(map(tuple, raw.round().to(torch.int64).flatten(1).tolist()))


def test_digits_splits_partition_the_dataset_deterministically():
    splits = load_splits(DataSpec("digits", split_seed=3, val_size=0.1, test_size=0.2))
    test = splits.open_test()
    assert (len(splits.train), len(splits.val), len(test)) == (1258, 180, 359)
    assert len(splits.train) + len(splits.val) + len(test) == 1797
    assert splits.num_classes == 10 and splits.input_shape == (1, 8, 8) and not splits.synthetic

    everything = Counter(map(tuple, load_digits().data.astype(np.int64).tolist()))
    parts = [_raw_rows(part, splits.normalization) for part in (splits.train, splits.val, test)]
    assert parts[0] + parts[1] + parts[2] == everything  # a partition of the multiset: disjoint, complete

    again = load_splits(DataSpec("digits", split_seed=3, val_size=0.1, test_size=0.2))
    assert torch.equal(again.train.x, splits.train.x) and torch.equal(again.val.y, splits.val.y)
    other = load_splits(DataSpec("digits", split_seed=4, val_size=0.1, test_size=0.2))
    assert not torch.equal(other.val.x, splits.val.x)


def test_digits_splits_are_stratified_and_normalized_with_training_statistics():
    splits = load_splits(DataSpec("digits", val_size=300, test_size=0.25))
    test = splits.open_test()
    labels = torch.from_numpy(load_digits().target)
    for split in (splits.val, test):
        expected = torch.bincount(labels, minlength=10) * len(split) / len(labels)
        assert (torch.bincount(split.y, minlength=10) - expected).abs().max() < 1
    assert splits.train.x.dtype == torch.float32 and splits.train.y.dtype == torch.int64
    assert splits.train.x.mean().item() == pytest.approx(0, abs=1e-5)
    assert splits.train.x.std(correction=0).item() == pytest.approx(1, abs=1e-5)
    assert abs(splits.val.x.mean().item()) > 1e-4  # validation images did not enter the statistics


# ---------------------------------------------------------------- CIFAR on disk

def _write_pickle(path, entry):
    with open(path, "wb") as handle:
        pickle.dump(entry, handle)


def _cifar_images(rng, count):
    return rng.integers(0, 256, size=(count, 3072), dtype=np.uint8)


def _write_cifar10(root, rng, per_batch=4, test_count=6):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train = []
    for index in range(1, 6):
        data, labels = _cifar_images(rng, per_batch), rng.integers(0, 10, per_batch).tolist()
        _write_pickle(folder / f"data_batch_{index}", {b"batch_label": b"training batch", b"labels": labels,
                                                      b"data": data, b"filenames": [b"x.png"] * per_batch})
        train.append((data, labels))
    test_data, test_labels = _cifar_images(rng, test_count), rng.integers(0, 10, test_count).tolist()
    test_data[0, :1024], test_data[0, 1024:] = 255, 0  # a pure red image: channel-major rows
    _write_pickle(folder / "test_batch", {b"labels": test_labels, b"data": test_data})
    _write_pickle(folder / "batches.meta", {b"label_names": [f"class{i}".encode() for i in range(10)],
                                             b"num_cases_per_batch": per_batch, b"num_vis": 3072})
    pool = np.concatenate([d for d, _ in train]).reshape(-1, 3, 32, 32)
    return pool, np.concatenate([l for _, l in train]), test_data.reshape(-1, 3, 32, 32), np.array(test_labels)


def test_cifar10_loader_reads_the_torchvision_format_and_normalizes_with_training_images(tmp_path):
    pool, pool_labels, test_images, test_labels = _write_cifar10(tmp_path, np.random.default_rng(0))
    splits = load_splits(DataSpec("cifar10", root=str(tmp_path), val_size=5, crop_padding=4, horizontal_flip=True))
    assert (len(splits.train), len(splits.val), splits.num_test) == (15, 5, 6)
    assert splits.num_classes == 10 and splits.input_shape == (3, 32, 32)

    mean = torch.tensor(splits.normalization.mean).view(1, 3, 1, 1)
    std = torch.tensor(splits.normalization.std).view(1, 3, 1, 1)
    recovered = ((splits.train.x.double() * std + mean) * 255).round().to(torch.uint8).numpy()
    pool_rows = {image.tobytes(): label for image, label in zip(pool, pool_labels)}
    assert all(pool_rows[image.tobytes()] == label for image, label in zip(recovered, splits.train.y.tolist()))
    expected = recovered.astype(np.float64) / 255
    assert np.allclose(splits.normalization.mean, expected.mean(axis=(0, 2, 3)), atol=1e-12)
    assert np.allclose(splits.normalization.std, expected.std(axis=(0, 2, 3)), atol=1e-12)
    assert not np.allclose(splits.normalization.mean, pool.mean(axis=(0, 2, 3)) / 255, atol=1e-6)

    test = splits.open_test()
    expected_test = (torch.from_numpy(test_images).double() / 255 - mean) / std
    assert torch.allclose(test.x.double(), expected_test, atol=1e-5)
    assert test.y.tolist() == test_labels.tolist()
    assert test.x[0, 0].eq(test.x[0, 0, 0, 0]).all() and test.x[0, 0, 0, 0] > test.x[0, 1, 0, 0]
    assert splits.train.pad_fill == pytest.approx(splits.normalization.normalized_zero)


def test_cifar100_loader_reads_fine_labels_and_class_count_from_meta(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    train_labels, test_labels = rng.integers(0, 100, 40).tolist(), [99, 0, 57]
    _write_pickle(folder / "train", {b"data": _cifar_images(rng, 40), b"fine_labels": train_labels,
                                     b"coarse_labels": [0] * 40})
    _write_pickle(folder / "test", {b"data": _cifar_images(rng, 3), b"fine_labels": test_labels,
                                    b"coarse_labels": [0] * 3})
    _write_pickle(folder / "meta", {b"fine_label_names": [b"c%d" % i for i in range(100)],
                                    b"coarse_label_names": [b"s%d" % i for i in range(20)]})
    splits = load_splits(DataSpec("cifar100", root=str(tmp_path), val_size=0.25, split_seed=2))
    assert splits.num_classes == 100
    assert (len(splits.train), len(splits.val)) == (30, 10)
    assert Counter(splits.train.y.tolist()) + Counter(splits.val.y.tolist()) == Counter(train_labels)
    assert splits.open_test().y.tolist() == test_labels


def test_missing_cifar_directory_names_the_path_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNE_BENCH_DATA", str(tmp_path / "nowhere"))
    assert default_data_root() == tmp_path / "nowhere"
    expected = "CIFAR-10 not found at .*nowhere/cifar-10-batches-py.*PRUNE_BENCH_DATA"
    with pytest.raises(BenchError, match=expected) as info:
        load_splits(DataSpec("cifar10"))
    assert "\n" not in str(info.value)
    with pytest.raises(BenchError, match=r"CIFAR-100 not found at .*other/cifar-100-python"):
        load_splits(DataSpec("cifar100", root=str(tmp_path / "other")))


def test_incomplete_cifar_directory_lists_the_missing_files(tmp_path):
    _write_cifar10(tmp_path, np.random.default_rng(0))
    (tmp_path / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(BenchError, match="missing data_batch_4"):
        load_splits(DataSpec("cifar10", root=str(tmp_path), val_size=5))


def test_default_data_root_without_the_environment_variable(monkeypatch, tmp_path):
    monkeypatch.delenv("PRUNE_BENCH_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_data_root() == tmp_path / ".cache" / "prune-bench" / "data"


# ---------------------------------------------------------------- ImageNet folder tree

COLORS = {"n01440764": [(200, 10, 10), (180, 40, 0), (250, 0, 60), (220, 20, 20), (150, 0, 0)],
          "n01443537": [(10, 10, 200), (0, 60, 180), (40, 0, 250), (20, 20, 220), (0, 0, 150)]}


def _write_imagenet(root):
    for part, count in (("train", 5), ("val", 2)):
        for wnid, colors in COLORS.items():
            folder = root / "imagenet" / part / wnid
            folder.mkdir(parents=True)
            for index, color in enumerate(colors[:count]):
                pixels = np.full((24, 32, 3), color, dtype=np.uint8)
                pixels[:, :16] //= 2  # a left/right asymmetry, so crops and flips change the batch
                suffix = "JPEG" if index % 2 else "png"
                Image.fromarray(pixels).save(folder / f"{wnid}_{index}.{suffix}")


def test_imagenet_folder_splits_carve_val_from_train_and_stream_batches(tmp_path):
    _write_imagenet(tmp_path)
    spec = DataSpec("imagenet", root=str(tmp_path), val_size=2, horizontal_flip=True)
    splits = load_splits(spec, loader_workers=0)
    assert (len(splits.train), len(splits.val), splits.num_test) == (8, 2, 4)
    assert splits.num_classes == 2 and splits.input_shape == (3, 224, 224)
    train_files = {path for path, _ in splits.train.samples}
    assert train_files.isdisjoint(path for path, _ in splits.val.samples)
    assert sorted(label for _, label in splits.val.samples) == [0, 1]

    test = splits.open_test()
    x, y = next(iter(test.batches(4, None, shuffle=False, augment=False)))
    assert x.shape == (4, 3, 224, 224) and y.tolist() == [0, 0, 1, 1]
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    expected_right_half = (torch.tensor([200, 10, 10]) / 255 - mean) / std  # png, lossless
    assert torch.allclose(x[0, :, 112, -20], expected_right_half, atol=1e-5)


def test_imagenet_augmentation_depends_only_on_the_generator(tmp_path):
    _write_imagenet(tmp_path)
    spec = DataSpec("imagenet", root=str(tmp_path), val_size=2, horizontal_flip=True)
    train = load_splits(spec, loader_workers=0).train

    def epoch(seed, split=train):
        batches = list(split.batches(3, torch.Generator().manual_seed(seed), shuffle=True, augment=True))
        return torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches])

    first, again, other = epoch(0), epoch(0), epoch(1)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])
    assert sorted(first[1].tolist()) == sorted(label for _, label in train.samples)
    torch.manual_seed(12345)  # the global RNG has no say
    two_workers = load_splits(spec, loader_workers=2).train
    assert torch.equal(epoch(0, two_workers)[0], first[0])


def test_missing_imagenet_directory_names_the_path(tmp_path):
    with pytest.raises(BenchError, match=r"ImageNet not found at .*imagenet/train"):
        load_splits(DataSpec("imagenet", root=str(tmp_path)))


# ---------------------------------------------------------------- augment_batch

def _coded_images(count, height, width):
    """Every pixel of every image unique and nonzero, so a crop reveals its offset."""
    return torch.arange(1, count * height * width + 1, dtype=torch.float32).view(count, 1, height, width)


def _offsets(out, images, padding):
    """Recover each sample's (row, col) crop offset from the first non-padding pixel it shows."""
    width = images.shape[-1]
    found = []
    for sample, source in zip(out, images):
        r, c = [int(v) for v in torch.nonzero(sample[0])[0]]
        position = int(sample[0, r, c] - source[0, 0, 0])
        found.append((position // width + padding - r, position % width + padding - c))
    return found


def test_crop_offsets_cover_exactly_the_range_torchvision_draws_from():
    padding, images = 2, _coded_images(400, 6, 5)
    out = augment_batch(images, padding, False, torch.Generator().manual_seed(0))
    assert out.shape == images.shape
    offsets = _offsets(out, images, padding)
    padded = TF.pad(images[0], padding)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        reference = {transforms.RandomCrop.get_params(padded, (6, 5))[:2] for _ in range(400)}
    assert {i for i, _ in offsets} == {i for i, _ in reference} == set(range(2 * padding + 1))
    assert {j for _, j in offsets} == {j for _, j in reference} == set(range(2 * padding + 1))
    for sample, source, (i, j) in zip(out, images, offsets):
        assert torch.equal(sample, TF.crop(TF.pad(source, padding), i, j, 6, 5))


def test_flip_mirrors_exactly_the_samples_whose_coin_came_up():
    images = _coded_images(64, 4, 4)
    out = augment_batch(images, 0, True, torch.Generator().manual_seed(5))
    coins = torch.rand(64, 1, generator=torch.Generator().manual_seed(5)).flatten() < 0.5
    assert 0 < int(coins.sum()) < 64
    assert torch.equal(out[coins], torch.flip(images[coins], dims=[-1]))
    assert torch.equal(out[~coins], images[~coins])


def test_crop_and_flip_equal_torchvision_on_raw_images_then_normalization():
    """Padding normalized images with the normalized zero equals torchvision's pad-raw-then-normalize."""
    raw = torch.rand(200, 3, 8, 8, generator=torch.Generator().manual_seed(1)) + 0.01
    normalization = Normalization(mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3))
    fill = torch.tensor(normalization.normalized_zero)
    out = augment_batch(normalization.apply(raw), 3, True, torch.Generator().manual_seed(2), fill)
    plain = augment_batch(raw, 3, True, torch.Generator().manual_seed(2))
    mirrored = 0
    for sample, source, cropped in zip(out, raw, plain):
        candidates = [(i, j, flip) for i in range(7) for j in range(7) for flip in (False, True)
                      if torch.equal(cropped, _reference(source, i, j, flip))]
        assert len(candidates) == 1
        i, j, flip = candidates[0]
        mirrored += flip
        assert torch.allclose(sample, normalization.apply(_reference(source, i, j, flip)[None])[0], atol=1e-5)
    assert 60 < mirrored < 140


def _reference(image, top, left, flip):
    cropped = TF.crop(TF.pad(image, 3), top, left, 8, 8)
    return TF.hflip(cropped) if flip else cropped


def test_augment_batch_without_augmentation_returns_the_batch():
    images = torch.randn(4, 3, 8, 8)
    assert augment_batch(images, 0, False, torch.Generator()) is images


# ---------------------------------------------------------------- batches and the test guard

def _indexed_split(count, **augmentation):
    x = torch.arange(count, dtype=torch.float32).view(count, 1, 1, 1).expand(count, 1, 4, 4).contiguous()
    return TensorSplit(x, torch.arange(count), **augmentation)


def test_batches_cover_every_example_once_per_epoch():
    split = _indexed_split(103)
    generator = torch.Generator().manual_seed(0)
    epochs = [list(split.batches(10, generator, shuffle=True, augment=False)) for _ in range(2)]
    for batches in epochs:
        assert [len(y) for _, y in batches] == [10] * 10 + [3]
        seen = torch.cat([y for _, y in batches])
        assert torch.equal(seen.sort().values, torch.arange(103))
        assert all(torch.equal(x[:, 0, 0, 0].long(), y) for x, y in batches)
    assert not torch.equal(torch.cat([y for _, y in epochs[0]]), torch.cat([y for _, y in epochs[1]]))
    expected_order = torch.randperm(103, generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.cat([y for _, y in epochs[0]]), expected_order)
    assert split.num_batches(10) == 11 and split.num_batches(10, drop_last=True) == 10
    assert len(list(split.batches(10, generator, shuffle=True, augment=False, drop_last=True))) == 10
    ordered = torch.cat([y for _, y in split.batches(16, None, shuffle=False, augment=False)])
    assert torch.equal(ordered, torch.arange(103))


def test_augmented_batches_are_reproducible_and_keep_labels():
    split = _indexed_split(50, crop_padding=1, horizontal_flip=True)
    first = list(split.batches(16, torch.Generator().manual_seed(3), shuffle=True, augment=True))
    again = list(split.batches(16, torch.Generator().manual_seed(3), shuffle=True, augment=True))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))
    for x, y in first:
        assert ((x == 0) | (x == y.view(-1, 1, 1, 1).float())).all()
    with pytest.raises(ValueError, match="Generator"):
        list(split.batches(16, None, shuffle=True, augment=False))


def test_test_split_reads_are_counted():
    splits = load_splits(DataSpec("digits"))
    list(splits.train.batches(256, torch.Generator().manual_seed(0), shuffle=True, augment=False))
    assert splits.num_test == 359 and splits.test_reads == 0
    splits.open_test()
    splits.open_test()
    assert splits.test_reads == 2


# ---------------------------------------------------------------- spec, carving, synthetic data

def test_spec_normalizes_sizes_and_rejects_what_does_not_apply():
    assert DataSpec("cifar10", val_size=5000.0).val_size == 5000
    assert DataSpec("cifar10").resolved().val_size == 5000
    assert DataSpec("digits").resolved() == DataSpec("digits", val_size=0.1, test_size=0.2)
    with pytest.raises(BenchError, match="unknown dataset 'mnist'"):
        DataSpec("mnist")
    with pytest.raises(BenchError, match="test_size does not apply to cifar10"):
        DataSpec("cifar10", test_size=1000)
    with pytest.raises(BenchError, match="val_size"):
        DataSpec("cifar10", val_size=2.5)
    with pytest.raises(BenchError, match="crop_padding does not apply to imagenet"):
        DataSpec("imagenet", crop_padding=4)
    with pytest.raises(BenchError, match="val_size=1797"):
        load_splits(DataSpec("digits", val_size=1797))


def test_stratified_carve_holds_out_exact_class_shares():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    kept, held = stratified_carve(labels, 10, torch.Generator().manual_seed(0))
    assert len(held) == 10 and len(kept) == 90
    assert torch.bincount(labels[held]).tolist() == [5, 3, 2]
    assert torch.equal(torch.cat([kept, held]).sort().values, torch.arange(100))
    _, uneven = stratified_carve(labels, 7, torch.Generator().manual_seed(0))
    assert torch.bincount(labels[uneven]).tolist() == [4, 2, 1]  # 3.5, 2.1, 1.4: the largest remainder wins


def test_synthetic_cifar_is_seeded_marked_synthetic_and_learnable():
    spec = DataSpec("synthetic-cifar", train_size=400, val_size=100, test_size=50, split_seed=7)
    splits = load_splits(spec)
    assert splits.synthetic and splits.num_classes == 10 and splits.input_shape == (3, 32, 32)
    assert (len(splits.train), len(splits.val), splits.num_test) == (400, 100, 50)
    assert torch.equal(load_splits(spec).train.x, splits.train.x)
    centroids = torch.stack([splits.train.x[splits.train.y == k].mean(0).flatten() for k in range(10)])
    predicted = torch.cdist(splits.val.x.flatten(1), centroids).argmin(1)
    assert (predicted == splits.val.y).float().mean() > 0.9
