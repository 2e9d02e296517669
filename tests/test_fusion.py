"""Runs trained as one network give each run what training it alone gives, up to rounding."""

import copy
import json
import shutil
from dataclasses import replace

import pytest
import torch
from conftest import TRACKS
from typer.testing import CliRunner

from harness.cli import app
from harness.core.errors import BenchError
from harness.core.layout import ResultsLayout
from harness.core.seeding import generator
from harness.grid.driver import run_grid
from harness.grid.pool import PoolExecutor
from harness.grid.selection import expand, select
from harness.models import create_model
from harness.protocols import verify
from harness.protocols.equivalence import compare_engines
from harness.protocols.perf import PerfSettings, measure
from harness.protocols.verify import verify_results
from harness.run import execution as fused_grid
from harness.run.execution import execute, execute_group, execute_many, fusion_order
from harness.run.pipeline import Workspace, prune, retraining_steps
from harness.run.record import load_records
from harness.track.definition import load_track
from harness.train.checkpoints import FileCheckpoint
from harness.train.engines import EngineSettings, step_factory
from harness.train.fusion import FusedRun, FusedStep, train_fused
from harness.train.loop import eager_step, make_optimizer, train

FUSED = EngineSettings("fused")


def _configs(track, methods, schedules, budgets=(2,), seeds=(0,), twins=True, engine="eager"):
    return expand(track, select(track, methods=list(methods), targets=["uniform-50"], schedules=list(schedules),
                                budgets=list(budgets), seeds=list(seeds), twins=twins), engine=engine)


def _solo(workspace, config, pruned, values=None):
    """The plain loop on a copy of the pruned model: what the run gives when it trains alone."""
    model = copy.deepcopy(pruned.model)
    modules = dict(model.named_modules())
    result = train(model, workspace.splits.train, workspace.splits.val, workspace.track.recipe,
                   values or retraining_steps(workspace, config), generator(config.seed, "retrain-data"),
                   masks=[(modules[layer].weight, mask) for layer, mask in pruned.masks.items()],
                   make_step=step_factory(EngineSettings()))
    return model, result


def _fused(workspace, configs, pruned_models, values=None):
    runs = [FusedRun(copy.deepcopy(p.model), values[i] if values else retraining_steps(workspace, c),
                     generator(c.seed, "retrain-data"), p.masks)
            for i, (c, p) in enumerate(zip(configs, pruned_models))]
    results = train_fused(runs, workspace.splits.train, workspace.splits.val, workspace.track.recipe, FUSED)
    return [run.model for run in runs], results


def _assert_same_training(solo, fused, val_size):
    (solo_model, solo_result), (fused_model, fused_result) = solo, fused
    assert fused_result.status == solo_result.status and fused_result.steps == solo_result.steps
    assert fused_result.lr == solo_result.lr
    torch.testing.assert_close(fused_result.train_loss, solo_result.train_loss, rtol=1e-4, atol=1e-6)
    assert max(abs(a - b) for a, b in zip(fused_result.val_acc, solo_result.val_acc)) <= 1 / val_size
    for (name, p), q in zip(solo_model.state_dict().items(), fused_model.state_dict().values()):
        torch.testing.assert_close(q, p, rtol=1e-3, atol=1e-4, msg=name)


def test_a_plan_its_twin_and_other_schedules_train_as_one_network_as_they_train_alone(digits_track,
                                                                                      trained_results):
    workspace = Workspace(digits_track, ResultsLayout(trained_results))
    configs = _configs(digits_track, ["l1-norm"], ["clr", "ft"], seeds=(0, 3))
    pruned = [prune(workspace, c) for c in configs]
    models, results = _fused(workspace, configs, pruned)
    for config, prunedmodel, model, result in zip(configs, pruned, models, results):
        _assert_same_training(_solo(workspace, config, prunedmodel), (model, result), len(workspace.splits.val))


def test_masked_runs_keep_their_own_masks_through_fused_training(digits_track, trained_results):
    workspace = Workspace(digits_track, ResultsLayout(trained_results))
    configs = _configs(digits_track, ["magnitude-layerwise"], ["ft"], budgets=(1,))
    pruned = [prune(workspace, c) for c in configs]
    assert pruned[0].masks and not all(torch.equal(pruned[0].masks[k], pruned[1].masks[k]) for k in pruned[0].masks)
    models, results = _fused(workspace, configs, pruned)
    for config, prunedmodel, model, result in zip(configs, pruned, models, results):
        modules = dict(model.named_modules())
        for layer, mask in prunedmodel.masks.items():
            assert torch.all(modules[layer].weight[mask == 0] == 0)
        _assert_same_training(_solo(workspace, config, prunedmodel), (model, result), len(workspace.splits.val))


