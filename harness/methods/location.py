"""Where a plugin method's file is, so tools that meet only its records (``bench verify``, ``flops``,
``latency``) can find it again.

A record of a plugin stores ``method_file``: the file's path relative to the methods folder (or, for a
file outside it, its absolute path). A tool looking for a method that is not registered reads that and
registers the file from the methods folder in use, or fails with one line naming ``--methods-dir``."""

from __future__ import annotations

import os
from pathlib import Path

from harness.core.errors import BenchError
from harness.methods import list_methods
from harness.methods.plugins import is_plugin, load_plugin, method_source, methods_dir


def recorded_file(name: str) -> str | None:
    """What a record of method ``name`` stores as ``method_file`` (None for a built-in method)."""
    method = next((m for m in list_methods() if m.name == name), None)
    if method is None or not is_plugin(method):
        return None
    source = method_source(method)
    folder = methods_dir()
    if folder is not None:
        try:
            return source.relative_to(folder.resolve()).as_posix()
        except ValueError:
            pass
    return os.fspath(source)


def registered(name: str) -> bool:
    return any(m.name == name for m in list_methods())


def find_method(name: str, method_file: str | None) -> None:
    """Register method ``name`` from its recorded file when it is not registered yet; one line naming
    ``--methods-dir`` when the file is not where the record says."""
    if registered(name):
        return
    folder = methods_dir()
    candidates = []
    if method_file is not None:
        recorded = Path(method_file)
        candidates = [recorded] if recorded.is_absolute() else []
        if folder is not None and not recorded.is_absolute():
            candidates.append(folder / recorded)
    for path in candidates:
        if path.is_file():
            load_plugin(path)
            if registered(name):
                return
    raise BenchError(missing_line(name, method_file, folder))


def missing_line(name: str, method_file: str | None, folder: Path | None = None) -> str:
    where = f"its file {method_file} (as its records name it) is not in" if method_file else "no file of it is in"
    return (f"method '{name}' is not registered here: {where} the methods folder "
            f"{folder if folder is not None else '(none found)'}; pass --methods-dir DIR, the folder holding it")
