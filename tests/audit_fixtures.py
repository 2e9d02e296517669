"""Crafted run records for the audit's tests and benchmark: schema-valid, built in memory.

``fair_records`` is a set every rule must stay quiet on: two methods and their random twins on
one track, one target, two schedules and one budget, two dense checkpoints x three run seeds per
cell, equal budgets, protocols, compression and dense baselines, and clear gaps (alpha > beta >
twins, several points apart with a few tenths of a point of noise). Each rule's test changes one
thing in it.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np

from harness.run.record import Curves, Protocol, RunConfig, RunRecord

TRACK = "toy"
TARGET = "half"
BUDGET = 10
STEPS_PER_EPOCH = 20
DENSE_ACC = {0: 0.95, 1: 0.951}
PROTOCOL = Protocol(optimizer="sgd", momentum=0.9, nesterov=False, weight_decay=1e-4, batch_size=64,
                    crop_padding=1, horizontal_flip=False, peak_lr=0.1, warmup_epochs=1)
SEEDS = ((0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2))
MEANS = {("alpha", False): 0.93, ("beta", False): 0.90, ("alpha", True): 0.86, ("beta", True): 0.855}
SCHEDULE_SHIFT = {"ft": 0.0, "clr": 0.01}


def dense_hash(track: str, dense_seed: int) -> str:
    return f"{track}-dense-{dense_seed}"


def record(
    *, method: str, test_acc: float | None, seed: int, dense_seed: int = 0, twin: bool = False,
    track: str = TRACK, target: str = TARGET, schedule: str = "ft", budget: int = BUDGET,
    status: str = "ok", val_acc: float | None = None, **fields: Any,
) -> RunRecord:
    """A valid record (its id is its configuration's hash); ``fields`` override measurements."""
    config = RunConfig(track=track, dense_hash=fields.pop("dense_hash", dense_hash(track, dense_seed)),
                       dense_seed=dense_seed, method=method, twin=twin, target=target, schedule=schedule,
                       budget_epochs=budget, seed=seed, harness_version="test",
                       schedule_params=fields.pop("schedule_params", {}))
    ok = status == "ok"
    base = {
        "dense_test_acc": DENSE_ACC.get(dense_seed, 0.95), "dense_val_acc": DENSE_ACC.get(dense_seed, 0.95),
        "params_before": 24000, "params_after": 6000, "macs_before": 157312, "macs_after": 41792,
        "macs_total_before": 161152, "macs_total_after": 43712, "steps_per_epoch": STEPS_PER_EPOCH,
        "retrain_steps": budget * STEPS_PER_EPOCH if ok else 3, "protocol": PROTOCOL,
        "curves": Curves(val_acc=[round(0.5 + 0.01 * seed + 0.001 * dense_seed, 6), val_acc or 0.0] if ok else []),
    }
    base.update(fields)
    return RunRecord(**config.model_dump(), id=config.run_id, status=status,
                     test_acc=test_acc if ok else None,
                     val_acc=(val_acc if val_acc is not None else test_acc) if ok else None, **base)


def cell(method: str, values: Sequence[float], *, twin: bool = False, seeds: Sequence[tuple[int, int]] = SEEDS,
         val_values: Sequence[float] | None = None, **kwargs: Any) -> list[RunRecord]:
    """One cell's records, one value per (dense seed, seed)."""
    vals = val_values if val_values is not None else values
    return [record(method=method, twin=twin, test_acc=v, val_acc=w, dense_seed=d, seed=s, **kwargs)
            for v, w, (d, s) in zip(values, vals, seeds)]


def noisy(mean: float, n: int, seed: int, scale: float = 0.003) -> list[float]:
    rng = np.random.default_rng(seed)
    return [round(float(v), 6) for v in mean + scale * rng.standard_normal(n)]


def fair_records(track: str = TRACK, methods: Iterable[str] = ("alpha", "beta"),
                 schedules: Iterable[str] = ("ft", "clr"), means: dict[tuple[str, bool], float] | None = None,
                 **kwargs: Any) -> list[RunRecord]:
    records = []
    for method in methods:
        for twin in (False, True):
            for schedule in schedules:
                mean = (means or MEANS).get((method, twin), 0.85) + SCHEDULE_SHIFT.get(schedule, 0.0)
                values = noisy(mean, len(SEEDS), seed=hash_seed(track, method, twin, schedule))
                records += cell(method, values, twin=twin, schedule=schedule, track=track, **kwargs)
    return records


def hash_seed(*parts: Any) -> int:
    return sum((i + 1) * ord(ch) for i, ch in enumerate(":".join(map(str, parts))))


def replace_cell(records: list[RunRecord], method: str, schedule: str, twin: bool = False,
                 **updates: Any) -> list[RunRecord]:
    """The records with one cell's records rebuilt with ``updates`` (measurements only)."""
    out = []
    for r in records:
        if (r.method, r.schedule, r.twin) == (method, schedule, twin):
            r = r.model_copy(update=updates)
        out.append(r)
    return out


def synthetic_grid(n_records: int, seed: int = 0) -> list[RunRecord]:
    """A leaderboard-sized grid of schema-valid records (for the benchmark): 2 tracks, 12 methods
    and their twins, 4 schedules at 5 budgets plus one-shot, 2 targets, 5 seeds; cut to size."""
    rng = np.random.default_rng(seed)
    methods = [f"method-{i:02d}" for i in range(12)]
    records = []
    for track in ("bench-a", "bench-b"):
        for target in ("half", "quarter"):
            for m_index, method in enumerate(methods):
                for twin in (False, True):
                    settings = [("none", 0)] + [(s, b) for s in ("ft", "lrw", "slr", "clr") for b in (10, 20, 30, 40, 50)]
                    for schedule, budget in settings:
                        base = 0.9 - 0.004 * m_index - 0.01 * twin + 0.0003 * budget - (0.3 if budget == 0 else 0)
                        for s in range(5):
                            acc = float(min(1.0, max(0.0, base + 0.004 * rng.standard_normal())))
                            records.append(record(method=method, twin=twin, test_acc=round(acc, 6),
                                                  val_acc=round(acc + 0.001, 6), seed=s, track=track,
                                                  target=target, schedule=schedule, budget=budget))
    if len(records) < n_records:
        raise ValueError(f"the synthetic grid has {len(records)} records, fewer than {n_records}")
    return records[:n_records]