def test_a_diverging_run_is_recorded_diverged_and_leaves_its_partners_alone(digits_track, trained_results):
    workspace = Workspace(digits_track, ResultsLayout(trained_results))
    configs = _configs(digits_track, ["l1-norm"], ["ft"], budgets=(3,))
    pruned = [prune(workspace, c) for c in configs]
    normal = retraining_steps(workspace, configs[0])
    exploding = replace(normal, lr=tuple(1e6 for _ in normal.lr))
    models, results = _fused(workspace, configs, pruned, values=[exploding, normal])
    alone = _solo(workspace, configs[0], pruned[0], exploding)[1]
    assert results[0].status == alone.status == "diverged" and results[0].steps == alone.steps
    assert len(results[0].train_loss) == len(alone.train_loss) and results[0].val_acc == alone.val_acc
    _assert_same_training(_solo(workspace, configs[1], pruned[1]), (models[1], results[1]), len(workspace.splits.val))


def test_runs_of_different_architectures_or_lengths_are_not_fused(digits_track, trained_results):
    workspace = Workspace(digits_track, ResultsLayout(trained_results))
    (a,) = _configs(digits_track, ["l1-norm"], ["ft"], budgets=(1,), twins=False)
    (b,) = _configs(digits_track, ["magnitude-layerwise"], ["ft"], budgets=(2,), twins=False)
    pruned = [prune(workspace, a), prune(workspace, b)]
    with pytest.raises(ValueError, match="same architecture, masked layers and step count"):
        _fused(workspace, [a, b], pruned)


def test_a_grid_is_grouped_by_architecture_and_gives_the_records_of_single_fused_runs(digits_track, trained_results,
                                                                                       monkeypatch):
    configs = _configs(digits_track, ["l1-norm", "magnitude-layerwise"], ["ft", "clr"], budgets=(1,),
                       engine="fused")
    workspace = Workspace(digits_track, ResultsLayout(trained_results), engine=replace(FUSED, group_size=3))
    sizes = []
    retrain = fused_grid.retrain_fused
    monkeypatch.setattr(fused_grid, "retrain_fused", lambda ws, group: sizes.append(len(group)) or retrain(ws, group))
    grouped = {r.id: r for r in execute_many(workspace, configs)}
    assert sorted(grouped) == sorted(c.run_id for c in configs)
    assert sorted(sizes) == [1, 1, 3, 3], "each method's plan, twin and schedules share one architecture"
    alone = Workspace(digits_track, ResultsLayout(trained_results), engine=FUSED)
    for config in configs[:3]:
        record, solo = grouped[config.run_id], execute(alone, config)
        assert record.engine == "fused" and record.status == "ok"
        assert abs(record.test_acc - solo.test_acc) <= 2 / 359 and record.kept == solo.kept


def test_fusion_order_puts_a_plan_beside_its_twin(digits_track):
    configs = _configs(digits_track, ["l1-norm", "fpgm"], ["ft", "clr"], budgets=(1, 2), seeds=(0, 1))
    ordered = sorted(configs, key=fusion_order)
    for first, second in zip(ordered[::2], ordered[1::2]):
        assert (first.method, first.seed, first.schedule, first.budget_epochs) == \
               (second.method, second.seed, second.schedule, second.budget_epochs)
        assert (first.twin, second.twin) == (False, True)


def test_pool_workers_fuse_their_chunks(digits_track, trained_results):
    configs = _configs(digits_track, ["l1-norm"], ["ft", "clr"], budgets=(1,), engine="fused")
    engine = replace(FUSED, group_size=2)
    pooled = {r.id: r for r in PoolExecutor(ResultsLayout(trained_results), workers=2, engine=engine).map(digits_track, configs)}
    inline = {r.id: r for r in PoolExecutor(ResultsLayout(trained_results), workers=1, engine=engine).map(digits_track, configs)}
    assert sorted(pooled) == sorted(inline) == sorted(c.run_id for c in configs)
    for run_id, record in pooled.items():
        assert record.test_acc == inline[run_id].test_acc and record.curves == inline[run_id].curves


def test_fused_engine_is_equivalent_to_the_plain_loop_on_digits(digits_track, trained_results):
    result = compare_engines(digits_track, ResultsLayout(trained_results), FUSED, seeds=[0, 5, 10, 15], schedule="clr", budget=3)
    assert result.engine == "fused" and result.equivalent and result.welch.pvalue > 0.05
    assert max(abs(a - b) for a, b in zip(result.fast, result.plain)) <= 2 / 359


