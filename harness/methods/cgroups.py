"""Cgroup caps (v1 ``memory`` and ``pids`` hierarchies), at every sandbox level where this process can make
cgroups: each child gets its own, a memory cap for all its processes together and a process-count cap
(``CgroupCaps``). See https://docs.kernel.org/admin-guide/cgroup-v1/memory.html and .../pids.html
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

CGROUP_CONTROLLERS = ("memory", "pids")


def cgroup_mounts(mountinfo: str) -> dict[str, tuple[Path, Path]]:
    """Each controller's v1 hierarchy in the text of /proc/self/mountinfo: its mount point and the group mounted there."""
    mounts: dict[str, tuple[Path, Path]] = {}
    for line in mountinfo.splitlines():
        fields, _, tail = line.partition(" - ")
        fstype, _, options = (tail.split(" ") + ["", "", ""])[:3]
        if fstype == "cgroup":
            mounted, point = fields.split(" ")[3:5]
            for controller in set(options.split(",")) & set(CGROUP_CONTROLLERS):
                mounts.setdefault(controller, (Path(point), Path(mounted)))
    return mounts


def own_cgroups(text: str) -> dict[str, str]:
    """Each v1 controller's group of this process, from the text of /proc/self/cgroup."""
    groups = {}
    for line in text.splitlines():
        _, controllers, group = line.split(":", 2)
        groups.update({controller: group for controller in controllers.split(",") if controller})
    return groups


@functools.lru_cache(maxsize=1)
def cgroup_parents() -> tuple[dict[str, Path], tuple[str, ...]]:
    """Where each child's cgroups go: this process's own group in each controller's v1 hierarchy, where a group can
    be made there (tried once), and why not for the others."""
    if not sys.platform.startswith("linux"):
        return {}, ("cgroups are Linux only",)
    mounts = cgroup_mounts(Path("/proc/self/mountinfo").read_text())
    own = own_cgroups(Path("/proc/self/cgroup").read_text())
    parents, problems = {}, []
    for controller in CGROUP_CONTROLLERS:
        if controller not in mounts or controller not in own:
            problems.append(f"{controller}: no cgroup v1 hierarchy (cgroup v2 is not handled yet)")
            continue
        point, mounted = mounts[controller]
        if not Path(own[controller]).is_relative_to(mounted):
            problems.append(f"{controller}: this process's group is outside the hierarchy mounted at {point}")
            continue
        parent = point / Path(own[controller]).relative_to(mounted)
        trial = parent / f"bench-probe-{os.getpid()}"
        try:
            trial.mkdir()
            trial.rmdir()
        except OSError as exc:
            problems.append(f"{controller}: cannot make a group in {parent} ({exc.strerror})")
            continue
        parents[controller] = parent
    return parents, tuple(problems)


@dataclass(frozen=True)
class CgroupCaps:
    """One child's cgroups, one per controller of ``cgroup_parents``: ``memory`` caps all its processes together
    (which an rlimit, per process, cannot), ``pids`` caps the tasks it may start. Made before the child starts,
    joined by its whole process tree while the child waits for its go signal (so nothing it runs is outside),
    emptied and removed when its plan is done. Empty where no controller is available."""

    folders: Mapping[str, Path]

    @classmethod
    def make(cls, name: str, memory_bytes: int) -> CgroupCaps:
        """The groups ``name`` with the memory cap set; the process cap is set on ``admit``."""
        caps = cls({controller: parent / name for controller, parent in cgroup_parents()[0].items()})
        try:
            for folder in caps.folders.values():
                folder.mkdir()
            memory = caps.folders.get("memory")
            for limit in ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes"):  # memory+swap may not be below
                if memory is not None and (memory / limit).exists():
                    (memory / limit).write_text(str(memory_bytes))
        except OSError:
            caps.remove()
            raise
        return caps

    def admit(self, pids: Iterable[int], tasks: int) -> None:
        """Move ``pids`` into the groups, then cap the tasks (processes and threads) at those there now plus
        ``tasks``."""
        pids = sorted(pids)
        for folder in self.folders.values():
            for pid in pids:
                (folder / "cgroup.procs").write_text(str(pid))
        if "pids" in self.folders:
            current = int((self.folders["pids"] / "pids.current").read_text())
            (self.folders["pids"] / "pids.max").write_text(str(current + tasks))

    def memory_cap_hit(self) -> bool:
        """Whether the kernel's OOM killer killed a process of the memory group (its cap was reached)."""
        if "memory" not in self.folders:
            return False
        try:
            control = (self.folders["memory"] / "memory.oom_control").read_text().split()
        except OSError:
            return False
        return "oom_kill" in control and int(control[control.index("oom_kill") + 1]) > 0

    def remove(self) -> None:
        """Kill what is left in the groups and remove them (a group goes once its last task has exited)."""
        for folder in self.folders.values():
            for _ in range(250):
                try:
                    for pid in (folder / "cgroup.procs").read_text().split():
                        try:
                            os.kill(int(pid), signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
