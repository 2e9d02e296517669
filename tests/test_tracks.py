"""Track files: every shipped track parses, and a malformed one is one line naming file and key."""

import pytest
from conftest import TRACKS

from harness.core.errors import BenchError
from harness.track.definition import list_tracks, load_track, load_track_file

SHIPPED = {"digits-cnn", "cifar10-resnet56", "cifar10-resnet110", "cifar10-vgg16", "cifar100-resnet56",
           "imagenet-resnet34", "imagenet-resnet50", "fashion-resnet20"}


def test_every_shipped_track_parses():
    assert SHIPPED <= {t.name for t in list_tracks(TRACKS)}


def test_cifar_tracks_carry_the_cifar_recipe():
    recipe = load_track("cifar10-resnet56", TRACKS).recipe
    assert (recipe.lr, recipe.momentum, recipe.weight_decay, recipe.batch_size, recipe.epochs) == (0.1, 0.9, 1e-4, 64, 160)
    assert recipe.milestones == (80, 120) and recipe.final_lr == 0.001
    assert recipe.augmentation.crop_padding == 4 and recipe.augmentation.horizontal_flip


def test_imagenet_tracks_carry_the_imagenet_recipe():
    recipe = load_track("imagenet-resnet50", TRACKS).recipe
    assert (recipe.batch_size, recipe.lr, recipe.epochs, recipe.milestones) == (256, 0.1, 90, (30, 60))


def _write(tmp_path, text, name="broken"):
    source = (TRACKS / "digits-cnn.toml").read_text().replace('name = "digits-cnn"', f'name = "{name}"')
    path = tmp_path / f"{name}.toml"
    path.write_text(text(source))
    return path


@pytest.mark.parametrize("edit, key, expected", [
    (lambda s: s.replace("lr = 0.1", 'lr = "fast"'), "recipe.lr", "valid number"),
    (lambda s: s.replace("batch_size = 64\n", ""), "recipe.batch_size", "Field required"),
    (lambda s: s.replace("gamma = 0.1", "gamma = 0.1\nwarmup = 3"), "recipe.warmup", "Extra inputs"),
    (lambda s: s.replace("milestones = [20, 30]", "milestones = [30, 20]"), "recipe", "milestones must be increasing"),
    (lambda s: s.replace('"ft", "lrw"', '"ft", "cosine"'), "retraining", "unknown schedule 'cosine'"),
    (lambda s: s.replace("ratio = 0.5", "ratio = 1.5"), "pruning.targets.0.ratio", "less than 1"),
    (lambda s: s.replace("fraction = 0.5", "fraction = 1.5"), "pruning.targets.4.fraction",
     "fraction must be in (0, 1): the share of all prunable channels to remove, e.g. 0.5, got 1.5"),
    (lambda s: s.replace(', fraction = 0.5', ''), "pruning.targets.4", "a target of kind 'channels' needs 'fraction'"),
])
def test_a_malformed_track_names_the_file_and_the_key(tmp_path, edit, key, expected):
    path = _write(tmp_path, edit)
    with pytest.raises(BenchError) as info:
        load_track_file(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: key '{key}'") and expected in message


def test_invalid_toml_and_a_wrong_name_are_clear(tmp_path):
    with pytest.raises(BenchError, match="not valid TOML"):
        load_track_file(_write(tmp_path, lambda s: s + "\n[[["))
    with pytest.raises(BenchError, match="must equal the file name"):
        load_track_file(_write(tmp_path, lambda s: s.replace('name = "broken"', 'name = "other"')))


def test_unknown_track_lists_the_known_ones():
    with pytest.raises(BenchError, match="unknown track 'cifar11'.*digits-cnn"):
        load_track("cifar11", TRACKS)


def test_imagenet_per_step_schedules_need_no_data_on_disk(monkeypatch, tmp_path):
    from harness.data import training_examples
    from harness.run.pipeline import data_spec
    from harness.train.loop import steps_per_epoch

    monkeypatch.setenv("PRUNE_BENCH_DATA", str(tmp_path))  # nothing there
    track = load_track("imagenet-resnet34", TRACKS)
    examples = training_examples(data_spec(track))
    assert examples == 1_281_167 - 10_000  # ILSVRC-2012's training images less the validation carve
    assert steps_per_epoch(examples, track.recipe.batch_size) == 4966
    assert 45 in track.retraining.budgets and {"pfec-a", "pfec-b"} <= {t.name for t in track.pruning.targets}
