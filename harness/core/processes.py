"""Child processes that die with their parent: nothing the harness starts outlives the command.

``PR_SET_PDEATHSIG`` (Linux) has the kernel signal a child the moment its parent dies, however it
dies (SIGKILL included); a child also compares its parent's id with the one it was started by, both
once the request is made (the parent may already be gone) and while it waits, which covers systems
without the request.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import os
import pickle
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

PR_SET_PDEATHSIG = 1


def signal_on_parent_death(sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel for ``sig`` when this process's parent dies; False where that cannot be asked."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def parent_alive(parent: int) -> bool:
    """Whether the process that started this one (id ``parent``) is still its parent."""
    return os.getppid() == parent


def die_with_parent(parent: int, sig: int = signal.SIGKILL) -> None:
    """Receive ``sig`` when the parent dies, and exit at once if parent ``parent`` is already gone."""
    signal_on_parent_death(sig)
    if not parent_alive(parent):
        os._exit(1)


def call_with_parent(parent: int, target: str, payload: bytes, *extra: object) -> None:
    """A spawned child's entry point that makes it die with ``parent`` *before* anything heavy is imported:
    ``target`` (``"module:function"``) and its pickled arguments ``payload`` are loaded only afterwards, so a
    parent killed while its children still import torch leaves none of them behind. ``extra`` arguments
    (queues, which must travel as a process's own arguments) follow the unpickled ones."""
    die_with_parent(parent)
    module, name = target.split(":")
    function = getattr(importlib.import_module(module), name)
    function(*pickle.loads(payload), *extra)


WATCH_SECONDS = 0.2


def _orphaned(folder: Path | None) -> None:
    """The parent is gone: remove ``folder``, then kill this process's whole group (and so itself)."""
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
    os.killpg(os.getpgrp(), signal.SIGKILL)


def leave_with_parent(parent: int, folder: str | Path | None = None) -> None:
    """For a child that leads its own process group: when ``parent`` dies, remove ``folder`` and kill the group.

    The kernel's SIGTERM on the parent's death and a watchdog thread polling the parent's id (which still
    works when the code run here replaces the SIGTERM handler) both do it; call this first thing in the
    child, before slow imports."""
    folder = None if folder is None else Path(folder)
    signal.signal(signal.SIGTERM, lambda *_: _orphaned(folder))
    signal_on_parent_death(signal.SIGTERM)
    if not parent_alive(parent):
        _orphaned(folder)

    def watch() -> None:
        while parent_alive(parent):
            time.sleep(WATCH_SECONDS)
        _orphaned(folder)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def remove_when_parent_dies(parent: int, folder: str) -> None:
    """A janitor's whole life: wait for ``parent`` to die, then remove ``folder``. It runs in its own session,
    so a signal to the parent's process group spares it, for a folder that no process of the parent's can
    remove once the parent is gone (a sandboxed child cannot remove the folder it is mounted on)."""

    def remove(*_: object) -> None:
        shutil.rmtree(folder, ignore_errors=True)
        os._exit(0)

    signal.signal(signal.SIGTERM, remove)
    signal_on_parent_death(signal.SIGTERM)
    while parent_alive(parent):
        time.sleep(WATCH_SECONDS)
    remove()
