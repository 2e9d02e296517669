"""Atomic file writes: a temporary file in the same folder, then a rename over the target.

Readers see the old file or the new one, never half of one, so a killed grid, a crashed worker
or two processes writing the same cached file at once lose nothing.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from harness.core.errors import storage_error


def temp_pid(tmp: str | Path) -> int | None:
    """The id of the process that made a temporary file of ``replacing`` (None for an older name without one)."""
    parts = Path(tmp).name.rsplit(".", 3)
    return int(parts[-3]) if len(parts) == 4 and parts[-3].isdigit() else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


STALE_SECONDS = 60.0
"""A temporary file whose writer is not running here is left alone this long (its writer may be on another
machine sharing the folder, and an atomic write takes seconds)."""


def stale_temp(path: str | Path) -> bool:
    """Whether a temporary file of ``replacing`` is a leftover: its writer is this process, or is not running
    (on this machine) and the file is older than ``STALE_SECONDS``; one without a writer's id after an hour."""
    path = Path(path)
    pid = temp_pid(path)
    if pid == os.getpid():
        return True
    try:
        age = time.time() - path.stat().st_mtime
    except OSError:
        return False
    if pid is None:
        return age > 3600
    return age > STALE_SECONDS and not pid_alive(pid)


def remove_stale_temps(folder: str | Path) -> int:
    """Remove the leftover temporary files (``stale_temp``) a killed process left in ``folder``; how many."""
    removed = 0
    for leftover in Path(folder).glob(".*.tmp"):
        if stale_temp(leftover):
            leftover.unlink(missing_ok=True)
            removed += 1
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fsync_dir(folder: str | Path) -> None:
    """Make a rename or a new file in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary path beside ``path``; on success it replaces ``path`` (and the folder is synced).

    The temporary name carries this process's id (``.<name>.<pid>.<random>.tmp``), so a cleaner can tell a
    live writer's file from a killed one's. A file-system refusal (full disk, read-only, no permission)
    is raised as a one-line ``StorageError`` naming ``path``; the temporary file is removed."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
        try:
            os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a result file is as shareable as the umask says
        finally:
            os.close(fd)
    except OSError as exc:
        raise storage_error(exc, path.parent) from None
    try:
        yield Path(tmp)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise storage_error(exc, path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_durably(tmp: Path, data: bytes) -> None:
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_json_atomic(path: str | Path, payload: Any) -> None:
    text = json.dumps(payload, indent=1, sort_keys=True, allow_nan=True) + "\n"
    with replacing(path) as tmp:
        _write_durably(tmp, text.encode())


def write_text_atomic(path: str | Path, text: str) -> None:
    with replacing(path) as tmp:
        _write_durably(tmp, text.encode("utf-8"))


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    with replacing(path) as tmp:
        _write_durably(tmp, data)


def torch_save_atomic(payload: Any, path: str | Path) -> None:
    """``torch.save`` through memory, then one plain write: a full disk is an ``OSError`` (ENOSPC) naming the
    path, never torch's "unexpected pos", and the bytes are fsynced like every other atomic write."""
    import torch

    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with replacing(path) as tmp:
        _write_durably(tmp, buffer.getvalue())


def check_writable(folder: str | Path) -> None:
    """Make sure ``folder`` is (or can be made) a folder this process can write, before any work is done."""
    folder = Path(folder)
    for part in (folder, *folder.parents):
        if part.exists():
            if not part.is_dir():
                raise storage_error(OSError(20, "Not a directory"), part) from None
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=f".write-check.{os.getpid()}.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise storage_error(exc, folder) from None
