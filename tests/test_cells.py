"""Cells never pool runs of different configurations, so a seed is never counted twice."""

from harness.run.cells import group_cells, one_configuration_per_cell
from harness.run.record import RunConfig, RunRecord


def record(seed, **changes):
    config = RunConfig(**{**dict(track="t", dense_hash="d", method="l1-norm", target="u", schedule="ft",
                                 schedule_params={"lr": 0.001}, budget_epochs=10, seed=seed,
                                 harness_version="0.1.0"), **changes})
    return RunRecord(**config.model_dump(), id=config.run_id, status="ok", test_acc=0.9, val_acc=0.9)


def test_one_configuration_survives_per_cell_and_the_rest_is_reported():
    records = [record(s) for s in range(3)] + [record(s, harness_version="0.2.0") for s in range(2)]
    records += [record(0, schedule_params={"lr": 0.01}, twin=True)]
    kept, dropped = one_configuration_per_cell(records)
    assert sorted((r.harness_version, r.seed) for r in kept if not r.twin) == [("0.1.0", s) for s in range(3)]
    assert [r.harness_version for r, _ in dropped] == ["0.2.0", "0.2.0"]
    assert all("harness_version" in reason for _, reason in dropped)
    assert len(group_cells(kept)) == 2


def test_a_consistent_cell_is_left_alone():
    records = [record(s) for s in range(5)]
    assert one_configuration_per_cell(records) == (records, [])


def test_cell_keys_derive_their_related_keys_and_label():
    from harness.run.cells import CellKey
    from harness.run.record import REPRODUCED

    key = CellKey("toy", "l1", False, "half", "ft", 10)
    assert key.label == "toy/l1/half/ft@10" and key.source == REPRODUCED and key.reproduced
    assert key.as_twin().label == "toy/l1+twin/half/ft@10" and key.as_twin().without_twin() == key
    reported = CellKey("toy", "l1", False, "half", "ft", 10, "reported: paper")
    assert reported.label == "toy/l1/half/ft@10 [reported: paper]" and not reported.reproduced
    assert reported.without_source() == key.without_source() != key
    assert key.context == ("toy", "half", "ft", 10) == key.as_twin().context
