"""Plans as data: top-k selection, random twins, and validation that rejects every broken plan in one line."""

import pytest
import torch

from harness.core.errors import BenchError
from harness.plans import (
    ChannelPlan,
    MaskPlan,
    keep_counts,
    keep_top,
    keep_top_weights,
)
from harness.prune.twins import random_twin
from harness.prune.validation import validate_plan

SHAPES = {"conv1": (4,), "conv2": (6,)}
KEEP = {"conv1": 2, "conv2": 3}
MASK_SHAPES = {"conv": (2, 3), "fc": (4,)}


def test_keep_counts_round_half_up_and_keep_at_least_one():
    assert keep_counts({"a": 16, "b": 5, "c": 1}, 0.5) == {"a": 8, "b": 3, "c": 1}
    assert keep_counts({"a": 3}, 0.99) == {"a": 1}


def test_keep_top_keeps_the_highest_scores_and_breaks_ties_towards_the_lower_index():
    plan = keep_top({"conv1": torch.tensor([0.5, 2.0, 0.5, 1.0])}, {"conv1": 3})
    assert plan.kept == {"conv1": (0, 1, 3)}


def test_keep_top_weights_masks_the_smallest_scores_in_the_weight_shape():
    scores = torch.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, 4.0]])
    plan = keep_top_weights({"conv": scores}, {"conv": 4})
    assert plan.masks["conv"].dtype == torch.bool
    assert plan.masks["conv"].tolist() == [[True, False, True], [False, True, True]]
    assert plan.counts() == {"conv": 4}
    assert plan.sparsity() == pytest.approx(2 / 6)


def test_channel_twin_keeps_counts_and_is_seeded():
    plan = ChannelPlan({"conv1": (0, 1), "conv2": (0, 1, 2)})
    sizes = {"conv1": 4, "conv2": 6}
    twin = random_twin(plan, sizes, torch.Generator().manual_seed(3))
    assert twin.counts() == plan.counts()
    assert all(all(0 <= i < sizes[layer] for i in kept) for layer, kept in twin.kept.items())
    assert twin == random_twin(plan, sizes, torch.Generator().manual_seed(3))
    twins = {random_twin(plan, sizes, torch.Generator().manual_seed(seed)).kept["conv2"] for seed in range(20)}
    assert len(twins) > 1


def test_mask_twin_keeps_each_layers_count_and_shape():
    plan = keep_top_weights({"conv": torch.arange(6.0).reshape(2, 3), "fc": torch.arange(4.0)}, {"conv": 2, "fc": 3})
    twin = random_twin(plan, {}, torch.Generator().manual_seed(0))
    assert twin.counts() == plan.counts()
    assert {layer: tuple(mask.shape) for layer, mask in twin.masks.items()} == MASK_SHAPES
    assert random_twin(plan, {}, torch.Generator().manual_seed(0)).masks["conv"].equal(twin.masks["conv"])


def test_a_valid_plan_comes_back_with_sorted_indices():
    plan = validate_plan("m", ChannelPlan({"conv1": (3, 0), "conv2": (5, 1, 2)}), SHAPES, KEEP)
    assert plan.kept == {"conv1": (0, 3), "conv2": (1, 2, 5)}


@pytest.mark.parametrize("kept, message", [
    ({"conv9": (0,)}, "method 'm', layer 'conv9': not a prunable layer"),
    ({"conv1": (0.0, 1)}, "method 'm', layer 'conv1': channel indices must be integers"),
    ({"conv1": (True, 1)}, "method 'm', layer 'conv1': channel indices must be integers"),
    ({"conv1": (1, 1)}, "method 'm', layer 'conv1': channel indices must be unique"),
    ({"conv1": (0, 4)}, r"method 'm', layer 'conv1': channel index out of range 0\.\.3"),
    ({"conv1": (-1, 0)}, r"method 'm', layer 'conv1': channel index out of range"),
    ({"conv1": ()}, "method 'm', layer 'conv1': keeps no channel; at least one must stay"),
    ({"conv1": (0, 1, 2), "conv2": (0, 1, 2)}, "method 'm', layer 'conv1': keeps 3 channels but the target asks for 2"),
    ({"conv1": (0, 1)}, "method 'm', layer 'conv2': keeps 6 channels but the target asks for 3"),
])
def test_each_broken_channel_plan_is_rejected_naming_method_layer_and_rule(kept, message):
    with pytest.raises(BenchError, match=message):
        validate_plan("m", ChannelPlan(kept), SHAPES, KEEP)


def test_a_plan_of_the_wrong_type_is_rejected():
    with pytest.raises(BenchError, match="method 'm': returned dict, expected a ChannelPlan"):
        validate_plan("m", {"conv1": (0, 1)}, SHAPES, KEEP)
    with pytest.raises(BenchError, match=r"method 'u': returned ChannelPlan, expected a MaskPlan \(the method is registered as unstructured\)"):
        validate_plan("u", ChannelPlan({"conv": (0,)}), MASK_SHAPES, None, kind="unstructured")


@pytest.mark.parametrize("masks, message", [
    ({"conv": torch.ones(3, 2, dtype=torch.bool)}, r"layer 'conv': mask shape \(3, 2\) differs from the weight's \(2, 3\)"),
    ({"conv": torch.ones(2, 3)}, "layer 'conv': a mask must be a boolean tensor"),
    ({"conv": torch.zeros(2, 3, dtype=torch.bool)}, "layer 'conv': keeps no weight; at least one must stay"),
    ({"head": torch.ones(4, dtype=torch.bool)}, "layer 'head': not a prunable layer"),
    ({"conv": torch.ones(2, 3, dtype=torch.bool)}, "layer 'conv': keeps 6 weights but the target asks for 3"),
])
def test_each_broken_mask_plan_is_rejected(masks, message):
    with pytest.raises(BenchError, match=f"method 'u', {message}"):
        validate_plan("u", MaskPlan(masks), MASK_SHAPES, {"conv": 3, "fc": 4}, kind="unstructured")


def test_a_globally_ranked_plan_is_held_to_the_goal_instead_of_fixed_counts():
    def within_goal(counts):
        return None if sum(counts.values()) == 5 else f"keeps {sum(counts.values())} channels, the goal is 5"

    free = validate_plan("g", ChannelPlan({"conv1": (0,), "conv2": (0, 1, 2, 3)}), SHAPES, None, goal_miss=within_goal)
    assert free.counts() == {"conv1": 1, "conv2": 4}
    with pytest.raises(BenchError, match="method 'g': keeps 8 channels, the goal is 5"):
        validate_plan("g", ChannelPlan({"conv1": (0, 1)}), SHAPES, None, goal_miss=within_goal)
