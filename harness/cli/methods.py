"""Method commands: what methods exist, and what a plan does to a track's model -- counts and latency.

``bench flops`` and ``bench latency`` prune one model the way a run would. ``--method M --target X``
plans on the trained dense baseline, loaded from ``--results`` or trained there now (the output says
which; data-driven and globally ranking methods decide differently on untrained weights), and shows the
channels (or weights) kept per layer. A plugin that is not registered is found through its records'
``method_file`` in the methods folder. ``--plan NAME`` applies a named fixed configuration (e.g.
``pfec-b``) without a method, on the cached dense checkpoint if there is one, else the seeded
initialisation (its counts do not depend on the weights).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from harness.cli import common
from harness.core.errors import BenchError

if TYPE_CHECKING:
    import torch

    from harness.plans import Plan
    from harness.track.definition import Track


@common.user_errors
def methods(as_json: common.AsJson = False, wide: common.Wide = False) -> None:
    """List the registered pruning methods (with the plugins of --methods-dir)."""
    from harness.methods import list_methods

    rows = [{"name": m.name, "kind": m.kind, "needs_data": m.needs_data, "global_ranking": m.global_ranking,
             "pre_pruning_fraction": m.training.fraction if m.training else None, "rounds": m.rounds,
             "citation": m.citation} for m in list_methods()]
    if as_json:
        common.print_json(rows)
        return
    view = common.table("Pruning methods", ["name", "kind", "needs data", "global ranking", "trains", "citation"],
                        identifiers=("name", "kind"))
    for row in rows:
        view.add_row(row["name"], row["kind"], "yes" if row["needs_data"] else "no",
                     "yes" if row["global_ranking"] else "no", _training_text(row), row["citation"])
    common.print_table(view, wide)


def _training_text(row: dict) -> str:
    """What share of a run's budget the method spends itself: before pruning, and in rounds."""
    parts = []
    if row["pre_pruning_fraction"]:
        parts.append(f"{row['pre_pruning_fraction']:.0%} of the budget before pruning")
    if row["rounds"] > 1:
        parts.append(f"{row['rounds']} pruning rounds")
    return ", ".join(parts) or "no"


@dataclass(frozen=True)
class Pruned:
    dense: torch.nn.Module
    model: torch.nn.Module | None
    plan: Plan | None
    label: str | None
    weights: str

    def kept(self) -> dict[str, tuple[int, int]]:
        """Per pruned layer: units kept (output channels, or weights for a mask) and units before."""
        from harness.plans import MaskPlan

        if self.plan is None:
            return {}
        layers = dict(self.dense.named_modules())
        if isinstance(self.plan, MaskPlan):
            return {name: (int(mask.sum()), mask.numel()) for name, mask in self.plan.masks.items()}
        return {name: (len(indices), layers[name].weight.shape[0]) for name, indices in self.plan.kept.items()}


def _find_plugin(layout, track: str, method: str) -> None:
    """Register ``method`` from the file its records name, when it is not registered (one line naming
    --methods-dir when the file is not in the methods folder)."""
    import json

    from harness.methods.location import find_method, registered

    if registered(method):
        return
    recorded = None
    for path in layout.records(track):
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if raw.get("method") == method and raw.get("method_file"):
            recorded = raw["method_file"]
            break
    find_method(method, recorded)


