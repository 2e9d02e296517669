"""The ``--executor`` options that ``bench run`` and ``bench tune`` share: this process, or Ray tasks.

Ray is imported only when ``--executor ray`` is chosen, so the local default never needs it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from harness.cli import common
from harness.core.errors import BenchError
from harness.core.layout import ResultsLayout

if TYPE_CHECKING:
    from harness.grid.ray import RayExecutor

EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class ExecutorOptions:
    """``--executor`` and its Ray settings, which a command takes as one parameter
    (``harness.cli.common.with_option_groups``)."""

    executor: Annotated[str, typer.Option(help="local: this process; ray: Ray tasks, locally or on a cluster "
                                               "(--address).")] = "local"
    address: Annotated[Optional[str], typer.Option(help="With --executor ray: 'auto' or HOST:PORT of the Ray head "
                                                        "(default: start one here).")] = None
    gpus_per_run: Annotated[float, typer.Option(help="With --executor ray: GPU share per run; 0.25 puts four on a "
                                                     "GPU; runs use cuda.")] = 0.0
    cpus_per_run: Annotated[float, typer.Option(help="With --executor ray: CPUs per run; whole ones are its "
                                                     "intra-op threads.")] = 1.0
    memory_per_run: Annotated[Optional[float], typer.Option(help="With --executor ray: GiB Ray reserves per run "
                                                                 "(for placement, not a cap).")] = None
    max_retries: Annotated[int, typer.Option(help="With --executor ray: reruns of runs whose worker died; own "
                                                  "errors never rerun.")] = 2

    @property
    def uses_ray(self) -> bool:
        return self.executor == "ray"

    def check(self, device: str) -> None:
        """Refuse Ray settings without ``--executor ray``, and a device the runs cannot use: with Ray, runs use
        cuda exactly when they ask for a GPU, else ``--device``."""
        if self.executor not in EXECUTORS:
            raise BenchError(f"unknown executor {self.executor!r}; use --executor local or --executor ray")
        if not self.uses_ray:
            given = [f.name for f in fields(self) if f.name != "executor" and getattr(self, f.name) != f.default]
            if given:
                raise BenchError(f"--{given[0].replace('_', '-')} only applies with --executor ray")
            common.check_device(device)
            return
        if device != "cpu" and self.gpus_per_run == 0:
            raise BenchError(f"with --executor ray a run gets a GPU only if it asks for one: add --gpus-per-run "
                             f"(1 for a whole GPU, 0.25 to share one among four runs) instead of --device {device}")
        common.check_device("cuda" if self.gpus_per_run > 0 else "cpu")

    def ray(self, layout: ResultsLayout, **settings: Any) -> RayExecutor:
        from harness.grid.ray import RayExecutor

        return RayExecutor(layout, address=self.address, gpus_per_run=self.gpus_per_run,
                           cpus_per_run=self.cpus_per_run, memory_per_run=self.memory_per_run,
                           max_retries=self.max_retries, **settings)
