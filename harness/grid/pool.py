"""Several runs in flight on one device: a pool of worker processes, each with its own workspace.

A small network at batch 64 leaves a GPU mostly idle, so one run at a time wastes it; several
processes keep it busy (on a GPU their kernels overlap only under NVIDIA MPS -- without it the
driver time-slices between processes and the gain is the overlap of their CPU-side work). Each
worker is a separate process (``spawn``, which CUDA needs) that loads the track's data once and
runs configurations from a shared queue one after another, exactly as ``LocalExecutor`` would
(under the ``fused`` engine the queue holds groups of likely partners, trained as one network):
a run's data order, augmentation draws and initial weights come from its own seeds, never from
which worker ran it or what ran before, so every record equals the sequential one (the wall
time aside). The driver loads or trains the dense baselines before starting the workers, so no
two workers train the same baseline.

Workers die with their driver: each asks the kernel for SIGKILL when its parent goes
(``PR_SET_PDEATHSIG``, Linux) and, everywhere, checks between runs and while it waits for work that
its parent is still the one that started it -- a driver killed with SIGKILL leaves no worker behind.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import traceback
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

from harness.core.errors import BenchError
from harness.core.layout import ResultsLayout
from harness.core.processes import call_with_parent, die_with_parent, parent_alive
from harness.dense.baseline import dense_hash
from harness.grid.local import LocalExecutor
from harness.methods import Method, ensure_registered, get_method
from harness.methods.exchange import Limits
from harness.methods.isolation import Isolation
from harness.prune.latency import LatencySettings
from harness.run.execution import execute_many, retraining_for
from harness.run.pipeline import Workspace
from harness.run.record import RunConfig, RunRecord
from harness.track.definition import Track
from harness.train.engines import EngineSettings

POLL_SECONDS = 1.0
"""How often the driver checks that its workers are alive while it waits for a record (and a waiting
worker that its driver is)."""


@dataclass(frozen=True)
class WorkerSettings:
    layout: ResultsLayout
    device: str
    threads: int
    latency: LatencySettings | None
    engine: EngineSettings
    methods: tuple[Method, ...]
    limits: Limits = Limits()


@dataclass
class PoolExecutor:
    """Runs configurations in ``workers`` processes on ``device``, with ``engine``'s training steps;
    records arrive as runs finish. One worker runs in this process, as ``LocalExecutor`` does."""

    layout: ResultsLayout
    device: str = "cpu"
    workers: int = 2
    threads: int = 1
    latency: LatencySettings | None = None
    engine: EngineSettings = EngineSettings()
    limits: Limits = Limits()
    """What a plugin's isolated child may use per plan."""

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise BenchError(f"--workers must be at least 1, got {self.workers}")

    def map(self, track: Track, configs: Sequence[RunConfig]) -> Iterator[RunRecord]:
        configs = list(configs)  # claims every run now: the queue, the count and the baselines must agree
        if not configs:
            return
        if self.workers == 1:
            yield from LocalExecutor(self.layout, self.device, self.threads, self.latency, self.engine,
                                     isolation=Isolation(self.limits)).map(track, configs)
            return
        _prepare_dense(track, self.layout, self.device, {c.dense_seed for c in configs})
        settings = WorkerSettings(self.layout, self.device, self.threads, self.latency, self.engine,
                                  tuple(get_method(name) for name in sorted({c.method for c in configs})), self.limits)
        context = multiprocessing.get_context("spawn")
        tasks, results = context.Queue(), context.Queue()
        chunks = _chunks(configs, self.engine)
        for chunk in chunks:
            tasks.put(chunk)
        count = min(self.workers, len(chunks))
        for _ in range(count):
            tasks.put(None)
        payload = pickle.dumps((track, settings))  # unpickled after the worker has asked to die with us
        processes = [context.Process(target=call_with_parent, daemon=False,
                                     args=(os.getpid(), f"{__name__}:_work", payload, tasks, results, os.getpid()))
                     for _ in range(count)]
        for process in processes:
            process.start()
        try:
            yield from _collect(results, processes, len(configs))
        finally:
            for process in processes:
                if process.is_alive():
                    process.terminate()
                process.join()


def _chunks(configs: Sequence[RunConfig], engine: EngineSettings) -> list[list[RunConfig]]:
    """What one worker takes at a time: a group's worth of runs likely to retrain together (one run, unless the
    engine fuses)."""
    retraining = retraining_for(engine)
    ordered, size = retraining.order(configs), retraining.group_size
    return [ordered[start:start + size] for start in range(0, len(ordered), size)]


def _prepare_dense(track: Track, layout: ResultsLayout, device: str, seeds: set[int]) -> None:
    """Train the dense baselines no record has yet, here, before any worker could race to train them."""
    missing = sorted(s for s in seeds
                     if not all(path.exists() for path in layout.dense_files(track.name, dense_hash(track, s))))
    if missing:
        workspace = Workspace(track, layout, device=device)
        for seed in missing:
            workspace.dense(seed)
        del workspace
        if device.startswith("cuda"):
            torch.cuda.empty_cache()  # the driver's cached blocks would otherwise stay reserved beside the workers


def _collect(results, processes, expected: int) -> Iterator[RunRecord]:
    received = 0
    while received < expected:
        try:
            kind, payload = results.get(timeout=POLL_SECONDS)
        except queue.Empty:
            dead = [p for p in processes if p.exitcode not in (None, 0)]
            if dead:
                raise BenchError(f"a pool worker died (exit code {dead[0].exitcode}) with runs unfinished; "
                                 f"rerun the command to resume, with fewer --workers if memory ran out") from None
            continue
        if kind == "bench-error":
            raise BenchError(payload)
        if kind == "error":
            raise BenchError(f"a pool worker failed outside a run's own code:\n{payload}")
        received += 1
        yield payload


def _next_chunk(tasks, parent: int):
    """The next chunk from the queue, or None when told to stop -- or when the driver is gone."""
    while parent_alive(parent):
        try:
            return tasks.get(timeout=POLL_SECONDS)
        except queue.Empty:
            continue
    return None


def _work(track: Track, settings: WorkerSettings, tasks, results, parent: int | None = None) -> None:
    """A worker's life: one workspace, then chunks of configurations until the queue says stop."""
    parent = os.getppid() if parent is None else parent
    die_with_parent(parent)
    torch.set_num_threads(settings.threads)
    ensure_registered(settings.methods)
    workspace = Workspace(track, settings.layout, device=settings.device, latency=settings.latency,
                          engine=settings.engine, isolation=Isolation(settings.limits))
    while (chunk := _next_chunk(tasks, parent)) is not None:
        try:
            for record in execute_many(workspace, chunk):
                results.put(("record", record))
        except BenchError as exc:  # a one-line fault (full disk, bad checkpoint): the driver says it as one line
            results.put(("bench-error", str(exc)))
            return
        except Exception:  # execute records a method's own failure; anything else stops the grid
            results.put(("error", traceback.format_exc(limit=-4)))
            return
