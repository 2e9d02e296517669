"""Per-epoch checkpoints: a run stopped after any epoch and resumed ends exactly as an uninterrupted one."""

import copy
import dataclasses

import pytest
import torch

from harness.core.layout import ResultsLayout
from harness.grid.selection import expand, select
from harness.run.execution import execute
from harness.run.pipeline import Workspace, prune, retrain
from harness.train.checkpoints import FileCheckpoint


class Stopped(Exception):
    """Stands in for a worker dying after an epoch."""


def one_config(track, method, schedule, budget=5):
    selection = select(track, methods=[method], targets=["uniform-50"], schedules=[schedule], budgets=[budget],
                       seeds=[0], twins=False)
    return expand(track, selection)[0]


def stop_after(epochs):
    def report(epoch, loss, val_acc):
        if epoch + 1 == epochs:
            raise Stopped

    return report


@pytest.fixture(scope="module")
def workspace(digits_track, trained_results):
    return Workspace(digits_track, ResultsLayout(trained_results))


@pytest.mark.parametrize("method, schedule, stop", [("l1-norm", "clr", 2), ("magnitude-global", "slr", 4)])
def test_training_resumed_from_a_checkpoint_equals_an_uninterrupted_run(workspace, tmp_path, method, schedule, stop):
    """Structured and masked models, per-step lr with cycled momentum and per-epoch steps."""
    config = one_config(workspace.track, method, schedule)
    pruned = prune(workspace, config)

    def fresh():
        return dataclasses.replace(pruned, model=copy.deepcopy(pruned.model))

    straight = fresh()
    expected, _ = retrain(workspace, config, straight)
    checkpoint = FileCheckpoint.for_run(tmp_path, config.run_id)
    with pytest.raises(Stopped):
        retrain(workspace, config, fresh(), on_epoch=stop_after(stop), checkpoint=checkpoint)
    assert checkpoint.load().epochs_done == stop
    resumed_epochs = []
    resumed = fresh()
    result, _ = retrain(workspace, config, resumed, checkpoint=checkpoint,
                        on_epoch=lambda epoch, loss, acc: resumed_epochs.append(epoch))
    assert resumed_epochs == list(range(stop, config.budget_epochs))
    assert result == expected
    for (name, a), (_, b) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), name


def test_a_run_resumed_by_execute_gives_the_same_record(workspace, tmp_path):
    config = one_config(workspace.track, "l1-norm", "ft", budget=4)
    checkpoint = FileCheckpoint.for_run(ResultsLayout(tmp_path).checkpoints(config.track), config.run_id)
    with pytest.raises(Stopped):
        retrain(workspace, config, prune(workspace, config), on_epoch=stop_after(3), checkpoint=checkpoint)
    resumed = execute(workspace, config, checkpoint=checkpoint)
    straight = execute(workspace, config)
    assert resumed.status == "ok"
    assert resumed.test_acc == straight.test_acc and resumed.curves == straight.curves
    assert resumed.retrain_steps == straight.retrain_steps == 4 * straight.steps_per_epoch


def test_a_checkpoint_is_one_atomic_file_per_run_that_discard_removes(workspace, tmp_path):
    config = one_config(workspace.track, "l1-norm", "ft", budget=2)
    checkpoint = FileCheckpoint.for_run(tmp_path, config.run_id)
    assert checkpoint.load() is None
    _, values = retrain(workspace, config, prune(workspace, config), checkpoint=checkpoint)
    assert [p.name for p in tmp_path.iterdir()] == [f"{config.run_id}.pt"]
    state = checkpoint.load()
    assert (state.epochs_done, state.steps) == (2, 2 * values.steps_per_epoch) and len(state.val_acc) == 2
    checkpoint.discard()
    assert list(tmp_path.iterdir()) == [] and checkpoint.load() is None
