"""What holds at every sandbox level, whatever the child does: its output is capped and shown only as
escaped, truncated text (``CappedReader``, ``escape``), and none of its processes outlives its plan (the
harness becomes a child subreaper, ``become_subreaper``, and kills what is left, ``reap_descendants``).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Mapping

from harness.methods.landlock import prctl

OUTPUT_BYTES = 16 * 1024
SHOWN_CHARS = 400
PR_SET_CHILD_SUBREAPER = 36


def escape(text: str | bytes, limit: int = SHOWN_CHARS) -> str:
    """Untrusted text made inert: control characters, non-ASCII and rich's ``[``/``]`` as escapes, one line, at
    most ``limit`` characters."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    out = []
    for char in text:
        if char in "[]\\" or not (" " <= char <= "~"):
            out.append(char.encode("unicode_escape").decode("ascii") if char not in "[]"
                       else f"\\x{ord(char):02x}")
        else:
            out.append(char)
    escaped = "".join(out)
    return escaped if len(escaped) <= limit else escaped[: limit - 3] + "..."


class CappedReader:
    """Drains a pipe in a thread, keeping its first ``OUTPUT_BYTES`` (the rest is read and dropped, so the
    child never blocks on a full pipe and never fills the harness's memory)."""

    def __init__(self, fd: int, cap: int = OUTPUT_BYTES):
        self.fd, self.cap, self.kept, self.dropped = fd, cap, bytearray(), 0
        self.thread = threading.Thread(target=self._drain, name="child-output", daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        try:
            while chunk := os.read(self.fd, 65536):
                room = self.cap - len(self.kept)
                self.kept += chunk[:max(room, 0)]
                self.dropped += max(len(chunk) - max(room, 0), 0)
        except OSError:
            pass
        finally:
            os.close(self.fd)

    def text(self, wait: float = 1.0) -> str:
        self.thread.join(wait)
        return escape(bytes(self.kept).strip(), SHOWN_CHARS)


def become_subreaper() -> bool:
    """Orphans of the child (daemons it double-forked) become this process's children, to be reaped."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        prctl(PR_SET_CHILD_SUBREAPER, 1)
    except (OSError, AttributeError):
        return False
    return True


def _parents() -> dict[int, int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                line = (entry / "stat").read_text()
                parents[int(entry.name)] = int(line.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return parents


def children_now() -> set[int]:
    me = os.getpid()
    return {pid for pid, parent in _parents().items() if parent == me}


def _descendants(roots: set[int], parents: Mapping[int, int]) -> set[int]:
    """``roots`` and every process below them in ``parents`` (pid -> parent pid)."""
    tree, frontier = set(roots), set(roots)
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - tree
        tree |= frontier
    return tree


def process_tree(root: int) -> set[int]:
    """``root`` and all its descendants now."""
    return _descendants({root}, _parents())


def reap_descendants(before: set[int]) -> int:
    """Kill every child of this process that was not one ``before`` the plan started (the child, and its
    orphans reparented here by the subreaper) with all their descendants; returns how many were killed."""
    killed = 0
    me = os.getpid()
    for _ in range(10):  # a forking process may add children while it is being killed
        parents = _parents()
        targets = _descendants({pid for pid, parent in parents.items() if parent == me and pid not in before}, parents)
        if not targets:
            break
        for pid in targets:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
        for pid in targets:
            if parents.get(pid) == me:
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
    return killed