def pruned_for_inspection(track: Track, plan_name: str | None, method: str | None, target: str | None,
                          seed: int, results: Path, device: str) -> Pruned:
    """The track's model before and after ``--plan`` or ``--method/--target``, without retraining."""
    from harness.core.layout import ResultsLayout
    from harness.dense.baseline import dense_hash, new_model
    from harness.methods import get_method
    from harness.plans import ChannelPlan
    from harness.prune.allocation import resolve_target
    from harness.prune.surgery import apply_plan
    from harness.run.pipeline import Workspace
    from harness.track.definition import Target

    if plan_name and (method or target):
        raise BenchError("give either --plan NAME or --method M --target X, not both")
    if bool(method) != bool(target):
        raise BenchError("--method and --target go together; give both")
    layout = ResultsLayout(results)
    if method:
        _find_plugin(layout, track.name, method)
    workspace = Workspace(track, layout, device=device)
    files = layout.dense_files(track.name, dense_hash(track, seed))
    cached = all(path.exists() for path in files)
    if method:  # a method decides on the trained weights, as in a run
        dense = workspace.dense_model(seed)
        weights = (f"trained dense baseline, loaded from {files[0]}" if cached
                   else f"trained dense baseline, trained now and cached at {files[0]}")
        if get_method(method).trains:
            weights += "; the method's criterion on it, without the training it does in a run"
    else:
        dense = workspace.dense_model(seed) if cached else new_model(track, seed).to(device)
        weights = "dense checkpoint" if cached else "seeded initialisation"
    if not (plan_name or method):
        return Pruned(dense, None, None, None, weights)
    model = copy.deepcopy(dense)
    if plan_name:
        fixed = Target(name=plan_name, kind="fixed", config=plan_name)
        keep = resolve_target(fixed, "structured", track.model.name, model, track.model.input_shape).keep
        plan: Plan = ChannelPlan({layer: tuple(range(count)) for layer, count in keep.items()})
        label = plan_name
    else:
        plan = workspace.make_plan(method, target, seed, model)
        label = f"{method} @ {target}"
    apply_plan(model, plan, workspace.example_input())
    return Pruned(dense, model, plan, label, weights)


def _counts_row(model: torch.nn.Module, plan: Plan | None, input_shape: tuple[int, int, int]) -> dict:
    from harness.plans import MaskPlan
    from harness.prune.counting import count, count_sparse

    counts = count(model, input_shape)
    row = {"params": counts.params, "macs": counts.macs_conv_linear, "macs_total": counts.macs,
           "nonzero_params": counts.nonzero_params}
    if isinstance(plan, MaskPlan):
        sparse = count_sparse(model, plan.masks, input_shape)
        row.update(sparsity=sparse.sparsity, theoretical_macs=sparse.theoretical_macs_conv_linear)
    return row


PlanName = Annotated[Optional[str], typer.Option("--plan", help="A named fixed configuration, e.g. pfec-a.")]
MethodName = Annotated[Optional[str], typer.Option("--method", help="Method to plan with (with --target).")]
TargetName = Annotated[Optional[str], typer.Option("--target", help="One of the track's targets (with --method).")]
DenseSeed = Annotated[int, typer.Option("--seed", help="Dense seed (and the method's seed).")]


@common.user_errors
def flops(
    track: common.TrackName = common.DEFAULT_TRACK, plan: PlanName = None, method: MethodName = None,
    target: TargetName = None, seed: DenseSeed = 0, results: common.ResultsDir = common.DEFAULT_RESULTS,
    as_json: common.AsJson = False,
) -> None:
    """Parameters and MACs (conv+linear, batch 1, fvcore) of a track's model before and after pruning,
    with the dense checkpoint cached under --results when there is one."""
    from harness.track.definition import load_track

    loaded = load_track(track)
    shape = loaded.model.input_shape
    pruned = pruned_for_inspection(loaded, plan, method, target, seed, results, "cpu")
    dense_row = _counts_row(pruned.dense, None, shape)
    pruned_row = _counts_row(pruned.model, pruned.plan, shape) if pruned.model is not None else None
    payload = {"track": loaded.name, "model": loaded.model.name, "plan": pruned.label, "weights": pruned.weights,
               "dense": dense_row, "pruned": pruned_row,
               "kept": {name: {"kept": k, "of": n} for name, (k, n) in pruned.kept().items()}}
    if pruned_row is not None:
        effective = pruned_row.get("theoretical_macs", pruned_row["macs"])
        payload["reduction"] = {"params": 1 - pruned_row["params"] / dense_row["params"],
                                "nonzero_params": 1 - pruned_row["nonzero_params"] / dense_row["nonzero_params"],
                                "macs": 1 - effective / dense_row["macs"]}
    if as_json:
        common.print_json(payload)
        return
    columns = ["", "params", "non-zero params", "MACs (conv+linear)", "MACs (fvcore total)"]
    view = common.table(f"{loaded.name} ({loaded.model.name}): {pruned.label or 'dense'}, weights: {pruned.weights}",
                        columns, right=tuple(columns))
    for name, row in (("dense", dense_row), ("pruned", pruned_row)):
        if row is not None:
            macs = f"{row['macs']:,}" + (f" ({row['theoretical_macs']:,} theoretical)" if "theoretical_macs" in row else "")
            view.add_row(name, f"{row['params']:,}", f"{row['nonzero_params']:,}", macs, f"{row['macs_total']:,}")
    common.out.print(view)
    _print_kept(pruned)


