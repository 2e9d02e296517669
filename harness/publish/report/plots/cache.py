"""The plot cache: a drawn plot stored under a digest of its inputs and of the code and libraries
that draw it, so an unchanged plot is read back instead of drawn again. It only saves time: an
unreadable or stale entry is drawn again, and a plot's bytes are the same either way. Each entry is
signed with this machine's key (:mod:`harness.core.signing`), so a plot cache that arrives with a
results folder from elsewhere is drawn again rather than put in the report."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import asdict, fields, is_dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from harness.audit.comparisons import Cell
from harness.core.atomic import write_text_atomic
from harness.core.signing import machine_key, sign, signed_by
from harness.publish.report.plots.canvas import STYLE, Plot
from harness.run.record import content_digest

CACHE_FORMAT = 2
MISSING = object()
"""What :func:`cached` returns when there is no usable entry (``None`` is a stored "no plot")."""
_CODE: str | None = None


def _code_digest() -> str:
    """The drawing code (every module of this package, and the cells, comparisons and labels it
    reads) and the libraries a plot's bytes depend on."""
    global _CODE
    if _CODE is None:
        import importlib.metadata as metadata

        from harness.audit import comparisons
        from harness.publish.report import labels
        from harness.run import cells

        drawing = sorted(Path(__file__).parent.glob("*.py"))
        code = b"".join(path.read_bytes() for path in [*drawing, *(Path(m.__file__) for m in (comparisons, labels, cells))])
        versions = {name: metadata.version(name) for name in ("matplotlib", "numpy", "pillow")}
        _CODE = hashlib.sha256(code + json.dumps([CACHE_FORMAT, versions, STYLE], sort_keys=True,
                                                 default=str).encode()).hexdigest()
    return _CODE


def _fingerprint(value: Any) -> Any:
    """A plain, order-preserving stand-in for a plot's inputs: records by their content digest
    (loaded records had their seal checked), dataclasses by their fields, floats by ``repr``."""
    if isinstance(value, Cell):
        return ["cell", repr(value.key), ",".join(_record_digest(r) for r in value.records),
                ",".join(r.id for r in value.ok), repr(value.values), repr(value.pairing), repr(value.summary),
                repr(value.resolution)]
    if isinstance(value, (list, tuple)):
        return [_fingerprint(v) for v in value]
    if isinstance(value, dict):
        return [[_fingerprint(k), _fingerprint(v)] for k, v in value.items()]
    if is_dataclass(value) and not isinstance(value, type):
        return [type(value).__name__, [[f.name, _fingerprint(getattr(value, f.name))] for f in fields(value)]]
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, (float, np.floating, np.integer, np.bool_)):
        return repr(value)
    if isinstance(value, np.ndarray):
        return ["ndarray", str(value.dtype), list(value.shape), value.tobytes().hex()]
    raise TypeError(f"no fingerprint for {type(value).__name__}")  # a new input type: say so, never guess


def _record_digest(record) -> str:
    return record.content_digest or content_digest(record)


def entry_path(cache: str | Path, function: Callable, args: tuple) -> Path:
    """Where the plot ``function(*args)`` is cached: named by the code, the function and its inputs."""
    name = f"{function.__module__}.{function.__qualname__}"
    text = json.dumps([_code_digest(), name, _fingerprint(args)], separators=(",", ":"))
    return Path(cache) / f"{hashlib.sha256(text.encode()).hexdigest()}.json"


def cached(path: Path) -> Plot | None | object:
    """The stored plot (or a stored ``None``: nothing to draw), else :data:`MISSING`."""
    key = machine_key()
    if key is None:
        return MISSING
    try:
        entry = json.loads(path.read_bytes())
        if entry["format"] != CACHE_FORMAT:
            return MISSING
        plot = None
        if entry["plot"] is not None:
            stored = dict(entry["plot"])
            stored["png"] = base64.b64decode(stored["png"], validate=True)
            plot = Plot(**stored)
        return plot if signed_by(key, _signed(path, plot), str(entry["signature"])) else MISSING
    except (OSError, ValueError, TypeError, KeyError):
        return MISSING


def _signed(path: Path, plot: Plot | None) -> bytes:
    """What an entry's signature covers: its name (the digest of the plot's inputs) and every field."""
    fields_text = json.dumps(None if plot is None else {**asdict(plot), "png": None}, sort_keys=True)
    return b"\0".join([path.name.encode(), fields_text.encode(), plot.png if plot is not None else b""])


def store(path: Path, plot: Plot | None) -> None:
    key = machine_key()
    if key is None:
        return
    entry: dict[str, Any] = {"format": CACHE_FORMAT, "plot": None, "signature": sign(key, _signed(path, plot))}
    if plot is not None:
        entry["plot"] = {**asdict(plot), "png": base64.b64encode(plot.png).decode()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(entry))
    except Exception:  # noqa: BLE001 - a cache that cannot be written only costs time
        pass
