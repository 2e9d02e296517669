"""``bench perf``: reference-style pipeline vs the harness's path; ``bench perf-equivalence``: same accuracy?"""

from __future__ import annotations

from typing import Optional

import typer

from harness.cli import common
from harness.core.errors import BenchError


def _rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


@common.user_errors
def perf(
    models: Optional[str] = typer.Option(None, help="Comma-separated models (default: cifar-resnet56, cifar-vgg16)."),
    device: common.Device = "cpu",
    engine: str = typer.Option("graph", help=f"The single run's engine: "
                                             f"{' | '.join(e for e in common.ENGINES if e != 'fused')} "
                                             "(fused runs are timed with --fuse)."),
    bf16: bool = typer.Option(False, "--bf16", help="bf16 autocast on the harness path (not the protocol's fp32)."),
    track: str = typer.Option("cifar10-resnet56", help="Track whose recipe (optimizer, augmentation, batch size) "
                              "both paths train with."),
    batch_size: Optional[int] = typer.Option(None, help="Images per step (default: the track's; 16 with --tiny)."),
    steps: Optional[int] = typer.Option(None, help="Timed steps per path (default 200; 3 with --tiny)."),
    warmup: Optional[int] = typer.Option(None, help="Untimed steps first, where graphs are captured (default 20)."),
    loader_workers: Optional[int] = typer.Option(None, help="DataLoader workers of the reference (default 4)."),
    in_flight: int = typer.Option(1, help="Processes training at once for grid throughput."),
    fuse: int = typer.Option(1, help="Runs each grid process trains as one network (the fused engine)."),
    dataset: str = typer.Option("synthetic-cifar", help="synthetic-cifar, or cifar10 if it is on disk."),
    threads: common.Threads = 1,
    tiny: bool = typer.Option(False, "--tiny", help="ResNet-20, batch 16, 3 steps on 128 images: a CPU smoke run "
                              "(options given explicitly still apply)."),
    as_json: common.AsJson = False,
) -> None:
    """Time a reference-style pipeline and the harness's path on the same device (both run there) and images."""
    common.check_device(device)
    from harness.protocols.perf import PerfSettings, measure
    from harness.train.engines import EngineSettings

    common.set_threads(threads)
    given = {"models": tuple(common.split_list(models)) if models else None, "steps": steps, "warmup": warmup,
             "loader_workers": loader_workers, "batch_size": batch_size}
    chosen = dict(device=device, track=track, engine=EngineSettings(engine, bf16=bf16), in_flight=in_flight,
                  fuse=fuse,
                  dataset=dataset, **{k: v for k, v in given.items() if v is not None})
    settings = PerfSettings.tiny(**chosen) if tiny else PerfSettings(**chosen)
    report = measure(settings)
    if as_json:
        common.print_json(report.as_dict())
        return
    data = f"{report.dataset}{' (synthetic images)' if report.synthetic else ''}"
    columns = ["model", "path", "images/s", "s/epoch", "runs in flight", "run-epochs/h", "ratio"]
    view = common.table(f"{report.device_name} ({report.device}), torch {report.torch_version}, {data}, "
                        f"{report.track} recipe at batch {report.batch_size}, epoch = {report.epoch_images:,} images",
                        columns, identifiers=("model",), right=tuple(columns[2:]))
    view.caption = (f"reference: PIL transforms, {report.loader_workers} DataLoader workers, eager fp32; "
                    f"harness: data on the device, {report.engine} engine, {report.precision}"
                    + (f"; fused rows: the fused engine, {report.precision}"
                       if any(m.harness_grid.fused > 1 for m in report.models) else ""))
    for model in report.models:
        reference, harness = "reference", "harness"
        view.add_row(model.model, reference, _rate(model.reference.images_per_second),
                     f"{model.reference.seconds_per_epoch:.1f}", "1", _rate(model.reference_grid.run_epochs_per_hour),
                     "1.00x")
        view.add_row("", harness, _rate(model.harness.images_per_second), f"{model.harness.seconds_per_epoch:.1f}",
                     "1", _rate(model.harness.images_per_second * 3600 / report.epoch_images),
                     f"{model.single_run_ratio:.2f}x")
        grid = model.harness_grid
        if grid.runs_in_flight > 1:
            path = f"{harness}, {grid.fused} fused" if grid.fused > 1 else harness
            view.add_row("", path, _rate(grid.images_per_second), "",
                         str(grid.runs_in_flight), _rate(grid.run_epochs_per_hour),
                         f"{model.grid_ratio:.2f}x")
    common.out.print(view)


