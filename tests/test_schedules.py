"""Schedules against the reference values of DESIGN.md, the official ImageNet code and PyTorch's own OneCycleLR."""

import math

import pytest
import torch

from harness.core.errors import BenchError
from harness.track.recipe import Recipe
from harness.track.schedules import (
    SCHEDULES,
    get_schedule,
    original_step_values,
    resolve_params,
    step_values,
)

CIFAR = Recipe(lr=0.1, momentum=0.9, weight_decay=1e-4, batch_size=64, epochs=160, milestones=(80, 120))


def per_epoch(name, epochs, recipe=CIFAR, steps=1, **params):
    return step_values(get_schedule(name), recipe, epochs, steps, params).per_epoch()


def test_fine_tuning_is_constant_at_the_recipes_last_rate():
    assert per_epoch("ft", 40) == [0.001] * 40


def test_lr_rewinding_72_epochs_is_0_01_for_32_epochs_then_0_001():
    assert per_epoch("lrw", 72) == [0.01] * 32 + [0.001] * 40


@pytest.mark.parametrize("epochs, expected", [
    (120, [0.1] * 40 + [0.01] * 40 + [0.001] * 40),    # E > 80: x0.1 at E-80 and E-40
    (56, [0.01] * 16 + [0.001] * 40),                   # 40 < E <= 80: x0.1 at E-40
    (40, [0.001] * 40),                                 # E <= 40: constant
])
def test_lr_rewinding_replays_the_last_epochs_of_the_cifar_schedule(epochs, expected):
    assert per_epoch("lrw", epochs) == expected


def test_scaled_restarting_40_epochs_matches_the_reference_values():
    lrs = per_epoch("slr", 40)
    assert lrs[:4] == pytest.approx([0.001, 0.0155, 0.0505, 0.0855], abs=5e-5)
    assert lrs[4:22] == [0.1] * 18
    assert lrs[22:31] == [0.01] * 9
    assert lrs[31:] == [0.001] * 9


def test_scaled_restarting_decays_come_from_the_recipe_milestones():
    other = CIFAR.model_copy(update={"milestones": (40, 120)})
    lrs = per_epoch("slr", 40, recipe=other)
    assert lrs[4 + int(0.225 * 40)] == 0.01 and lrs[3 + int(0.225 * 40)] == 0.1


IMAGENET = Recipe(lr=0.1, momentum=0.9, weight_decay=1e-4, batch_size=256, epochs=90, milestones=(30, 60))


def official_imagenet_slr(epochs):
    """The official ImageNet code (main_finetune.py --use_llr): num_warmup = int(0.1 E), a cosine warm-up from
    0.001, then MultiStepLR at [int(0.33 * 0.9 E), int(0.66 * 0.9 E)] counted after the warm-up."""
    warmup = int(0.1 * epochs)
    milestones = [int(0.33 * 0.9 * epochs), int(0.66 * 0.9 * epochs)]
    lrs = []
    for epoch in range(epochs):
        if epoch < warmup:
            lrs.append(0.001 + (0.1 - 0.001) * (1 - math.cos(math.pi * epoch / warmup)) / 2)
        else:
            lrs.append(0.1 * 0.1 ** sum(1 for m in milestones if epoch - warmup >= m))
    return lrs


def test_scaled_restarting_45_imagenet_epochs_decays_after_epochs_17_and_30():
    lrs = per_epoch("slr", 45, recipe=IMAGENET)
    assert lrs[4:17] == [0.1] * 13 and lrs[17:30] == pytest.approx([0.01] * 13) and lrs[30:] == pytest.approx([0.001] * 15)


@pytest.mark.parametrize("epochs, warmup, decays", [(30, 3, (8, 17)), (45, 4, (13, 26)), (60, 6, (17, 35)),
                                                     (90, 9, (26, 53))])
