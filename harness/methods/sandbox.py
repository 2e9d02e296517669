"""The sandbox a plugin's child runs in, at the strongest level this machine allows.

Levels, strongest first (``LEVELS``):

``bwrap``
    bubblewrap: new mount, pid, network, IPC and UTS namespaces; a root that holds only ``/usr``
    (with the data-set folders masked), the Python install (read-only, its bundled data sets masked)
    and the harness package (read-only, at ``/sandbox/lib``; not the checkout), a sized tmpfs
    ``/dev/shm`` and ``/tmp``, and one writable folder, the child's work folder. The interpreter runs
    as an unprivileged uid (``setpriv``: no capabilities, an empty bounding set, no new privileges)
    under an allow-listed environment, and dies with the harness (``--die-with-parent``); when the
    plan is done the pid namespace goes, and everything in it.
``landlock``
    for machines without bubblewrap or user namespaces: the child confines itself first thing, while
    it is still one thread (``confine``): Landlock lets it read and execute only ``/usr`` and the Python
    install (data-set folders carved out), read the harness package (through a link in an import folder
    of its own, so not the checkout around it), its own ``/proc`` entry and a few device nodes, write only
    its work folder and a private tmp, and bind or connect no TCP port; it runs as the unprivileged uid
    with ``no_new_privs`` and one capability, ``CAP_DAC_READ_SEARCH`` (a home folder of mode 0700, such as
    ``/root`` holding pyenv, would otherwise hide the interpreter; reads stay Landlock's to allow); and a
    seccomp filter refuses every ``socket()``, ``ptrace``, ``process_vm_readv``/``writev``, io_uring, new
    namespaces and a few more kernel interfaces no pruning method needs (``SECCOMP_DENIED``).
``rlimits``
    the child runs as the harness's own user, limited by rlimits only, under the allow-listed
    environment, with capped output and answer, and is killed with every descendant afterwards;
    it can read whatever the harness can read and talk to the network.

At every level, where this process can make cgroups (v1 ``memory`` and ``pids`` hierarchies), each child
gets its own: a memory cap for all its processes together and a process-count cap
(``harness.methods.cgroups.CgroupCaps``).

Whatever the level, the child's stdout and stderr go to capped pipes (``OUTPUT_BYTES``) and are shown
only as escaped, truncated text (``escape``), and the harness becomes a child subreaper for the plan so
that no descendant outlives it (``reap_descendants``); both are ``harness.methods.containment``'s.

This module holds the levels, the probe, the bwrap command and the child's environment. Level landlock's
confinement is ``harness.methods.landlock``, which imports the standard library only: the landlock child
loads it by its path, before anything else, to confine itself (``landlock_command``).
"""

from __future__ import annotations

import functools
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.methods.cgroups import cgroup_parents
from harness.methods.containment import escape
from harness.methods.landlock import (UNPRIVILEGED_UID, LandlockFolders, harness_package, landlock_abi,
                                      landlock_command, masked_paths, python_roots)

LEVELS = ("bwrap", "landlock", "rlimits")
REQUIRED_LEVEL = "bwrap"
"""The level every leaderboard's records must be made at (``bench submit`` and ``bench verify --rerun``
refuse to run below it unless told ``--unsafe-isolation``)."""
SHM_BYTES = 64 * 2**20
MAX_PROCESSES = 64
SANDBOX_LIB = "/sandbox/lib"
SANDBOX_WORK = "/work"
ALLOWED_ENV = ("PATH", "LANG", "LC_ALL", "TZ")
"""The only variables taken from the harness's environment (anything else -- tokens, paths, the
command line's options -- never reaches the child)."""


_REQUIREMENT: list[tuple[str | None, bool]] = [(None, False)]


def require_level(level: str | None = REQUIRED_LEVEL, unsafe: bool = False) -> None:
    """From now on in this process, every ``Isolation`` refuses to be made below ``level`` unless ``unsafe``
    (``bench submit`` and ``bench verify --rerun`` call this; ``--unsafe-isolation`` sets ``unsafe``)."""
    _REQUIREMENT[0] = (level, unsafe)


def requirement() -> tuple[str | None, bool]:
    return _REQUIREMENT[0]


def greater_or_equal(level: str, required: str) -> bool:
    return LEVELS.index(level) <= LEVELS.index(required)


@dataclass(frozen=True)
class Probe:
    level: str
    missing: tuple[str, ...]
    cgroups: str = ""
    """What the child's cgroup caps are (``CgroupCaps``): the controllers in use, or why there are none."""

    def line(self) -> str:
        """One line naming the level, what stronger levels lack, and the cgroup caps."""
        line = f"sandbox level: {self.level}"
        if self.missing:
            line += f" (missing: {'; '.join(self.missing)})"
        return f"{line}; cgroup caps: {self.cgroups}" if self.cgroups else line


def _dirs(path: str) -> list[str]:
    """``--dir`` arguments (mode 0755) for every ancestor of ``path``: bwrap would copy the host's
    modes, and a 0700 ``/root`` would lock the unprivileged uid out of the interpreter."""
    parts = Path(path).parts[1:-1]
    arguments = []
    for i in range(len(parts)):
        arguments += ["--perms", "0755", "--dir", "/" + "/".join(parts[: i + 1])]
    return arguments