@common.user_errors
def perf_equivalence(
    track: common.TrackName = common.DEFAULT_TRACK,
    cifar_shaped: bool = typer.Option(False, "--cifar-shaped", help="The (CIFAR) track on synthetic CIFAR-shaped "
                                      "images with a short dense recipe, so it runs without CIFAR."),
    model: Optional[str] = typer.Option(None, help="With --cifar-shaped: another CIFAR model (e.g. cifar-resnet20)."),
    train_size: int = typer.Option(1000, help="With --cifar-shaped: training images (validation and test: half)."),
    dense_epochs: int = typer.Option(4, help="With --cifar-shaped: epochs of the shortened dense recipe."),
    engine: str = typer.Option("graph", help="The fast engine: graph | compile | fused (all seeds as one network)."),
    bf16: bool = typer.Option(False, "--bf16", help="bf16 autocast on the fast path."),
    seeds: str = typer.Option("0,1,2,3,4", help="Comma-separated run seeds."),
    schedule: str = typer.Option("ft", help="Retraining schedule."),
    budget: int = typer.Option(10, help="Retraining budget in epochs."),
    method: Optional[str] = typer.Option(None, help="Pruning method (default: the track's first)."),
    target: Optional[str] = typer.Option(None, help="Target (default: the track's first)."),
    margin: float = typer.Option(0.005, help="Equivalence margin in accuracy (0.005 = 0.5 points, the audit's)."),
    device: common.Device = "cpu",
    results: common.ResultsDir = common.DEFAULT_RESULTS,
    threads: common.Threads = 1,
    as_json: common.AsJson = False,
) -> None:
    """Retrain the same runs with the plain loop and a fast engine; paired TOST and Welch on test accuracy.
    Dense baselines are cached under --results; no run records are written."""
    common.check_device(device)
    from harness.core.layout import ResultsLayout
    from harness.protocols.equivalence import cifar_shaped_track, compare_engines
    from harness.track.definition import load_track
    from harness.train.engines import EngineSettings

    common.set_threads(threads)
    loaded = load_track(track)
    if not cifar_shaped and model is not None:
        raise BenchError("--model only applies with --cifar-shaped; the track fixes its model")
    if cifar_shaped:
        loaded = cifar_shaped_track(loaded, model, train_size, train_size // 2, dense_epochs)
    result = compare_engines(loaded, ResultsLayout(results), EngineSettings(engine, bf16=bf16),
                             common.split_list(seeds, int) or [], schedule, budget, method, target, device, margin)
    if as_json:
        common.print_json(result.as_dict())
        return
    columns = ["seed", "plain test acc", "fast test acc"]
    view = common.table(f"{result.track}{' (synthetic images)' if result.synthetic else ''}: {result.method} "
                        f"{result.target}, {result.schedule}@{result.budget}, plain loop vs {result.engine} "
                        f"({result.precision})", columns, right=tuple(columns))
    for seed, a, b in zip(result.seeds, result.plain, result.fast):
        view.add_row(str(seed), f"{100 * a:.2f}", f"{100 * b:.2f}")
    common.out.print(view)
    t = result.tost
    common.out.print(f"difference (fast - plain) {100 * t.difference:+.2f} points, 90% CI [{100 * t.ci_low:+.2f}, "
                     f"{100 * t.ci_high:+.2f}]; paired TOST at ±{100 * t.margin:.2f}: p = {t.pvalue:.3g} "
                     f"({'equivalent' if result.equivalent else 'not shown equivalent'}); "
                     f"Welch p = {result.welch.pvalue:.3g}", highlight=False)
