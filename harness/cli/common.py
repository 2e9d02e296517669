"""What every command shares: consoles, the one-line error convention, JSON output, list options, the
options several commands take (declared once here, groups of them as dataclasses), and the help and table
conventions. Command modules import this module and name what they use as ``common.X``, so no command
repeats a list of these names.

Nothing here imports torch or another heavy library at module level: ``bench --help`` and
``bench <command> --help`` load only typer, rich and this package. Commands import what they
run inside their function bodies.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Callable, Optional, get_type_hints

import typer
from rich.cells import cell_len
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from typer.core import TyperCommand, TyperGroup

from harness.core.choices import (  # noqa: F401 - the commands name these as common.X
    DEFAULT_GROUP_SIZE,
    DEFAULT_TRACK,
    ENGINES,
    PLAN_CPU_SECONDS,
    PLAN_MEMORY_MB,
    PLAN_WALL_SECONDS,
    PRUNERS,
    RECOMMENDED_SEEDS,
    SAMPLERS,
)
from harness.core.errors import BenchError

if TYPE_CHECKING:
    from harness.methods.exchange import Limits

out = Console()
err = Console(stderr=True)

DEFAULT_RESULTS = Path("results")


# -- options that several commands take ----------------------------------------------------------------

ResultsDir = Annotated[Path, typer.Option("--results", help="Results directory (one folder per track).")]
TrackName = Annotated[str, typer.Option("--track", help="Track name (bench tracks lists them).")]
OneTrack = Annotated[Optional[str], typer.Option("--track", help="Only this track (default: every track).")]
Device = Annotated[str, typer.Option("--device", help="Where to compute: cpu or cuda[:N].")]
Threads = Annotated[int, typer.Option("--threads", min=1, help="Intra-op CPU threads; one is fastest for "
                                                              "small networks on shared cores.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of the terminal view.")]
StatsSeed = Annotated[int, typer.Option("--seed", help="Seed of every bootstrap and sampled permutation.")]
Wide = Annotated[bool, typer.Option("--wide", help="Print tables at full width, however narrow the terminal "
                                                      "(for a pager or a file).")]
TracksDir = Annotated[Optional[Path], typer.Option("--tracks-dir", help="Folder of track files "
                                                                        "(default: ./bench/tracks).")]
MethodsDir = Annotated[Optional[Path], typer.Option("--methods-dir", envvar="PRUNE_BENCH_METHODS",
                                                    help="Folder of plugin method files (default: ./bench/methods).")]
Targets = Annotated[Optional[str], typer.Option("--targets", "--target", help="Comma-separated target names "
                                                                  "(default: the grid's).")]
Schedules = Annotated[Optional[str], typer.Option("--schedules", "--schedule", help="Comma-separated retraining schedules "
                                                                      "(default: the grid's).")]
Budgets = Annotated[Optional[str], typer.Option("--budgets", "--budget", help="Comma-separated budgets in epochs: all "
                                                                  "training after the dense model, a method's own "
                                                                  "included (default: the grid's).")]
Full = Annotated[bool, typer.Option("--full", help="The track's full grid of targets and budgets, not its quick one.")]


@dataclass(frozen=True)
class PlanLimitOptions:
    """``--wall-limit``, ``--cpu-limit`` and ``--memory-limit``: the limits of each plugin plan's child."""

    wall_limit: Annotated[float, typer.Option(help="Seconds of wall-clock time per plugin plan (its isolated "
                                                   "child is killed past it).")] = PLAN_WALL_SECONDS
    cpu_limit: Annotated[int, typer.Option(help="Seconds of CPU time per plugin plan.")] = PLAN_CPU_SECONDS
    memory_limit: Annotated[int, typer.Option(help="MiB of memory per plugin plan.")] = PLAN_MEMORY_MB

    def limits(self) -> Limits:
        """These limits as ``harness.methods.exchange.Limits``; a non-positive one is refused in one line."""
        from harness.methods.exchange import Limits

        if not min(self.wall_limit, self.cpu_limit, self.memory_limit) > 0:
            raise BenchError(f"--wall-limit, --cpu-limit and --memory-limit must be positive, got {self.wall_limit:g} "
                             f"s, {self.cpu_limit} CPU-s and {self.memory_limit} MiB; give each a positive value")
        return Limits(self.wall_limit, self.cpu_limit, self.memory_limit)


