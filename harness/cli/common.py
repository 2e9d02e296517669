"""What every command shares: consoles, the one-line error convention, JSON output, list options."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import torch
import typer
from rich.console import Console

from harness.core.errors import BenchError

out = Console()
err = Console(stderr=True)

DEFAULT_RESULTS = Path("results")


def user_errors(command: Callable) -> Callable:
    """Turn a BenchError into one line on stderr and its exit code (2 unless the error says otherwise)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except BenchError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper


def print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2) + "\n")


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


def check_device(device: str) -> None:
    if device != "cpu" and not device.startswith("cuda"):
        raise BenchError(f"unknown device {device!r}; use cpu or cuda[:N]")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BenchError("--device cuda asked for, but torch sees no CUDA device; use --device cpu")
