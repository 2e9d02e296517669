"""The fast engines compute the plain loop's step: torch's SGD update, masks, data order, checkpoints, records."""

import copy
import shutil
from dataclasses import replace

import pytest
import torch
from typer.testing import CliRunner

from harness.cli import app
from harness.core.errors import BenchError
from harness.core.layout import ResultsLayout
from harness.core.seeding import generator
from harness.grid.local import LocalExecutor
from harness.grid.pool import PoolExecutor
from harness.grid.selection import expand, select
from harness.models import create_model
from harness.run.execution import execute
from harness.run.pipeline import Workspace, prune, retraining_steps
from harness.run.record import load_records
from harness.train.engines import (
    CompileCache,
    EngineSettings,
    FastStep,
    architecture_key,
    forward_loss,
    sgd_update,
    step_factory,
)
from harness.train.loop import eager_step, train


def _model(name="digits-cnn", seed=0):
    torch.manual_seed(seed)
    return create_model(name, 10).train()


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("weight_decay", [0.0, 1e-4])
def test_sgd_update_is_torch_sgd_with_per_step_lr_and_momentum(nesterov, weight_decay):
    draw = torch.Generator().manual_seed(0)
    params = [torch.randn(4, 3, generator=draw), torch.randn(5, generator=draw)]
    reference = [p.clone().requires_grad_() for p in params]
    optimizer = torch.optim.SGD(reference, lr=0.1, momentum=0.9, nesterov=nesterov, weight_decay=weight_decay)
    buffers = [torch.zeros_like(p) for p in params]
    neg_lr, momentum = torch.zeros(()), torch.zeros(())
    for lr, beta in ((0.1, 0.95), (0.05, 0.9), (0.01, 0.85)):
        grads = [torch.randn(p.shape, generator=draw) for p in params]
        for p, g in zip(reference, grads):
            p.grad = g.clone()
        optimizer.param_groups[0].update(lr=lr, momentum=beta)
        optimizer.step()
        neg_lr.fill_(-lr)
        momentum.fill_(beta)
        sgd_update(params, grads, buffers, neg_lr, momentum, weight_decay, nesterov)
    for mine, theirs in zip(params, reference):
        torch.testing.assert_close(mine, theirs.detach(), rtol=1e-6, atol=1e-7)
    for mine, theirs in zip(buffers, reference):
        torch.testing.assert_close(mine, optimizer.state[theirs]["momentum_buffer"], rtol=1e-6, atol=1e-7)


def test_first_fast_step_equals_the_eager_step():
    eager_model = _model()
    fast_model = copy.deepcopy(eager_model)
    recipe_like = dict(lr=0.1, momentum=0.9, weight_decay=1e-4)
    eager_optimizer = torch.optim.SGD(eager_model.parameters(), **recipe_like)
    fast_optimizer = torch.optim.SGD(fast_model.parameters(), **recipe_like)
    x, y = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(1)), torch.arange(16) % 10
    eager_loss = eager_step(eager_model, eager_optimizer, ())(x, y, 0.05, None)
    fast_loss = FastStep(fast_model, fast_optimizer, (), EngineSettings("graph", channels_last=False))(x, y, 0.05, None)
    assert fast_loss.item() == eager_loss.item()
    for p, q in zip(eager_model.parameters(), fast_model.parameters()):
        assert torch.equal(eager_optimizer.state[p]["momentum_buffer"], fast_optimizer.state[q]["momentum_buffer"])
        torch.testing.assert_close(p, q, rtol=0, atol=1e-7)
    assert fast_optimizer.param_groups[0]["lr"] == 0.05


def test_fast_step_keeps_masked_weights_zero_in_channels_last():
    model = _model()
    weight = model.features[0].weight
    mask = (torch.arange(weight.numel()) % 3 != 0).float().view_as(weight)
    with torch.no_grad():
        weight.mul_(mask)
    step = FastStep(model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), [(weight, mask)],
                    EngineSettings("graph"))
    assert weight.is_contiguous(memory_format=torch.channels_last)
    draw = torch.Generator().manual_seed(2)
    for _ in range(3):
        step(torch.randn(8, 1, 8, 8, generator=draw), torch.randint(0, 10, (8,), generator=draw), 0.1, None)
    assert torch.all(weight[mask == 0] == 0) and torch.all(weight[mask == 1] != 0)


def test_fast_step_adopts_loaded_momentum_buffers():
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    first = next(model.parameters())
    optimizer.state[first]["momentum_buffer"] = torch.ones_like(first)
    step = FastStep(model, optimizer, (), EngineSettings("graph", channels_last=False))
    assert step.buffers[0] is optimizer.state[first]["momentum_buffer"]
    assert all(torch.count_nonzero(b) == 0 for b in step.buffers[1:])


