"""Atomic file writes: a temporary file in the same folder, then a rename over the target.

Readers see the old file or the new one, never half of one, so a killed grid, a crashed worker
or two processes writing the same cached file at once lose nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import torch


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary path beside ``path``; on success it replaces ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, payload: Any) -> None:
    with replacing(path) as tmp, open(tmp, "w") as handle:
        json.dump(payload, handle, indent=1, sort_keys=True, allow_nan=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


def torch_save_atomic(payload: Any, path: str | Path) -> None:
    with replacing(path) as tmp:
        torch.save(payload, tmp)
