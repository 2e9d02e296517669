"""Shared fixtures: the real digits track, and a results folder whose dense baseline is trained once."""

from pathlib import Path

import pytest

from harness.core.layout import ResultsLayout
from harness.track.definition import load_track

REPO = Path(__file__).resolve().parents[1]
TRACKS = REPO / "bench" / "tracks"


@pytest.fixture(scope="session")
def digits_track():
    return load_track("digits-cnn", TRACKS)


@pytest.fixture(scope="session")
def trained_results(tmp_path_factory, digits_track):
    """A results folder holding the digits dense baseline (seed 0), trained once per test session."""
    from harness.run.pipeline import Workspace

    results = tmp_path_factory.mktemp("results")
    Workspace(digits_track, ResultsLayout(results)).dense(0)
    return results


@pytest.fixture(scope="session", autouse=True)
def one_intra_op_thread():
    """As the local executor does: tiny networks on 2 shared cores run fastest on one thread."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
