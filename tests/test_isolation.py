"""Plugin plans are computed in a limited child process: each failure is a ``failed`` record naming its
cause and limit, other records stay as they were, and a working plugin gets exactly its inputs."""

import hashlib
import json
import re
import shutil
import textwrap

import numpy as np
import pytest
import torch

from harness.core.errors import BenchError
from harness.core.layout import ResultsLayout
from harness.core.seeding import generator
from harness.grid.driver import run_grid
from harness.grid.local import LocalExecutor
from harness.grid.selection import Selection, expand
from harness.methods.exchange import Limits, plan_from_data, plan_to_data
from harness.methods.isolation import Isolation
from harness.methods.plugins import load_plugin
from harness.methods.sandbox import probe
from harness.methods.sources import harness_digest, weights_digest
from harness.plans import ChannelPlan, MaskPlan
from harness.prune.validation import validate_plan
from harness.run.execution import execute
from harness.run.pipeline import METHOD_BATCHES, Workspace
from harness.run.record import load_records, read_record, record_path

PLUGINS = {
    "probe-raises": ("""
        from harness.methods import register_method

        @register_method("probe-raises", kind="structured")
        def raises(ctx):
            raise ValueError("no scores for you")
        """, Limits(), r"raised ValueError: no scores for you at {path}:5$"),
    "probe-sleeps": ("""
        import time
        from harness.methods import register_method

        @register_method("probe-sleeps", kind="structured")
        def sleeps(ctx):
            time.sleep(600)
        """, Limits(wall_seconds=2), r"ran past the wall-clock limit of 2 s; the isolated process was killed$"),
    "probe-hogs": ("""
        import torch
        from harness.methods import register_method

        @register_method("probe-hogs", kind="structured")
        def hogs(ctx):
            return torch.ones(1 << 34, dtype=torch.uint8)
        """, Limits(memory_mb=256), r"ran out of memory at {path}:6: it hit the memory limit of 256 MiB .*"
                                    r"DefaultCPUAllocator: can't allocate memory"),
    "probe-spins": ("""
        from harness.methods import register_method

        @register_method("probe-spins", kind="structured")
        def spins(ctx):
            while True:
                pass
        """, Limits(cpu_seconds=1, wall_seconds=60), r"used more than the CPU-time limit of 1 s; killed by SIGXCPU$"),
}
INVALID = """
    from harness.methods import register_method
    from harness.plans import ChannelPlan

    @register_method("probe-invalid", kind="structured")
    def invalid(ctx):
        return ChannelPlan({name: tuple(range(count - 1, size + 1)) for name, count in ctx.keep.items()
                            for size in [ctx.sizes[name]]})
    """
PROBE = """
    import hashlib, json, os
    import torch
    from harness.methods import register_method

    @register_method("probe-random", kind="structured", needs_data=True)
    def probe_random(ctx):
        batches = list(ctx.train_batches())
        facts = {{"batches": len(batches), "shapes": [list(inputs.shape) for inputs, _ in batches],
                  "first": hashlib.sha256(batches[0][0].numpy().tobytes()).hexdigest(),
                  "cwd": os.getcwd(), "cwd_files": os.listdir("."), "model": type(ctx.model).__name__}}
        with open({log!r}, "a") as log:
            log.write(json.dumps(facts) + "\\n")
        return ctx.keep_top({{name: torch.rand(size, generator=ctx.generator, dtype=torch.float64)
                              for name, size in ctx.sizes.items()}})
    """


@pytest.fixture(scope="module")
def results(tmp_path_factory, digits_track, trained_results):
    """A results folder with the seed-0 dense baseline and one finished l1-norm run."""
    folder = tmp_path_factory.mktemp("isolation")
    shutil.copytree(trained_results / digits_track.name / "dense", folder / digits_track.name / "dense")
    run_grid(digits_track, configs(digits_track, "l1-norm"), ResultsLayout(folder), LocalExecutor(ResultsLayout(folder)))
    return folder


def configs(track, method, schedules=("none",), twins=False):
    return expand(track, Selection(methods=(method,), targets=("uniform-50",), schedules=schedules, budgets=(1,),
                                   seeds=(0,), twins=twins))


def plugin(folder, name, body):
    path = folder / f"{name.replace('-', '_')}.py"
    path.write_text(textwrap.dedent(body).lstrip())
    (method,) = load_plugin(path)
    return method, path


def snapshot(results, track):
    return {path.name: path.read_bytes() for path in (results / track.name).glob("*.json")}