def test_engine_settings_name_the_precision_and_refuse_what_they_cannot_do():
    assert EngineSettings().precision == "fp32" and EngineSettings("graph", bf16=True).precision == "bf16-autocast"
    with pytest.raises(BenchError, match="unknown engine 'fast'"):
        EngineSettings("fast")
    with pytest.raises(BenchError, match="--engine graph"):
        EngineSettings("eager", bf16=True)
    assert step_factory(EngineSettings()) is eager_step


def test_architecture_key_ignores_weights_and_sees_pruning():
    assert architecture_key(_model(seed=0)) == architecture_key(_model(seed=1))
    narrower = _model()
    narrower.classifier = torch.nn.Linear(64, 9)
    assert architecture_key(narrower) != architecture_key(_model())


class MemoryCheckpoint:
    def __init__(self):
        self.saved = []

    def load(self):
        return self.saved[-1] if self.saved else None

    def save(self, state):
        self.saved.append(copy.deepcopy(state))


@pytest.fixture(scope="module")
def digits_run(digits_track, trained_results):
    workspace = Workspace(digits_track, ResultsLayout(trained_results))
    config = expand(digits_track, select(digits_track, methods=["l1-norm"], targets=["uniform-50"],
                                         schedules=["clr"], budgets=[3], seeds=[0], twins=False))[0]
    return workspace, config, prune(workspace, config)


def _retrain(workspace, config, pruned, make_step, checkpoint=None, epochs=None):
    model = copy.deepcopy(pruned.model)
    values = retraining_steps(workspace, config)
    if epochs is not None:
        values = replace(values, lr=values.lr[:epochs * values.steps_per_epoch],
                         momentum=values.momentum[:epochs * values.steps_per_epoch])
    data = generator(config.seed, "retrain-data")
    result = train(model, workspace.splits.train, workspace.splits.val, workspace.track.recipe, values, data,
                   masks=(), checkpoint=checkpoint, make_step=make_step)
    return model, result, data


def test_graph_engine_trains_like_the_plain_loop_on_the_same_batches(digits_run):
    workspace, config, pruned = digits_run
    plain_model, plain, plain_data = _retrain(workspace, config, pruned, eager_step)
    fast_model, fast, fast_data = _retrain(workspace, config, pruned, step_factory(EngineSettings("graph")))
    assert torch.equal(plain_data.get_state(), fast_data.get_state())  # the same shuffles and augmentation draws
    assert fast.steps == plain.steps and fast.lr == plain.lr and fast.status == plain.status == "ok"
    torch.testing.assert_close(fast.train_loss, plain.train_loss, rtol=1e-4, atol=0)
    assert max(abs(a - b) for a, b in zip(fast.val_acc, plain.val_acc)) <= 1 / len(workspace.splits.val)
    for p, q in zip(plain_model.state_dict().values(), fast_model.state_dict().values()):
        torch.testing.assert_close(p, q, rtol=1e-3, atol=1e-4)


def test_graph_engine_resumes_from_a_checkpoint_bit_for_bit(digits_run):
    workspace, config, pruned = digits_run
    make_step = step_factory(EngineSettings("graph"))
    whole_model, whole, _ = _retrain(workspace, config, pruned, make_step)
    checkpoint = MemoryCheckpoint()
    _retrain(workspace, config, pruned, make_step, checkpoint, epochs=2)
    checkpoint.saved = checkpoint.saved[:1]  # killed after its first epoch
    resumed_model, resumed, _ = _retrain(workspace, config, pruned, make_step, checkpoint)
    assert resumed.train_loss == whole.train_loss and resumed.val_acc == whole.val_acc
    for p, q in zip(whole_model.state_dict().values(), resumed_model.state_dict().values()):
        assert torch.equal(p, q)


def test_records_say_which_engine_and_precision_ran(digits_track, trained_results, digits_run):
    _, config, _ = digits_run
    plain = execute(Workspace(digits_track, ResultsLayout(trained_results)), config)
    fast = execute(Workspace(digits_track, ResultsLayout(trained_results), engine=EngineSettings("graph")),
                   config.model_copy(update={"engine": "graph"}))
    bf16 = execute(Workspace(digits_track, ResultsLayout(trained_results), engine=EngineSettings("graph", bf16=True)),
                   config.model_copy(update={"engine": "graph", "precision": "bf16-autocast"}))
    assert (plain.engine, plain.precision) == ("eager", "fp32")
    assert (fast.engine, fast.precision) == ("graph", "fp32")
    assert (bf16.engine, bf16.precision) == ("graph", "bf16-autocast") and bf16.status == "ok"
    assert len({plain.id, fast.id, bf16.id}) == 3, "engine and precision are part of a run's identity"
    assert abs(fast.test_acc - plain.test_acc) <= 2 / 359
    with pytest.raises(BenchError, match="asks for the eager/fp32 engine"):
        execute(Workspace(digits_track, ResultsLayout(trained_results), engine=EngineSettings("graph")), config)


