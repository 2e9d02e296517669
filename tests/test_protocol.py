"""The paper protocol (``data.protocol = "paper"``): the official code's whole CIFAR training split and
fixed normalization constants, as an option beside the default held-out protocol, and part of the
dense configuration's identity without moving any existing hash."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import TRACKS
from test_data import _write_cifar10

from harness.core.errors import BenchError
from harness.data import DataSpec, load_splits, training_examples
from harness.data.cifar import PAPER_NORMALIZATION
from harness.dense.baseline import dense_hash
from harness.run.pipeline import data_spec
from harness.track.definition import load_track
from harness.train.loop import steps_per_epoch


def test_the_paper_protocol_trains_on_the_whole_pool_with_the_official_constants(tmp_path):
    pool, pool_labels, test_images, _ = _write_cifar10(tmp_path, np.random.default_rng(0))
    held_out = load_splits(DataSpec("cifar10", root=str(tmp_path), val_size=5))
    paper = load_splits(DataSpec("cifar10", root=str(tmp_path), val_size=5, protocol="paper"))
    assert (len(held_out.train), len(held_out.val)) == (15, 5)
    assert (len(paper.train), len(paper.val)) == (20, 5)
    assert paper.normalization == PAPER_NORMALIZATION
    assert PAPER_NORMALIZATION.mean == (0.4914, 0.4822, 0.4465) and PAPER_NORMALIZATION.std == (0.2023, 0.1994, 0.2010)
    mean = torch.tensor(PAPER_NORMALIZATION.mean, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(PAPER_NORMALIZATION.std, dtype=torch.float64).view(1, 3, 1, 1)
    expected = (torch.from_numpy(pool).double() / 255 - mean) / std
    assert torch.allclose(paper.train.x.double(), expected, atol=1e-5)  # every pool image, in order
    assert paper.train.y.tolist() == pool_labels.tolist()
    train_rows = {row.numpy().tobytes() for row in paper.train.x}
    assert all(row.numpy().tobytes() in train_rows for row in paper.val.x)  # validation monitors training images
    assert torch.equal(paper.val.y, held_out.val.y)  # the same seeded carve
    test = paper.open_test()
    assert torch.allclose(test.x.double(), (torch.from_numpy(test_images).double() / 255 - mean) / std, atol=1e-5)
    assert paper.train.pad_fill == pytest.approx(PAPER_NORMALIZATION.normalized_zero)


def test_paper_protocol_steps_per_epoch_match_the_official_code():
    assert steps_per_epoch(training_examples(DataSpec("cifar10", protocol="paper")), 64) == 782
    assert steps_per_epoch(training_examples(DataSpec("cifar100", protocol="paper")), 64) == 782
    assert steps_per_epoch(training_examples(DataSpec("cifar10")), 64) == 704


def test_the_paper_protocol_is_refused_where_it_does_not_apply():
    with pytest.raises(BenchError, match="protocol 'paper'.*does not apply to digits"):
        DataSpec("digits", protocol="paper")
    with pytest.raises(BenchError, match="protocol 'paper'.*does not apply to fashion-mnist"):
        DataSpec("fashion-mnist", protocol="paper")
    with pytest.raises(BenchError, match="unknown data protocol 'official'; choose from held-out, paper"):
        DataSpec("cifar10", protocol="official")


def test_the_protocol_is_part_of_the_dense_identity_and_the_default_keeps_every_hash():
    track = load_track("cifar10-resnet56", TRACKS)
    assert track.data.protocol == "held-out"
    explicit = track.model_copy(update={"data": track.data.model_copy(update={"protocol": "held-out"})})
    paper = track.model_copy(update={"data": track.data.model_copy(update={"protocol": "paper"})})
    assert dense_hash(explicit, 0) == dense_hash(track, 0)
    assert dense_hash(paper, 0) != dense_hash(track, 0)
    digits = load_track("digits-cnn", TRACKS)
    assert "protocol" not in digits.data.model_dump(exclude_defaults=True)


def test_a_paper_protocol_track_loads_paper_protocol_data():
    track = load_track("cifar10-resnet56", TRACKS)
    paper = track.model_copy(update={"data": track.data.model_copy(update={"protocol": "paper"})})
    assert data_spec(paper).protocol == "paper"


def test_runs_of_the_two_protocols_carry_it_and_are_never_pooled():
    from harness.grid.selection import expand, select
    from harness.run.cells import one_configuration_per_cell
    from harness.run.record import RunRecord

    track = load_track("cifar10-resnet56", TRACKS)
    paper = track.model_copy(update={"data": track.data.model_copy(update={"protocol": "paper"})})
    chosen = dict(methods=["l1-norm"], targets=["uniform-50"], schedules=["ft"], budgets=[40], twins=False)
    held_out = expand(track, select(track, seeds=[0, 1, 2], **chosen))
    official = expand(paper, select(paper, seeds=[0, 1], **chosen))
    assert {c.data_protocol for c in held_out} == {"held-out"} and {c.data_protocol for c in official} == {"paper"}
    assert "data_protocol" not in held_out[0].model_dump(exclude_defaults=True)
    records = [RunRecord(**c.model_dump(), id=c.run_id, status="ok", test_acc=0.9) for c in held_out + official]
    kept, dropped = one_configuration_per_cell(records)
    assert {r.data_protocol for r in kept} == {"held-out"}
    assert len(dropped) == 2 and all("data_protocol" in reason for _, reason in dropped)


def test_tuning_refuses_the_paper_protocol():
    from harness.run.cells import CellKey
    from harness.tune.search import TuneOptions, check_cells

    track = load_track("cifar10-resnet56", TRACKS)
    paper = track.model_copy(update={"data": track.data.model_copy(update={"protocol": "paper"})})
    cell = CellKey(paper.name, "l1-norm", False, "uniform-50", "slr", 40)
    check_cells(track, [cell], TuneOptions(trials=2, seeds=(0,)))
    with pytest.raises(BenchError, match="paper protocol"):
        check_cells(paper, [cell], TuneOptions(trials=2, seeds=(0,)))
