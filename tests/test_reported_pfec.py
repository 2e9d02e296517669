"""The shipped reported records of PFEC's Table 1 (CIFAR-10): they parse, name their source, sit on the tracks
and targets they quote, and their rounded counts agree with the harness's exact counts of the same networks."""

import pytest
from conftest import REPO, TRACKS

from harness.audit.reported import citation, load_reported
from harness.models import create_model
from harness.prune.allocation import resolve_target
from harness.prune.counting import count
from harness.track.definition import load_track

FILE = REPO / "results" / "pfec-2017-table1-cifar10.toml"


def test_pfec_table1_records_parse_and_name_their_source():
    records = load_reported(FILE)
    assert {(r.track, r.target) for r in records} == {
        ("cifar10-vgg16", "pfec-a"), ("cifar10-resnet56", "pfec-a"), ("cifar10-resnet56", "pfec-b"),
        ("cifar10-resnet110", "pfec-a"), ("cifar10-resnet110", "pfec-b")}
    assert all(r.source == "reported" and r.method == "l1-norm" and (r.schedule, r.budget_epochs) == ("ft", 40)
               for r in records)
    assert {citation(r) for r in records} == {
        "Li, Kadav, Durdanovic, Samet & Graf, Pruning Filters for Efficient ConvNets, ICLR 2017 (arXiv:1608.08710), "
        "Table 1"}
    by_target = {(r.track, r.target): r for r in records}
    assert (by_target[("cifar10-resnet56", "pfec-b")].dense_test_acc, by_target[("cifar10-resnet56", "pfec-b")].test_acc) \
        == (0.9304, 0.9306)


@pytest.mark.parametrize("record", load_reported(FILE), ids=lambda r: f"{r.track}/{r.target}")
def test_pfec_table1_counts_agree_with_the_harness_counts(record):
    track = load_track(record.track, TRACKS)
    model = create_model(track.model.name, track.model.num_classes)
    dense = count(model, track.model.input_shape)
    allocation = resolve_target(track.target(record.target), "structured", track.model.name, model,
                                track.model.input_shape)
    pruned = allocation.estimate(allocation.keep)
    for reported, exact in ((record.params_before, dense.params), (record.macs_before, dense.macs_conv_linear),
                            (record.params_after, pruned.params), (record.macs_after, pruned.macs)):
        assert abs(reported - exact) / exact < 0.02  # the table rounds to two or three digits