def test_bench_run_fuses_and_refuses_what_fusion_cannot_do(digits_track, trained_results, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(trained_results / "digits-cnn" / "dense", results / "digits-cnn" / "dense")
    grid = ["run", "--methods", "l1-norm", "--targets", "uniform-50", "--schedules", "ft,none", "--budgets", "1",
            "--seeds", "0", "--results", str(results), "--json"]
    done = CliRunner().invoke(app, [*grid, "--engine", "fused", "--group-size", "2"])
    assert done.exit_code == 0, done.output
    records = load_records(ResultsLayout(results), "digits-cnn")[0]
    assert len(records) == 4 and {r.engine for r in records} == {"fused"}
    assert json.loads(done.stdout)["written"] == 4
    for extra, message in ((["--group-size", "2"], "--group-size applies to the fused engine only"),
                           (["--group-size", "8"], "--group-size applies to the fused engine only"),
                           (["--engine", "fused", "--group-size", "0"], "--group-size must be at least 1"),
                           (["--engine", "fused", "--checkpoint-dir", str(tmp_path)], "drop --engine")):
        refused = CliRunner().invoke(app, [*grid, *extra])
        assert refused.exit_code == 2 and message in refused.output, refused.output


def test_a_fused_run_refuses_a_checkpoint(digits_track, trained_results, tmp_path):
    (config,) = _configs(digits_track, ["l1-norm"], ["ft"], budgets=(1,), twins=False, engine="fused")
    with pytest.raises(BenchError, match="fused runs keep no per-epoch checkpoints"):
        execute(Workspace(digits_track, ResultsLayout(trained_results), engine=FUSED), config,
                FileCheckpoint.for_run(tmp_path, config.run_id))


def test_perf_times_fused_runs_for_the_grid():
    report = measure(PerfSettings.tiny(fuse=2))
    grid = report.models[0].harness_grid
    assert (grid.runs_in_flight, grid.processes, grid.fused) == (2, 1, 2)
    assert grid.run_epochs_per_hour == pytest.approx(3600 * grid.images_per_second / 45_000)
    with pytest.raises(BenchError, match="time fused runs for the grid with --fuse"):
        PerfSettings.tiny(engine=FUSED)


@pytest.mark.parametrize("device", [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                  reason="CUDA graphs need a GPU; the CPU runs the step uncaptured")),
])
def test_fused_step_trains_like_separate_eager_steps_with_per_run_rates(device):
    """On CUDA the fused step replays graphs: one for full batches, one for an epoch's shorter last batch."""
    recipe = load_track("cifar10-resnet56", TRACKS).recipe
    models = []
    for seed in (0, 1, 2):
        torch.manual_seed(seed)
        models.append(create_model("cifar-resnet20", 10).to(device).train())
    fused_models = copy.deepcopy(models)
    eager = [eager_step(m, make_optimizer(m, recipe), ()) for m in models]
    fused = FusedStep(fused_models, [{}] * 3, recipe, FUSED)
    rates = torch.tensor([0.02, 0.01, 0.002], device=device)  # random labels at higher rates amplify rounding fast
    draw = torch.Generator(device).manual_seed(4)
    for size in (64, 64, 64, 16, 64, 16):
        x = torch.randn(3, size, 3, 32, 32, device=device, generator=draw)
        y = torch.randint(0, 10, (3, size), device=device, generator=draw)
        losses = fused(x, y, -rates, torch.full((3,), recipe.momentum, device=device)).clone()
        for index, step in enumerate(eager):
            torch.testing.assert_close(losses[index], step(x[index], y[index], rates[index].item(), None),
                                       rtol=1e-3, atol=1e-4)
    if device == "cuda":
        assert sorted(shape[1] for shape in fused.graphs) == [16, 64]
    fused.write_back(fused_models)
    for model, fused_model in zip(models, fused_models):
        for p, q in zip(model.state_dict().values(), fused_model.state_dict().values()):
            torch.testing.assert_close(q.float(), p.float(), rtol=1e-2, atol=1e-3)


def test_verify_reruns_a_fused_record_with_its_whole_group_bit_for_bit(digits_track, trained_results, tmp_path,
                                                                       monkeypatch):
    results = tmp_path / "results"
    shutil.copytree(trained_results / "digits-cnn" / "dense", results / "digits-cnn" / "dense")
    configs = _configs(digits_track, ["l1-norm"], ["clr"], budgets=(2,), seeds=(0, 1), engine="fused")
    run_grid(digits_track, configs, ResultsLayout(results), PoolExecutor(ResultsLayout(results), engine=FUSED))
    records = load_records(ResultsLayout(results), "digits-cnn")[0]
    assert all(sorted(r.fused_group) == sorted(c.run_id for c in configs) for r in records)
    repeated = []
    monkeypatch.setattr(verify, "execute_group",
                        lambda ws, configs: repeated.append(configs) or execute_group(ws, configs))
    checked = verify_results(ResultsLayout(results), rerun_count=2, seed=0)
    assert not checked.problems and len(checked.reruns) == 2
    assert len(repeated) == 1, "two records of one group: the group is retrained once"
    assert all(r.reproduced == r.stored for r in checked.reruns)
    (results / "digits-cnn" / f"{records[0].fused_group[-1]}.json").unlink()
    broken = verify_results(ResultsLayout(results), rerun_count=3, seed=0)
    assert any("restore it to rerun" in p.message for p in broken.problems)


def test_a_group_whose_runs_no_longer_share_an_architecture_is_refused_in_one_line(digits_track, trained_results):
    (a,) = _configs(digits_track, ["l1-norm"], ["ft"], budgets=(1,), twins=False, engine="fused")
    (b,) = _configs(digits_track, ["magnitude-layerwise"], ["ft"], budgets=(1,), twins=False, engine="fused")
    with pytest.raises(BenchError, match="no longer prune to one architecture"):
        execute_group(Workspace(digits_track, ResultsLayout(trained_results), engine=FUSED), [a, b])