@pytest.mark.parametrize("name", sorted(PLUGINS))
def test_a_plugin_that_fails_is_recorded_with_its_cause_and_limit_and_nothing_else_changes(
        tmp_path, results, digits_track, name):
    body, limits, expected = PLUGINS[name]
    method, path = plugin(tmp_path, name, body)
    before = snapshot(results, digits_track)
    (config,) = configs(digits_track, method.name)
    executor = LocalExecutor(ResultsLayout(results), isolation=Isolation(limits))
    outcome = run_grid(digits_track, [config], ResultsLayout(results), executor)
    (record,) = outcome.written
    assert record.status == "failed" and record.test_acc is None and record.retrain_steps is None
    assert record.error.startswith(f"method '{name}' ({path}): ")
    assert re.search(expected.format(path=re.escape(str(path))), record.error), record.error
    assert read_record(record_path(ResultsLayout(results), config)) == record
    assert record.method_digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert record.isolation == probe().level and record.harness_digest == harness_digest()
    assert record.dense_weights_sha256 == weights_digest(
        Workspace(digits_track, ResultsLayout(results)).dense(0).state_dict)
    after = snapshot(results, digits_track)
    assert {k: v for k, v in after.items() if k in before} == before
    assert set(after) - set(before) == {f"{config.run_id}.json"}
    assert load_records(ResultsLayout(results))[1] == []


def test_an_invalid_plan_from_a_plugin_is_refused_by_the_harness_validation(tmp_path, results, digits_track):
    method, _ = plugin(tmp_path, "probe-invalid", INVALID)
    before = snapshot(results, digits_track)
    (config,) = configs(digits_track, method.name)
    (record,) = run_grid(digits_track, [config], ResultsLayout(results), LocalExecutor(ResultsLayout(results))).written
    assert record.status == "failed"
    assert record.error == "method 'probe-invalid', layer 'features.0': channel index out of range 0..15"
    after = snapshot(results, digits_track)
    assert {k: v for k, v in after.items() if k in before} == before


def test_the_child_gets_the_model_and_bounded_training_batches_and_runs_once_per_seed_and_target(
        tmp_path, results, digits_track):
    log = tmp_path / "calls.jsonl"
    method, _ = plugin(tmp_path, "probe-random", PROBE.format(log=str(log)))
    # level rlimits: the probe writes what it was given into this test's folder, which a sandbox hides
    workspace = Workspace(digits_track, ResultsLayout(results), isolation=Isolation(level="rlimits"))
    model = workspace.dense_model(0)
    for twin in (False, True):
        assert workspace.make_plan(method.name, "uniform-50", 0, model, twin) == \
            workspace.make_plan("random", "uniform-50", 0, model, twin)
    grid = configs(digits_track, method.name, schedules=("none", "ft"), twins=True)
    records = [execute(workspace, config) for config in grid]
    assert [r.status for r in records] == ["ok"] * 4
    (facts,) = [json.loads(line) for line in log.read_text().splitlines()]
    first, _ = next(workspace.splits.train.batches(digits_track.recipe.batch_size, shuffle=True, augment=False,
                                                   generator=generator(0, "method-data")))
    assert facts["batches"] == METHOD_BATCHES and facts["shapes"] == [[64, 1, 8, 8]] * METHOD_BATCHES
    assert facts["first"] == hashlib.sha256(first.numpy().tobytes()).hexdigest()
    assert facts["model"] == "DigitsCNN" and facts["cwd_files"] == []
    assert str(results) not in facts["cwd"] and workspace.splits.test_reads == len(records)


def test_a_plan_travels_as_data_and_validation_sees_what_the_method_returned():
    shapes = {"conv": (4,), "fc": (2, 3)}
    channels = ChannelPlan({"conv": (0, 2)})
    masks = MaskPlan({"fc": torch.tensor([[True, False, True], [False, False, True]])})
    assert plan_from_data(plan_to_data(channels)) == channels
    assert plan_from_data(plan_to_data(masks)) == masks
    refused = {
        "returned dict, expected a ChannelPlan": {"conv": [0, 2]},
        "layer 'conv': channel indices must be integers": ChannelPlan({"conv": (np.int64(0), 2)}),
        "layer 'conv': channel index out of range 0..3": ChannelPlan({"conv": (0, 4)}),
    }
    for message, plan in refused.items():
        with pytest.raises(BenchError, match=re.escape(message)):
            validate_plan("m", plan_from_data(plan_to_data(plan)), shapes, None)
    with pytest.raises(BenchError, match="layer 'fc': a mask must be a boolean tensor"):
        validate_plan("m", plan_from_data(plan_to_data(MaskPlan({"fc": torch.ones(2, 3)}))), shapes, None,
                      kind="unstructured")
