"""Shared fixtures: the real digits track, and a results folder whose dense baseline is trained once;
a small digits track (:data:`SMALL_TRACK`, changed per module by ``SMALL_TRACK_CHANGES``) with its
dense baselines trained once per module."""

import json
import shutil
from pathlib import Path

import pytest

from harness.core.layout import ResultsLayout
from harness.track.definition import load_track, load_track_file

REPO = Path(__file__).resolve().parents[1]
TRACKS = REPO / "bench" / "tracks"

SMALL_TRACK = {
    "name": "small-digits",
    "description": "small digits track for tests: one method, one target, a few epochs",
    "data": {"dataset": "digits", "split_seed": 0, "val_size": 0.45, "test_size": 0.45},
    "model": {"name": "digits-cnn", "num_classes": 10, "input_shape": [1, 8, 8]},
    "recipe": {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4, "batch_size": 64, "epochs": 2, "milestones": [1]},
    "retraining": {"budgets": [1, 2], "schedules": ["none", "ft", "lrw", "slr", "clr"]},
    "pruning": {"methods": ["l1-norm"], "targets": [{"name": "half", "kind": "ratio", "ratio": 0.5}]},
    "seeds": {"dense": [0], "runs": [0, 1]},
}
"""What a test module's small track is unless its ``SMALL_TRACK_CHANGES`` says otherwise (a name, a
description, or keys of a section: ``{"recipe": {"epochs": 4}}`` changes only the epochs)."""


def toml_value(value) -> str:
    """The TOML of a track's values: strings, numbers, booleans, arrays and inline tables."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {toml_value(item)}" for key, item in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return json.dumps(value)


def small_track_toml(changes: dict) -> str:
    track = {key: {**value, **changes.get(key, {})} if isinstance(value, dict) else changes.get(key, value)
             for key, value in SMALL_TRACK.items()}
    lines = [f"{key} = {toml_value(value)}" for key, value in track.items() if not isinstance(value, dict)]
    for section, values in track.items():
        if isinstance(values, dict):
            lines += ["", f"[{section}]", *(f"{key} = {toml_value(value)}" for key, value in values.items())]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def digits_track():
    return load_track("digits-cnn", TRACKS)


@pytest.fixture(scope="session")
def trained_results(tmp_path_factory, digits_track):
    """A results folder holding the digits dense baseline (seed 0), trained once per test session.
    Shared by every test: tests that write records into a folder take :func:`digits_results`."""
    from harness.run.pipeline import Workspace

    results = tmp_path_factory.mktemp("results")
    Workspace(digits_track, ResultsLayout(results)).dense(0)
    return results


@pytest.fixture
def digits_results(trained_results, digits_track, tmp_path):
    """This test's own results folder, holding only the digits dense baseline of ``trained_results``."""
    dense = ResultsLayout(trained_results).dense(digits_track.name)
    results = tmp_path / "results"
    shutil.copytree(dense, ResultsLayout(results).dense(digits_track.name))
    return results


@pytest.fixture(scope="module")
def small_tracks(request, tmp_path_factory):
    """A tracks folder holding the module's small track (``SMALL_TRACK`` with its ``SMALL_TRACK_CHANGES``)."""
    changes = getattr(request.module, "SMALL_TRACK_CHANGES", {})
    folder = tmp_path_factory.mktemp("tracks")
    (folder / f"{changes.get('name', SMALL_TRACK['name'])}.toml").write_text(small_track_toml(changes))
    return folder


@pytest.fixture(scope="module")
def small_track(small_tracks):
    (path,) = small_tracks.glob("*.toml")
    return load_track_file(path)


@pytest.fixture(scope="module")
def small_dense(small_track, tmp_path_factory):
    """A results folder with every dense baseline of the module's small track, trained once per module."""
    from harness.run.pipeline import Workspace

    folder = tmp_path_factory.mktemp("dense")
    workspace = Workspace(small_track, ResultsLayout(folder))
    for seed in small_track.seeds.dense:
        workspace.dense(seed)
    return folder


@pytest.fixture
def small_results(small_dense, tmp_path):
    """This test's own copy of ``small_dense``."""
    return shutil.copytree(small_dense, tmp_path / "results")


@pytest.fixture(scope="session", autouse=True)
def one_intra_op_thread():
    """As the local executor does: tiny networks on 2 shared cores run fastest on one thread."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