def with_option_groups(command: Callable) -> Callable:
    """``command`` as typer should see it: a parameter typed by a frozen dataclass of options (``plan_limits:
    PlanLimitOptions = PlanLimitOptions()``) shown as the dataclass's fields, ``Annotated`` options with
    defaults, in that parameter's place; the command still gets one instance. So options that several commands
    take together are declared once, with their help and defaults. ``harness.cli`` registers every command
    through this."""
    signature = inspect.signature(command, eval_str=True)
    groups = {name: p.annotation for name, p in signature.parameters.items() if is_dataclass(p.annotation)}
    parameters = []
    for name, parameter in signature.parameters.items():
        if name not in groups:
            parameters.append(parameter)
            continue
        hints = get_type_hints(groups[name], include_extras=True)
        parameters += [inspect.Parameter(field.name, parameter.kind, default=field.default,
                                         annotation=hints[field.name]) for field in fields(groups[name])]

    @functools.wraps(command)
    def grouped(**given: Any) -> Any:
        values = {name: group(**{f.name: given.pop(f.name) for f in fields(group)})
                  for name, group in groups.items()}
        return command(**given, **values)

    grouped.__signature__ = signature.replace(parameters=parameters)
    return grouped


# -- help and errors -------------------------------------------------------------------------------------

def _flags_without_type(params: list) -> list:
    """Typer's rich help prints ``<bool>`` after a flag (``--json``, ``--help``); a flag takes no value."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class BenchCommand(TyperCommand):
    def get_params(self, ctx):
        return _flags_without_type(super().get_params(ctx))


HELP_ONLY = "bench.help_only"
"""``ctx.meta`` key: the command line asks for a subcommand's help, so nothing is loaded or run."""
GROUP_OPTIONS = "bench.group_options"
"""``ctx.meta`` key: the command line gives an option before the subcommand's name."""


class BenchGroup(TyperGroup):
    def get_params(self, ctx):
        params = _flags_without_type(super().get_params(ctx))
        if ctx.meta.get(HELP_ONLY) and not ctx.meta.get(GROUP_OPTIONS):
            # Only a subcommand's help is asked for and no option of this group is given: leave the group's
            # options out, so typer does not load its value coercion (pydantic) just to read their defaults.
            return []
        return params

    def parse_args(self, ctx, args):
        ctx.meta[HELP_ONLY] = ctx.meta.get(HELP_ONLY, False) or any(a in ctx.help_option_names for a in args)
        ctx.meta[GROUP_OPTIONS] = bool(args) and args[0].startswith("-")
        return super().parse_args(ctx, args)


def error_object(exc: BenchError) -> dict[str, Optional[str]]:
    """A user error as JSON: ``error`` is its whole line; ``fix`` is what the line says to do -- the error's
    own ``fix`` if it has one, else the part after the line's first ``"; "`` (messages say the problem, then
    the fix), else null."""
    line = str(exc)
    fix = getattr(exc, "fix", None)
    if fix is None and "; " in line:
        fix = line.split("; ", 1)[1]
    return {"error": line, "fix": fix}


