"""The ``--executor`` options that ``bench run`` and ``bench tune`` share: this process, or Ray tasks.

Ray is imported only when ``--executor ray`` is chosen, so the local default never needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

import typer

from harness.core.errors import BenchError
from harness.core.layout import ResultsLayout

if TYPE_CHECKING:
    from harness.grid.ray import RayExecutor

EXECUTORS = ("local", "ray")

EXECUTOR = typer.Option("local", help="local: this process; ray: Ray tasks, locally or on a cluster (--address).")
ADDRESS = typer.Option(None, help="With --executor ray: 'auto' or HOST:PORT of the Ray head (default: start one here).")
GPUS_PER_RUN = typer.Option(0.0, help="With --executor ray: GPU share per run; 0.25 puts four on a GPU; runs use cuda.")
CPUS_PER_RUN = typer.Option(1.0, help="With --executor ray: CPUs per run; whole ones are its intra-op threads.")
MEMORY_PER_RUN = typer.Option(None, help="With --executor ray: GiB Ray reserves per run (for placement, not a cap).")
MAX_RETRIES = typer.Option(2, help="With --executor ray: reruns of runs whose worker died; own errors never rerun.")


@dataclass(frozen=True)
class ExecutorChoice:
    """The chosen executor and its Ray settings, checked for consistency with ``--device``."""

    name: str
    device: str
    address: Optional[str] = None
    gpus_per_run: float = 0.0
    cpus_per_run: float = 1.0
    memory_per_run: Optional[float] = None
    max_retries: int = 2

    @property
    def uses_ray(self) -> bool:
        return self.name == "ray"

    def ray(self, layout: ResultsLayout, **settings: Any) -> RayExecutor:
        from harness.grid.ray import RayExecutor

        return RayExecutor(layout, address=self.address, gpus_per_run=self.gpus_per_run,
                           cpus_per_run=self.cpus_per_run, memory_per_run=self.memory_per_run,
                           max_retries=self.max_retries, **settings)


def choose_executor(
    name: str, device: str, address: Optional[str], gpus_per_run: float, cpus_per_run: float,
    memory_per_run: Optional[float], max_retries: int,
) -> ExecutorChoice:
    """Refuse Ray settings without ``--executor ray``; with it, runs use cuda exactly when they ask for a GPU."""
    if name not in EXECUTORS:
        raise BenchError(f"unknown executor {name!r}; use --executor local or --executor ray")
    choice = ExecutorChoice(name, device, address, gpus_per_run, cpus_per_run, memory_per_run, max_retries)
    if not choice.uses_ray:
        given = {"--address": address is not None, "--gpus-per-run": gpus_per_run != 0.0,
                 "--cpus-per-run": cpus_per_run != 1.0, "--memory-per-run": memory_per_run is not None,
                 "--max-retries": max_retries != 2}
        if any(given.values()):
            raise BenchError(f"{next(flag for flag, set_ in given.items() if set_)} only applies with --executor ray")
        return choice
    if device != "cpu" and gpus_per_run == 0:
        raise BenchError(f"with --executor ray a run gets a GPU only if it asks for one: add --gpus-per-run "
                         f"(1 for a whole GPU, 0.25 to share one among four runs) instead of --device {device}")
    return ExecutorChoice(name, "cuda" if gpus_per_run > 0 else "cpu", address, gpus_per_run, cpus_per_run,
                          memory_per_run, max_retries)