def test_scaled_restarting_on_imagenet_equals_the_official_code(epochs, warmup, decays):
    assert (int(0.1 * epochs), int(0.33 * 0.9 * epochs), int(0.66 * 0.9 * epochs)) == (warmup, *decays)
    assert per_epoch("slr", epochs, recipe=IMAGENET) == pytest.approx(official_imagenet_slr(epochs), rel=1e-12)
    steps = step_values(get_schedule("slr"), IMAGENET, epochs, 7).lr  # the rate is constant within an epoch
    assert steps == tuple(lr for lr in per_epoch("slr", epochs, recipe=IMAGENET) for _ in range(7))


def test_scaled_restarting_keeps_the_cifar_decays_at_every_budget():
    for budget in (40, 56, 72, 88, 104, 120, 136, 152):
        lrs = per_epoch("slr", budget)
        warmup = int(0.1 * budget)
        first, second = int(0.5 * 0.9 * budget), int(0.75 * 0.9 * budget)
        assert lrs[warmup + first - 1] == 0.1 and lrs[warmup + first] == pytest.approx(0.01)
        assert lrs[warmup + second - 1] == pytest.approx(0.01) and lrs[warmup + second] == pytest.approx(0.001)


def test_cyclic_restarting_equals_pytorch_one_cycle_lr():
    steps_per_epoch, epochs = 7, 12
    values = step_values(get_schedule("clr"), CIFAR, epochs, steps_per_epoch)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)
    reference = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=0.1, total_steps=epochs * steps_per_epoch, pct_start=0.1,
        div_factor=100, final_div_factor=100, anneal_strategy="cos", cycle_momentum=True,
    )
    lrs, momenta = [], []
    for _ in range(epochs * steps_per_epoch):
        lrs.append(optimizer.param_groups[0]["lr"])
        momenta.append(optimizer.param_groups[0]["momentum"])
        optimizer.step()
        reference.step()
    assert list(values.lr) == pytest.approx(lrs, rel=1e-12, abs=1e-18)
    assert list(values.momentum) == pytest.approx(momenta, rel=1e-12)
    assert values.lr[0] == pytest.approx(0.001) and values.lr[-1] == pytest.approx(1e-5, rel=1e-2)


def test_none_has_no_steps():
    assert step_values(get_schedule("none"), CIFAR, 0, 10).lr == ()


def test_original_schedule_is_the_recipe():
    lrs = original_step_values(CIFAR, 1).per_epoch()
    assert lrs[79] == 0.1 and lrs[80] == 0.01 and lrs[120] == 0.001 and len(lrs) == 160


def test_every_schedule_declares_tunables_with_defaults_inside_their_range():
    for schedule in SCHEDULES.values():
        for tunable in schedule.tunables(CIFAR):
            assert tunable.low <= tunable.default <= tunable.high


def test_only_declared_hyperparameters_can_be_set():
    with pytest.raises(BenchError, match="no hyperparameter 'batch_size'"):
        resolve_params(get_schedule("slr"), CIFAR, {"batch_size": 128})
    assert resolve_params(get_schedule("slr"), CIFAR, {"peak_lr": 0.2})["peak_lr"] == 0.2


def test_unknown_schedule_is_a_clear_error():
    with pytest.raises(BenchError, match="unknown schedule 'cosine'"):
        get_schedule("cosine")


@pytest.mark.parametrize("name, value", [("peak_lr", -0.1), ("peak_lr", float("inf")), ("warmup_fraction", 3.0)])
def test_hyperparameter_values_must_be_valid(name, value):
    with pytest.raises(BenchError, match=f"{name}="):
        resolve_params(get_schedule("slr"), CIFAR, {name: value})


def test_recorded_warmup_equals_the_schedules_warmup():
    from harness.track.schedules import warmup_epochs

    lrs = per_epoch("slr", 100, warmup_fraction=0.29)
    assert warmup_epochs(0.29, 100) == 29 and lrs[28] < 0.1 and lrs[29] == 0.1


def test_per_step_values_index_like_a_tuple():
    values = step_values(get_schedule("slr"), CIFAR, 4, 3)
    stored = tuple(values.lr)
    assert len(values.lr) == len(stored) == 12
    assert values.lr[-1] == stored[-1] and values.lr[2:7] == list(stored[2:7]) and values.lr == stored
    with pytest.raises(IndexError):
        values.lr[12]
    assert values.per_epoch() == list(stored[::3])
