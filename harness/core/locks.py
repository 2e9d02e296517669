"""Advisory locks (``fcntl.flock``) on small files, so processes sharing a results folder split the work.

A lock lives as long as its open file: a process killed in any way drops its locks at once, so a
crashed run never blocks the next attempt. A lock file is removed by its holder on release; a taker
checks, once it holds the lock, that the file it locked is still the one at the path (not one removed
under it), and tries again otherwise.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator

from harness.core.errors import storage_error


class FileLock:
    """A held lock on ``path``; ``release`` removes the file and unlocks."""

    def __init__(self, path: Path, fd: int):
        self.path, self._fd = path, fd

    def release(self) -> None:
        if self._fd < 0:
            return
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass
        os.close(self._fd)  # closing drops the flock
        self._fd = -1


def _open(path: Path) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise storage_error(exc, path) from None


def _same_file(path: Path, fd: int) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def acquire(path: str | Path, wait: bool = False) -> FileLock | None:
    """Lock ``path``: None when another process holds it (unless ``wait``, which blocks until it is free)."""
    path = Path(path)
    while True:
        fd = _open(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return None
        if _same_file(path, fd):
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return FileLock(path, fd)
        os.close(fd)  # its holder removed it while we waited: lock the new one


@contextlib.contextmanager
def held(path: str | Path) -> Iterator[FileLock]:
    """Hold the lock on ``path`` for the block, waiting for it if another process holds it."""
    lock = acquire(path, wait=True)
    try:
        yield lock
    finally:
        lock.release()