def user_errors(command: Callable) -> Callable:
    """Turn a BenchError into one line on stderr and its exit code (2 unless the error says otherwise);
    a file-system refusal that reached here as a bare ``OSError`` (full disk, read-only, no permission)
    becomes the same kind of line, naming its path. With ``--json`` (a command's ``as_json``), the error is
    also one JSON object on stdout, :func:`error_object`'s."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from harness.core.errors import STORAGE_ERRNOS, storage_error

        try:
            return command(*args, **kwargs)
        except BenchError as exc:
            error = exc
        except OSError as exc:
            if exc.errno not in STORAGE_ERRNOS:
                raise
            error = storage_error(exc)
        err.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        if kwargs.get("as_json"):
            print_json(error_object(error))
        raise typer.Exit(error.exit_code) from None

    return wrapper


# -- output ----------------------------------------------------------------------------------------------

def print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2) + "\n")


IDENTIFIER_WIDTH = 24
"""Identifier columns (methods, targets, tracks, schedules) are as wide as their widest cell, up to this."""
OTHER_WIDTH = 8
"""What every other column keeps, at least, when identifier columns claim their width."""


class BenchTable(Table):
    """A rich table that never cuts a cell with an ellipsis: every column folds what does not fit onto more
    lines. Identifier columns get a fixed width (their widest cell, up to :data:`IDENTIFIER_WIDTH`, shrunk to
    leave every other column :data:`OTHER_WIDTH`), which rich narrows only after the other columns gave way:
    prose and numbers wrap first, and names stay whole unless the terminal is too narrow even for them."""

    def __init__(self, title: str, identifiers: tuple[str, ...] = ()):
        super().__init__(title=title)
        self.identifiers = identifiers
        self._widest: dict[int, int] = {}

    def add_row(self, *cells: Any, **kwargs: Any) -> None:
        super().add_row(*cells, **kwargs)
        for index, (column, cell) in enumerate(zip(self.columns, cells)):
            text = cell if isinstance(cell, str) else ""
            widest = max([cell_len(line) for line in text.splitlines()] or [0])
            self._widest[index] = max(self._widest.get(index, cell_len(str(column.header))), widest)

    def _fit(self, max_width: int) -> None:
        """Give identifier columns their widest cell if that fits, else up to :data:`IDENTIFIER_WIDTH`, else
        narrow the widest of them first, down to :data:`OTHER_WIDTH` (below that, rich shares the width out)."""
        named = {i: w for i, w in self._widest.items() if self.columns[i].header in self.identifiers}
        floors = sum(min(OTHER_WIDTH, w) for i, w in self._widest.items() if i not in named)
        room = max_width - (len(self.columns) + 1) - 2 * len(self.columns) - floors
        widths = dict(named) if sum(named.values()) <= room else {i: min(w, IDENTIFIER_WIDTH) for i, w in named.items()}
        while widths and sum(widths.values()) > room:
            widest = max(widths, key=widths.get)
            if widths[widest] <= OTHER_WIDTH:
                widths = {}
                break
            widths[widest] -= 1
        for index in named:
            self.columns[index].width = widths.get(index)

    def __rich_console__(self, console, options):
        self._fit(options.max_width)
        return super().__rich_console__(console, options)

    def __rich_measure__(self, console, options):
        self._fit(options.max_width)
        return super().__rich_measure__(console, options)


def table(title: str, columns: list[str], *, identifiers: tuple[str, ...] = (), right: tuple[str, ...] = ()) -> Table:
    """A :class:`BenchTable` with ``columns``; those in ``right`` (numbers) are right-aligned."""
    view = BenchTable(title, identifiers)
    for column in columns:
        view.add_column(column, justify="right" if column in right else "left", overflow="fold")
    return view


def print_table(view: Table, wide: bool = False) -> None:
    """Print ``view``; with ``wide`` at its natural width, however narrow the terminal (lines may then be
    longer than the terminal: for a wide terminal, a pager or a file)."""
    if wide:
        natural = Measurement.get(out, out.options.update_width(1 << 16), view).maximum
        Console(file=out.file, width=max(out.width, natural), force_terminal=out.is_terminal,
                color_system=out.color_system, no_color=out.no_color).print(view, crop=False)
    else:
        out.print(view)


# -- parsing ---------------------------------------------------------------------------------------------

def split_list(values: Optional[str], cast: Callable = str) -> list | None:
    """Parse a comma-separated option (duplicates dropped, order kept); ``None`` when it was not given."""
    if values is None:
        return None
    try:
        parsed = [cast(v.strip()) for v in values.split(",") if v.strip()]
    except ValueError:
        raise BenchError(f"cannot read {values!r} as a comma-separated list of {cast.__name__} values") from None
    if not parsed:
        raise BenchError(f"the list {values!r} is empty; give at least one value or leave the option out")
    return list(dict.fromkeys(parsed))


def check_device(device: str) -> str:
    """The one check of a ``--device`` value: ``cpu`` or ``cuda[:N]``, and CUDA only where torch sees it."""
    if device != "cpu" and not device.startswith("cuda"):
        raise BenchError(f"unknown device {device!r}; use cpu or cuda[:N]")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise BenchError("--device cuda asked for, but torch sees no CUDA device; use --device cpu")
    return device


def set_threads(threads: int) -> None:
    """``--threads``: the intra-op CPU threads of this process."""
    import torch

    torch.set_num_threads(threads)