def bwrap_command(argv: list[str], workdir: str) -> list[str]:
    """``argv`` (an interpreter and its arguments) wrapped in bubblewrap as the unprivileged uid."""
    command = ["bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
               "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    root = os.geteuid() == 0
    if root:  # setpriv inside needs these three to drop to the unprivileged uid (then they are gone)
        command += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
    else:
        command += ["--unshare-user"]
    command += ["--ro-bind", "/usr", "/usr"]
    for name in ("lib", "lib64", "bin", "sbin"):
        target = Path("/" + name)
        if target.is_symlink():
            command += ["--symlink", os.readlink(target), str(target)]
        elif target.is_dir():
            command += ["--ro-bind", str(target), str(target)]
    for prefix in python_roots():
        command += _dirs(prefix) + ["--ro-bind", prefix, prefix]
    command += _dirs(SANDBOX_LIB + "/harness") + ["--perms", "0755", "--dir", SANDBOX_LIB,
                                                  "--ro-bind", str(harness_package()), SANDBOX_LIB + "/harness"]
    for path in masked_paths():
        command += ["--tmpfs", path]
    command += ["--proc", "/proc", "--dev", "/dev", "--size", str(SHM_BYTES), "--perms", "1777", "--tmpfs", "/dev/shm",
                "--size", str(SHM_BYTES), "--perms", "1777", "--tmpfs", "/tmp", "--bind", workdir, SANDBOX_WORK]
    if root:
        command += ["setpriv", f"--reuid={UNPRIVILEGED_UID}", f"--regid={UNPRIVILEGED_UID}", "--clear-groups",
                    "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
    return command + argv


def child_env(pythonpath: str, home: str, tmp: str | None = None) -> dict[str, str]:
    """The allow-listed environment: a few harmless variables, the import path, a home in the work folder and, where
    the child has a private tmp that is not ``/tmp``, ``TMPDIR``."""
    env = {k: os.environ[k] for k in ALLOWED_ENV if k in os.environ}
    env.setdefault("PATH", "/usr/bin:/bin")
    env.update({"PYTHONPATH": pythonpath, "HOME": home, "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONNOUSERSITE": "1", "OMP_NUM_THREADS": "1"})
    if tmp is not None:
        env["TMPDIR"] = tmp
    return env


@functools.lru_cache(maxsize=1)
def probe() -> Probe:
    """The strongest level this machine allows, what the stronger ones lack, and the cgroup caps (each level tried
    is one sandboxed interpreter start, ~50 ms)."""
    level = next(level for level in LEVELS if level_problem(level) is None)
    missing = tuple(f"{name}: {level_problem(name)}" for name in LEVELS[:LEVELS.index(level)])
    controllers, cgroup_problems = cgroup_parents()
    cgroups = ", ".join(controllers) or "none"
    if cgroup_problems:
        cgroups += f" (missing: {'; '.join(cgroup_problems)})"
    return Probe(level, missing, cgroups)


@functools.cache
def level_problem(level: str) -> str | None:
    """Why ``level`` cannot be had here, or None where it can (``rlimits`` always can)."""
    return {"bwrap": _bwrap_problem, "landlock": _landlock_problem, "rlimits": lambda: None}[level]()


def _bwrap_problem() -> str | None:
    if not sys.platform.startswith("linux"):
        return "Linux only"
    if shutil.which("bwrap") is None:
        return "bubblewrap is not installed (apt-get install bubblewrap)"
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        return "setpriv (util-linux) is missing, so the child cannot drop to an unprivileged uid"
    with tempfile.TemporaryDirectory(prefix="bench-probe-") as workdir:
        os.chmod(workdir, 0o777)
        return _trial_start("bwrap", bwrap_command([sys.executable, "-S", "-c", "pass"], workdir),
                            env=child_env("", SANDBOX_WORK))


def _trial_start(what: str, command: list[str], env: dict[str, str], cwd: str | None = None) -> str | None:
    """None when a trial interpreter started by ``command`` exits cleanly, else why not, as the probe line
    says it (``what`` names the sandbox)."""
    try:
        done = subprocess.run(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{what} did not start ({type(exc).__name__})"
    if done.returncode != 0:
        return f"{what} cannot start the interpreter here: {escape(done.stderr.decode(errors='replace'), 160)}"
    return None


def _landlock_problem() -> str | None:
    if not sys.platform.startswith("linux"):
        return "Linux only"
    if platform.machine() != "x86_64":
        return f"its seccomp filter is written for x86_64 only, not {platform.machine()}"
    if landlock_abi() < 1:
        return "the kernel does not offer Landlock (Linux 5.13 or later, with landlock in its lsm= list)"
    if os.geteuid() != 0:
        return f"the harness runs as uid {os.geteuid()}, not root, so it cannot make the child uid {UNPRIVILEGED_UID}"
    with tempfile.TemporaryDirectory(prefix="bench-probe-") as box:
        folders = LandlockFolders.inside(box).make()
        return _trial_start("a Landlock-confined child", landlock_command("import harness", folders),
                            env=child_env(folders.lib, folders.work, folders.tmp), cwd=folders.work)