def test_pool_of_workers_writes_the_records_a_sequential_run_writes(digits_track, trained_results):
    configs = expand(digits_track, select(digits_track, methods=["l1-norm"], targets=["uniform-50"],
                                          schedules=["ft", "clr"], budgets=[1], seeds=[0, 1]))
    sequential = {r.id: r for r in LocalExecutor(ResultsLayout(trained_results)).map(digits_track, configs)}
    pooled = list(PoolExecutor(ResultsLayout(trained_results), workers=2).map(digits_track, configs))
    assert sorted(r.id for r in pooled) == sorted(sequential)
    varying = {"wall_seconds"}
    for record in pooled:
        assert record.model_dump(exclude=varying) == sequential[record.id].model_dump(exclude=varying)


def test_pool_refuses_zero_workers(trained_results):
    with pytest.raises(BenchError, match="--workers must be at least 1"):
        PoolExecutor(ResultsLayout(trained_results), workers=0)


@pytest.mark.slow
def test_compiled_step_is_built_once_per_architecture_and_matches_eager():
    """Cold inductor compiles take ~40 s on 2 cores (seconds once its on-disk cache is warm): one tiny model only."""
    cache = CompileCache()
    make_step = step_factory(EngineSettings("compile", channels_last=False), cache)
    draw = torch.Generator().manual_seed(3)
    x, y = torch.randn(32, 1, 8, 8, generator=draw), torch.randint(0, 10, (32,), generator=draw)
    for seed in (0, 1):
        eager_model = _model(seed=seed)
        compiled_model = copy.deepcopy(eager_model)
        eager = eager_step(eager_model, make_optimizer_like(eager_model), ())
        compiled = make_step(compiled_model, make_optimizer_like(compiled_model), ())
        for lr in (0.1, 0.05):
            torch.testing.assert_close(compiled(x, y, lr, 0.9), eager(x, y, lr, 0.9), rtol=1e-5, atol=1e-6)
        for p, q in zip(eager_model.parameters(), compiled_model.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-6)
    assert len(cache.entries) == 1
    torch.testing.assert_close(cache.entries[next(iter(cache.entries))](_model(), x, y), forward_loss(_model(), x, y))


def make_optimizer_like(model):
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)


def test_bench_run_takes_the_engine_and_refuses_it_with_ray(digits_track, trained_results, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(trained_results / "digits-cnn" / "dense", results / "digits-cnn" / "dense")
    grid = ["run", "--methods", "l1-norm", "--targets", "uniform-50", "--schedules", "ft", "--budgets", "1",
            "--seeds", "0", "--no-twins", "--results", str(results), "--json"]
    done = CliRunner().invoke(app, [*grid, "--engine", "graph"])
    assert done.exit_code == 0, done.output
    (record,) = load_records(ResultsLayout(results), "digits-cnn")[0]
    assert record.engine == "graph" and record.precision == "fp32"
    refused = CliRunner().invoke(app, [*grid, "--engine", "graph", "--executor", "ray"])
    assert refused.exit_code == 2 and "apply with --executor local" in refused.output


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU; the CPU runs the same step uncaptured")
@pytest.mark.parametrize("engine", ["graph", "compile"])
def test_cuda_graph_replays_train_like_the_eager_step_on_the_gpu(engine):
    eager_model = _model("cifar-resnet20").cuda()
    graph_model = copy.deepcopy(eager_model)
    eager = eager_step(eager_model, make_optimizer_like(eager_model), ())
    graphed = step_factory(EngineSettings(engine), CompileCache())(graph_model, make_optimizer_like(graph_model), ())
    draw = torch.Generator("cuda").manual_seed(4)
    for size in (64, 64, 64, 16, 64, 16):  # full batches and an epoch's shorter last batch: two graphs
        x = torch.randn(size, 3, 32, 32, device="cuda", generator=draw)
        y = torch.randint(0, 10, (size,), device="cuda", generator=draw)
        torch.testing.assert_close(graphed(x, y, 0.01, 0.9).clone(), eager(x, y, 0.01, 0.9), rtol=1e-2, atol=1e-3)
    assert sorted(shape[0] for shape in graphed.graphs) == [16, 64]
    for p, q in zip(eager_model.state_dict().values(), graph_model.state_dict().values()):
        torch.testing.assert_close(p.float(), q.float(), rtol=1e-2, atol=1e-3)