def _print_kept(pruned: Pruned) -> None:
    kept = pruned.kept()
    if not kept:
        return
    view = common.table(f"kept per layer ({pruned.label})", ["layer", "kept", "of", "kept %"], identifiers=("layer",),
                        right=("kept", "of", "kept %"))
    for name, (k, n) in kept.items():
        view.add_row(name, f"{k:,}", f"{n:,}", f"{100 * k / n:.1f}")
    common.out.print(view)


@common.user_errors
def latency(
    track: common.TrackName = common.DEFAULT_TRACK, plan: PlanName = None, method: MethodName = None,
    target: TargetName = None, seed: DenseSeed = 0, results: common.ResultsDir = common.DEFAULT_RESULTS,
    device: common.Device = "cpu",
    batch_size: int = typer.Option(1, help="Inputs per timed call."),
    warmup: int = typer.Option(10, help="Untimed calls first."),
    repeats: int = typer.Option(50, help="Timed calls."),
    as_json: common.AsJson = False,
) -> None:
    """Inference latency of a track's model before and after pruning: median and IQR over repeated calls."""
    common.check_device(device)
    from harness.prune.counting import count
    from harness.prune.latency import LatencySettings, compare_latency
    from harness.track.definition import load_track

    loaded = load_track(track)
    settings = LatencySettings(batch_size=batch_size, warmup=warmup, repeats=repeats)
    pruned = pruned_for_inspection(loaded, plan, method, target, seed, results, device)
    if pruned.model is None:
        raise BenchError("give --plan NAME or --method M --target X to compare against the dense model")
    shape = loaded.model.input_shape
    comparison = compare_latency(pruned.dense, pruned.model, shape, device, settings)
    dense_macs, pruned_macs = count(pruned.dense, shape).macs_conv_linear, count(pruned.model, shape).macs_conv_linear
    payload = {
        "track": loaded.name, "plan": pruned.label, "device": device, "batch_size": batch_size, "warmup": warmup,
        "repeats": repeats, "threads": comparison.dense.threads,
        "dense": {"median_ms": comparison.dense.median_ms, "iqr_ms": comparison.dense.iqr_ms, "macs": dense_macs},
        "pruned": {"median_ms": comparison.pruned.median_ms, "iqr_ms": comparison.pruned.iqr_ms, "macs": pruned_macs},
        "speedup": comparison.speedup, "macs_ratio": dense_macs / pruned_macs, "weights": pruned.weights,
        "kept": {name: {"kept": k, "of": n} for name, (k, n) in pruned.kept().items()},
    }
    if as_json:
        common.print_json(payload)
        return
    columns = ["", "median ms", "IQR ms", "MACs (conv+linear)"]
    view = common.table(f"{loaded.name}: {pruned.label} on {device}, batch {batch_size}, {repeats} timed calls",
                        columns, right=tuple(columns))
    for name in ("dense", "pruned"):
        row = payload[name]
        view.add_row(name, f"{row['median_ms']:.3f}", f"{row['iqr_ms']:.3f}", f"{row['macs']:,}")
    common.out.print(view)
    common.out.print(f"measured speed-up {comparison.speedup:.2f}x for a {payload['macs_ratio']:.2f}x MACs reduction")
    common.out.print(f"weights: {pruned.weights}", highlight=False, soft_wrap=True)
    _print_kept(pruned)
