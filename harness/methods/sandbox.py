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
    Landlock + seccomp as an unprivileged uid: not implemented yet; the probe names it as missing.
``rlimits``
    the child runs as the harness's own user, limited by rlimits only, under the allow-listed
    environment, with capped output and answer, and is killed with every descendant afterwards;
    it can read whatever the harness can read and talk to the network.

Whatever the level, the child's stdout and stderr go to capped pipes (``OUTPUT_BYTES``) and are shown
only as escaped, truncated text (``escape``), and the harness becomes a child subreaper for the plan so
that no descendant outlives it (``reap_descendants``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

LEVELS = ("bwrap", "landlock", "rlimits")
REQUIRED_LEVEL = "bwrap"
"""The level every leaderboard's records must be made at (``bench submit`` and ``bench verify --rerun``
refuse to run below it unless told ``--unsafe-isolation``)."""
UNPRIVILEGED_UID = 65534  # nobody
OUTPUT_BYTES = 16 * 1024
SHOWN_CHARS = 400
SHM_BYTES = 64 * 2**20
MAX_PROCESSES = 64
SANDBOX_LIB = "/sandbox/lib"
SANDBOX_WORK = "/work"
ALLOWED_ENV = ("PATH", "LANG", "LC_ALL", "TZ")
"""The only variables taken from the harness's environment (anything else -- tokens, paths, the
command line's options -- never reaches the child)."""
PR_SET_CHILD_SUBREAPER = 36


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

    def line(self) -> str:
        """One line naming the level and what stronger levels lack."""
        if not self.missing:
            return f"sandbox level: {self.level}"
        return f"sandbox level: {self.level} (missing: {'; '.join(self.missing)})"


def masked_paths() -> list[str]:
    """Folders holding data sets that the Python install or /usr carry: hidden from the child."""
    paths = ["/usr/share/datasets"]
    for module in ("sklearn", "torchvision", "keras", "tensorflow_datasets"):
        for folder in sys.path:
            candidate = Path(folder) / module
            if candidate.is_dir():
                paths += [str(p) for p in (candidate / "datasets" / "data", candidate / "datasets" / "descr")]
    return [p for p in dict.fromkeys(paths) if Path(p).is_dir()]


def _python_roots() -> list[str]:
    """The Python install and any site-packages folder outside it (a user site), never the checkout the
    harness lives in nor anything under /usr (bound whole)."""
    checkout = harness_package().parent
    roots = {str(Path(p).resolve()) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    for entry in sys.path:  # only package folders: never the current folder or a script's
        path = Path(entry).resolve() if entry else None
        if path is not None and path.name in ("site-packages", "dist-packages") and path.is_dir() \
                and not path.is_relative_to(checkout) \
                and not checkout.is_relative_to(path) and not any(path.is_relative_to(r) for r in roots):
            roots.add(str(path))
    kept = sorted(r for r in roots if not Path(r).is_relative_to("/usr"))
    return [r for r in kept if not any(r != o and Path(r).is_relative_to(o) for o in kept)]


def harness_package() -> Path:
    return Path(__file__).resolve().parents[1]


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
    for prefix in _python_roots():
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


def child_env(level: str, pythonpath: str, home: str) -> dict[str, str]:
    """The allow-listed environment: a few harmless variables, the import path and a home in the work folder."""
    env = {k: os.environ[k] for k in ALLOWED_ENV if k in os.environ}
    env.setdefault("PATH", "/usr/bin:/bin")
    env.update({"PYTHONPATH": pythonpath, "HOME": home, "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONNOUSERSITE": "1", "OMP_NUM_THREADS": "1"})
    return env


@functools.lru_cache(maxsize=1)
def probe() -> Probe:
    """The strongest level this machine allows, and what the stronger ones lack (one bwrap start, ~50 ms)."""
    missing = []
    bwrap_problem = _bwrap_problem()
    if bwrap_problem is None:
        return Probe("bwrap", ())
    missing.append(f"bwrap: {bwrap_problem}")
    missing.append("landlock: not implemented in this harness version")
    return Probe("rlimits", tuple(missing))


def _bwrap_problem() -> str | None:
    if not sys.platform.startswith("linux"):
        return "Linux only"
    if shutil.which("bwrap") is None:
        return "bubblewrap is not installed (apt-get install bubblewrap)"
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        return "setpriv (util-linux) is missing, so the child cannot drop to an unprivileged uid"
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-probe-") as workdir:
        os.chmod(workdir, 0o777)
        try:
            done = subprocess.run(bwrap_command([sys.executable, "-S", "-c", "pass"], workdir),
                                  env=child_env("bwrap", "", SANDBOX_WORK), stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bwrap did not start ({type(exc).__name__})"
    if done.returncode != 0:
        return f"bwrap cannot start the interpreter here: {escape(done.stderr.decode(errors='replace'), 160)}"
    return None


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
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _parents() -> dict[int, int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return parents


def children_now() -> set[int]:
    me = os.getpid()
    return {pid for pid, parent in _parents().items() if parent == me}


def reap_descendants(before: set[int]) -> int:
    """Kill every child of this process that was not one ``before`` the plan started (the child, and its
    orphans reparented here by the subreaper) with all their descendants; returns how many were killed."""
    killed = 0
    me = os.getpid()
    for _ in range(10):  # a forking process may add children while it is being killed
        parents = _parents()
        targets = {pid for pid, parent in parents.items() if parent == me and pid not in before}
        frontier = set(targets)
        while frontier:
            frontier = {pid for pid, parent in parents.items() if parent in frontier} - targets
            targets |= frontier
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
