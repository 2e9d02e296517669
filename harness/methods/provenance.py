"""Provenance: was a record made by the method code that is here now?

A record carries ``method_digest``, the SHA-256 of its method's source file when it ran. The audit
refuses to rank a record whose method file has changed since (``harness.audit.engine``);
``bench verify`` is stricter and also fails records it cannot check (``method_problem``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from harness.core.errors import BenchError
from harness.methods.location import find_method, missing_line
from harness.methods.plugins import file_digest, method_source
from harness.methods.registry import builtin_sources, registered_method


class MethodRun(Protocol):
    """What provenance reads of a run record."""

    method: str
    method_digest: str | None
    reproduced: bool


class MethodSources:
    """Current digests of the methods' source files, each file read once; a built-in's file is found from
    its syntax tree, so checking records imports no method (and no torch)."""

    def __init__(self) -> None:
        self._digests: dict[Path, str] = {}

    def source(self, name: str) -> Path | None:
        method = registered_method(name)
        return method_source(method) if method is not None else builtin_sources().get(name)

    def digest(self, path: Path) -> str:
        if path not in self._digests:
            self._digests[path] = file_digest(path)
        return self._digests[path]

    def changed(self, record: MethodRun) -> str | None:
        """What differs when the record's method file no longer hashes to its digest (None if it does or
        cannot be told)."""
        source = self.source(record.method)
        if record.method_digest is None or source is None or not source.is_file():
            return None
        current = self.digest(source)
        if current == record.method_digest:
            return None
        return (f"method file {source} changed since the run: the record has sha256 {record.method_digest[:16]}, "
                f"the file now hashes to {current[:16]}")

    def problem(self, record: MethodRun) -> str | None:
        """Everything that keeps a reproduced record's method from being checked, or its change."""
        if not record.reproduced:
            return None
        if record.method_digest is None:
            return "no method digest (written before records carried one, or removed since)"
        source = self.source(record.method)
        if source is None:
            try:  # a plugin's record names its file: register it from the methods folder
                find_method(record.method, getattr(record, "method_file", None))
            except BenchError as exc:
                return f"{exc} (its source cannot be compared)"
            source = self.source(record.method)
            if source is None:
                return missing_line(record.method, getattr(record, "method_file", None))
        if not source.is_file():
            return f"method '{record.method}' has no source file at {source} to compare"
        return self.changed(record)
