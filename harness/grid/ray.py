"""Runs as Ray tasks: the same grid on one machine or a whole cluster.

Each run is one Ray task asking for its share of a GPU, its CPUs and its memory, so
``gpus_per_run=0.25`` puts four small runs on one GPU. The driver -- the process that calls
``run_grid`` -- loads or trains the dense baselines first and ships them through Ray's object
store, and records come back as tasks finish, so the driver writes each one at once and workers
need neither the results folder nor a shared filesystem. Without an address a local Ray instance
is started, so the same command works on one machine.

Failures. A worker process or node that dies (killed, preempted, out of memory) is a system
failure: Ray reruns the task, at most ``max_retries`` times, and the rerun continues from the
run's last per-epoch checkpoint if it can read the checkpoint folder (on the same node always, on
any node when the folder is shared). A run that raises is at fault itself: it is recorded as
``failed`` with the worker's traceback and not retried blindly (``bench run --retry-failed``
reruns it on purpose); so is a run whose worker died more than ``max_retries`` times. A killed
driver loses only the runs in flight: rerunning the command skips every run with a record.

Tuning studies run on the same connection and resources through ``harness.tune.ray``.

Ray is an optional extra (``pip install prune-bench[ray]``); only this module imports it.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch

from harness.core.errors import BenchError
from harness.core.layout import ResultsLayout
from harness.dense.baseline import DenseBaseline
from harness.methods import Method, ensure_registered, get_method
from harness.prune.latency import LatencySettings
from harness.run.execution import execute
from harness.run.pipeline import Workspace
from harness.run.record import RunConfig, RunRecord
from harness.track.definition import Track
from harness.train.checkpoints import FileCheckpoint

try:
    import ray
    from ray import cloudpickle
    from ray.exceptions import (
        NodeDiedError,
        OutOfMemoryError,
        RayError,
        RayTaskError,
        WorkerCrashedError,
    )
except ImportError:
    raise BenchError("the Ray executor needs Ray; install it with pip install 'prune-bench[ray]'") from None

GIB = 2**30
TERMINAL_COLOURS = re.compile(r"\x1b\[[0-9;]*m")
WORKER_DIED = (WorkerCrashedError, NodeDiedError, OutOfMemoryError)


@dataclass(frozen=True)
class WorkerSettings:
    """What every task of one executor shares, besides its own configuration."""

    device: str
    threads: int
    latency: LatencySettings | None
    checkpoints: str | None


@dataclass
class RayExecutor:
    """Runs each configuration as a Ray task; see the module docstring for resources and failures.

    ``address`` is ``None`` (start a local Ray instance with ``local_cpus`` CPUs, default all),
    ``"auto"`` (the cluster this machine belongs to) or ``"HOST:PORT"`` of a head node; a Ray
    connection already open in this process is used as it is. Runs use the GPU when
    ``gpus_per_run > 0`` and as many intra-op threads as whole CPUs they ask for.
    ``memory_per_run`` is in GiB: Ray schedules by it, it does not cap a run. Checkpoints go to
    ``checkpoint_folder`` (default: the layout's checkpoints folder of the track), a path every worker can write.
    """

    layout: ResultsLayout
    address: str | None = None
    gpus_per_run: float = 0.0
    cpus_per_run: float = 1.0
    memory_per_run: float | None = None
    max_retries: int = 2
    latency: LatencySettings | None = None
    checkpoint_folder: Path | None = None
    local_cpus: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.gpus_per_run <= 1:
            raise BenchError(f"--gpus-per-run must be a share of one GPU, from 0 to 1 (a run uses one GPU), "
                             f"got {self.gpus_per_run}")
        if self.cpus_per_run <= 0:
            raise BenchError(f"--cpus-per-run must be positive, got {self.cpus_per_run}")
        if self.memory_per_run is not None and self.memory_per_run <= 0:
            raise BenchError(f"--memory-per-run must be a positive number of GiB, got {self.memory_per_run}")
        if self.max_retries < 0:
            raise BenchError(f"--max-retries must be 0 or more, got {self.max_retries}")

    @property
    def device(self) -> str:
        return "cuda" if self.gpus_per_run > 0 else "cpu"

    def map(self, track: Track, configs: Sequence[RunConfig]) -> Iterator[RunRecord]:
        if not configs:
            return
        with self.connection():
            task = _run.options(**self.task_options())
            folder = Path(self.checkpoint_folder or self.layout.checkpoints(track.name)).resolve()
            settings = WorkerSettings(self.device, max(1, int(self.cpus_per_run)), self.latency, str(folder))
            baselines = self.dense_baselines(track, {c.dense_seed for c in configs})
            dense = {seed: ray.put(baseline) for seed, baseline in baselines.items()}
            shared = ray.put((track, shippable(c.method for c in configs), settings))
            pending = {task.remote(shared, config, dense[config.dense_seed]): config for config in configs}

            def collect(ref: Any, config: RunConfig) -> RunRecord:
                return self._record(ref, config, baselines[config.dense_seed])

            yield from as_finished(pending, collect)

    @contextlib.contextmanager
    def connection(self) -> Iterator[None]:
        """Connect (or start a local instance) unless already connected; disconnect only what we opened."""
        if ray.is_initialized():
            yield
            return
        local = self.address is None
        if not local and self.address != "auto":
            _check_reachable(self.address)
        try:
            ray.init(address="local" if local else self.address, log_to_driver=False, logging_level=logging.WARNING,
                     **({"num_cpus": self.local_cpus, "include_dashboard": False} if local else {}))
        except (ConnectionError, RayError) as exc:
            what = "start a local Ray instance" if local else f"connect to the Ray cluster at {self.address}"
            raise BenchError(f"cannot {what} ({type(exc).__name__}: {str(exc).splitlines()[0]}); check the address "
                             "(`ray status` on the head node) and the cluster's auth token (docs/cluster.md)") from None
        try:
            yield
        finally:
            ray.shutdown()

    def task_options(self) -> dict[str, Any]:
        """Task options; a request no node of the cluster can ever meet is refused instead of waiting forever."""
        available = ray.cluster_resources()
        for name, wanted, flag in (("CPU", self.cpus_per_run, "--cpus-per-run"),
                                   ("GPU", self.gpus_per_run, "--gpus-per-run")):
            if wanted > available.get(name, 0):
                raise BenchError(f"{flag} {wanted:g} asks for more than the Ray cluster's {available.get(name, 0):g} "
                                 f"{name}(s); lower it or add nodes with {name}s")
        options: dict[str, Any] = {"num_cpus": self.cpus_per_run, "num_gpus": self.gpus_per_run,
                                   "max_retries": self.max_retries, "retry_exceptions": False}
        if self.memory_per_run is not None:
            options["memory"] = int(self.memory_per_run * GIB)
        return options

    def dense_baselines(self, track: Track, seeds: set[int]) -> dict[int, DenseBaseline]:
        """Each dense seed's baseline, loaded or trained (and cached) here on the runs' device; weights on the CPU,
        so they travel to any worker."""
        workspace = Workspace(track, self.layout, device=self.device)
        baselines = {seed: workspace.dense(seed) for seed in sorted(seeds)}
        return {seed: replace(b, state_dict={k: v.cpu() for k, v in b.state_dict.items()})
                for seed, b in baselines.items()}

    def _record(self, ref: Any, config: RunConfig, dense: DenseBaseline) -> RunRecord:
        try:
            return ray.get(ref)
        except RayTaskError as exc:
            return _failed(config, dense, TERMINAL_COLOURS.sub("", str(exc)).strip())
        except WORKER_DIED as exc:
            return _failed(config, dense, f"its worker died {self.max_retries + 1} time(s); the last time: "
                                          f"{type(exc).__name__}: {exc}")


def _check_reachable(address: str) -> None:
    """Ray retries an unreachable head for many minutes; say at once that nothing answers there."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except (OSError, ValueError) as exc:
        raise BenchError(f"no Ray head answers at {address} ({exc}); give HOST:PORT of a node started with "
                         "`ray start --head`, or --address auto on a cluster node") from None


def _failed(config: RunConfig, dense: DenseBaseline, error: str) -> RunRecord:
    return RunRecord(**config.model_dump(), id=config.run_id, status="failed", error=error,
                     dense_test_acc=dense.test_acc, dense_val_acc=dense.val_acc)


def as_finished(pending: dict, collect: Callable) -> Iterator:
    """What ``collect(ref, key)`` makes of each task, in the order tasks finish; the rest are cancelled on exit."""
    try:
        while pending:
            [ref], _ = ray.wait(list(pending), num_returns=1)
            yield collect(ref, pending.pop(ref))
    finally:
        for ref in pending:
            ray.cancel(ref)


def shippable(names: Iterable[str]) -> tuple[Method, ...]:
    """The methods the tasks need. Those defined outside the harness (plugins, notebooks, tests) travel
    by value, so a worker that cannot import their module still gets them."""
    methods = tuple(get_method(name) for name in sorted(set(names)))
    for method in methods:
        module = sys.modules.get(method.select.__module__)
        if module is not None and module.__name__ != "__main__" and not module.__name__.startswith("harness."):
            cloudpickle.register_pickle_by_value(module)
    return methods


@ray.remote
def _run(shared: tuple, config: RunConfig, dense: DenseBaseline) -> RunRecord:
    track, methods, settings = shared
    ensure_registered(methods)
    torch.set_num_threads(settings.threads)
    checkpoint = FileCheckpoint.for_run(settings.checkpoints, config.run_id)
    with tempfile.TemporaryDirectory(prefix="prune-bench-") as scratch:
        workspace = Workspace(track, ResultsLayout(Path(scratch)), device=settings.device, latency=settings.latency,
                              dense={config.dense_seed: dense})
        record = execute(workspace, config, checkpoint)
    checkpoint.discard()
    return record
