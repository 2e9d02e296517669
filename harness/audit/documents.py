"""User-written input files (claims, reported results): TOML or JSON, chosen by the file suffix.

A file that cannot be read is one clear line naming the file and the fix, never a traceback.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.core.errors import BenchError


def read_document(path: str | Path) -> dict[str, Any]:
    """The top-level table of a ``.toml`` or ``.json`` file."""
    path = Path(path)
    if path.suffix not in (".toml", ".json"):
        raise BenchError(f"{path}: unknown file type {path.suffix!r}; write it as .toml or .json")
    try:
        text = path.read_text()
    except OSError as exc:
        raise BenchError(f"cannot read {path}: {exc.strerror}; check the path") from None
    try:
        document = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise BenchError(f"{path}: not valid {path.suffix[1:].upper()} ({exc}); fix the syntax") from None
    if not isinstance(document, dict):
        raise BenchError(f"{path}: the top level must be a table (an object), not {type(document).__name__}")
    return document


def describe(path: str | Path, where: str, error: ValidationError) -> BenchError:
    """A pydantic error as one line: file, entry, key, what is wrong."""
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(entry)"
    message = first["msg"].removeprefix("Value error, ")
    scalar = not isinstance(first["input"], (dict, list, tuple))
    got = f", got {first['input']!r}" if scalar and first["type"] != "missing" else ""
    return BenchError(f"{path}: {where}: key '{key}': {message}{got}")
