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
gets its own: a memory cap for all its processes together and a process-count cap (``CgroupCaps``).

Whatever the level, the child's stdout and stderr go to capped pipes (``OUTPUT_BYTES``) and are shown
only as escaped, truncated text (``escape``), and the harness becomes a child subreaper for the plan so
that no descendant outlives it (``reap_descendants``).

This module imports the standard library only: the landlock child loads it by its path, before anything
else, to confine itself (``landlock_command``).
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import platform
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

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
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, PR_SET_KEEPCAPS, PR_CAPBSET_DROP, PR_CAP_AMBIENT = 38, 22, 8, 24, 47
PR_CAP_AMBIENT_RAISE = 2
CAP_DAC_READ_SEARCH = 2


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


# Level landlock: https://docs.kernel.org/userspace-api/landlock.html and seccomp(2), through their system calls.
LANDLOCK_CREATE_RULESET, LANDLOCK_ADD_RULE, LANDLOCK_RESTRICT_SELF = 444, 445, 446  # the same on every architecture
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
TRUNCATE, IOCTL_DEV = 1 << 14, 1 << 15
FILE_ACCESS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
"""The rights a rule on a file (not a folder) may carry."""
LANDLOCK_ACCESS = {"run": EXECUTE | READ_FILE | READ_DIR, "read": READ_FILE | READ_DIR, "list": READ_DIR,
                   "device": READ_FILE | WRITE_FILE, "write": ~0}
"""What each kind of rule in ``landlock_policy`` allows (``write``: everything the kernel's ABI handles)."""
FS_RIGHTS_BY_ABI = {1: 13, 2: 14, 3: 15, 4: 15, 5: 16}
"""How many filesystem rights (the low bits) each Landlock ABI handles: 2 adds REFER, 3 TRUNCATE, 5 IOCTL_DEV."""
NET_TCP = 0b11  # ABI 4: bind and connect, both refused (no rule allows a port)
SCOPE_ABSTRACT_UNIX_AND_SIGNAL = 0b11  # ABI 6: no abstract unix socket or signal reaches a process outside
LANDLOCK_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/proc/self", "/proc/cpuinfo", "/sys/devices/system/cpu")
"""Read beyond the installs: the loader's cache, the time zone, the child's own /proc entry (not other processes')
and the CPU description and topology torch's thread pools read."""
LANDLOCK_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
INSTALLS = ("/usr", "/lib", "/lib64", "/bin", "/sbin")

X86_64 = 0xC000003E  # AUDIT_ARCH_X86_64
X86_64_SYSCALLS = {
    "socket": 41, "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "io_uring_setup": 425,
    "io_uring_enter": 426, "io_uring_register": 427, "open_by_handle_at": 304, "bpf": 321, "perf_event_open": 298,
    "userfaultfd": 323, "unshare": 272, "setns": 308, "keyctl": 250, "add_key": 248, "request_key": 249,
    "clone": 56, "clone3": 435,
}
SECCOMP_DENIED = ("socket", "ptrace", "process_vm_readv", "process_vm_writev", "io_uring_setup", "io_uring_enter",
                  "io_uring_register", "open_by_handle_at", "bpf", "perf_event_open", "userfaultfd", "unshare",
                  "setns", "keyctl", "add_key", "request_key")
"""Refused with EPERM at level landlock: every socket (no network, not even a unix socket to a host service;
``socketpair`` still works), access to other processes' memory, io_uring (its requests bypass seccomp), opening
by file handle (what ``CAP_DAC_READ_SEARCH`` would allow beyond Landlock), new namespaces, and kernel interfaces
a pruning method has no use for."""
NAMESPACE_FLAGS = 0x7E020000  # CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET
X32_SYSCALL_BIT = 0x40000000
BPF_LD_W_ABS, BPF_JEQ, BPF_JGE, BPF_JSET, BPF_RET = 0x20, 0x15, 0x35, 0x45, 0x06
SECCOMP_RET_KILL_PROCESS, SECCOMP_RET_ERRNO, SECCOMP_RET_ALLOW = 0x80000000, 0x00050000, 0x7FFF0000
SECCOMP_MODE_FILTER = 2
LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


@functools.cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)  # the interpreter's own C library (no ldconfig subprocess to find it)
    libc.syscall.restype = ctypes.c_long
    return libc


def _checked(result: int) -> int:
    if result < 0:
        number = ctypes.get_errno()
        raise OSError(number, os.strerror(number))
    return result


def _syscall(number: int, *arguments: int | ctypes.c_void_p | None) -> int:
    return _checked(_libc().syscall(ctypes.c_long(number), *(
        ctypes.c_long(a) if isinstance(a, int) else a for a in arguments)))


def _prctl(option: int, *arguments: int) -> None:
    _checked(_libc().prctl(option, *(ctypes.c_ulong(a) for a in (*arguments, 0, 0, 0, 0)[:4])))


def landlock_abi() -> int:
    """The Landlock ABI version this kernel offers, 0 where it offers none."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        return _syscall(LANDLOCK_CREATE_RULESET, None, 0, LANDLOCK_CREATE_RULESET_VERSION)
    except OSError:
        return 0


@dataclass(frozen=True)
class LandlockFolders:
    """The landlock child's folders inside its temporary box: ``work`` (its working directory) and ``tmp`` (its
    ``TMPDIR``), owned by the unprivileged uid, and ``lib``, its import path, holding only a link to the harness
    package (so that nothing else of the checkout is on that path)."""

    work: str
    tmp: str
    lib: str

    @classmethod
    def inside(cls, box: str | Path) -> LandlockFolders:
        return cls(*(str(Path(box) / name) for name in ("work", "tmp", "lib")))

    def make(self) -> LandlockFolders:
        for folder in (self.work, self.tmp):
            os.mkdir(folder, 0o700)
            if os.geteuid() == 0:
                os.chown(folder, UNPRIVILEGED_UID, UNPRIVILEGED_UID)
        os.mkdir(self.lib)
        os.symlink(harness_package(), Path(self.lib) / "harness")
        return self


def landlock_command(code: str, folders: LandlockFolders) -> list[str]:
    """The interpreter running ``code`` once it has confined itself: first thing, while it is one thread, it loads
    this module by its path (no harness import runs before) and calls ``confine``."""
    confining = (f"import importlib.util as u, sys; s = u.spec_from_file_location('harness_confine', "
                 f"{str(Path(__file__).resolve())!r}); m = sys.modules[s.name] = u.module_from_spec(s); "
                 f"s.loader.exec_module(m); m.confine({folders.work!r}, {folders.tmp!r}); del u, s, m; ")
    return [sys.executable, "-s", "-c", confining + code]


def landlock_policy(work: str, tmp: str) -> list[tuple[str, str]]:
    """What the landlock child may touch, as (path, kind of rule in ``LANDLOCK_ACCESS``): run what is in ``/usr`` and
    the Python install but their data-set folders (``masked_paths``), read the harness package and
    ``LANDLOCK_FILES``, use ``LANDLOCK_DEVICES``, and write ``work`` and ``tmp``."""
    masked = [Path(p).resolve() for p in masked_paths()]
    installs = list(dict.fromkeys(str(Path(p).resolve()) for p in (*INSTALLS, *_python_roots()) if Path(p).exists()))
    roots = [r for r in installs if not any(r != o and Path(r).is_relative_to(o) for o in installs)]
    rules = [rule for root in roots for rule in _carved(Path(root), masked)]
    rules += [(str(harness_package()), "read")] + [(path, "read") for path in LANDLOCK_FILES]
    return rules + [(path, "device") for path in LANDLOCK_DEVICES] + [(work, "write"), (tmp, "write")]


def _carved(root: Path, masked: list[Path]) -> list[tuple[str, str]]:
    """Rules that let ``root`` be run whole but for the ``masked`` folders inside it: the folders on the way to
    one may only be listed, everything beside them is run whole (Landlock only adds rights down a tree)."""
    inside = [m for m in masked if m.is_relative_to(root)]
    if not inside:
        return [(str(root), "run")]
    if root in inside:
        return []
    rules = [(str(root), "list")]
    for entry in sorted(root.iterdir()):
        if not entry.is_symlink():  # a rule on a link would be one on its target
            rules += _carved(entry, inside)
    return rules


def confine(work: str, tmp: str, uid: int = UNPRIVILEGED_UID) -> None:
    """Confine this process and all it will start, for good: Landlock (``landlock_policy``), then uid ``uid`` with
    ``CAP_DAC_READ_SEARCH`` only and ``no_new_privs``, then the seccomp filter. Landlock confines the calling thread
    alone, so this must run before any other thread exists."""
    if len(os.listdir("/proc/self/task")) != 1:
        raise RuntimeError("confine must run while the process is one thread (Landlock confines only the caller)")
    abi = landlock_abi()
    if abi < 1:
        raise RuntimeError("this kernel does not offer Landlock")
    ruleset = _landlock_ruleset(landlock_policy(work, tmp), abi)
    _drop_privileges(uid)
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    _syscall(LANDLOCK_RESTRICT_SELF, ruleset, 0)
    os.close(ruleset)
    program = seccomp_program(X86_64, X86_64_SYSCALLS)
    instructions = ctypes.create_string_buffer(program, len(program))
    filters = _SockFprog(len(program) // 8, ctypes.addressof(instructions))  # 8 bytes per instruction
    _prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(filters))


def _landlock_ruleset(policy: Iterable[tuple[str, str]], abi: int) -> int:
    """A Landlock ruleset's descriptor handling every right ``abi`` knows, with one rule per existing path of
    ``policy``."""
    handled = (1 << FS_RIGHTS_BY_ABI[min(abi, 5)]) - 1
    attributes = _RulesetAttr(handled, NET_TCP if abi >= 4 else 0, SCOPE_ABSTRACT_UNIX_AND_SIGNAL if abi >= 6 else 0)
    ruleset = _syscall(LANDLOCK_CREATE_RULESET, ctypes.byref(attributes), ctypes.sizeof(attributes), 0)
    for path, kind in policy:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            allowed = LANDLOCK_ACCESS[kind] & handled
            if not stat.S_ISDIR(os.fstat(fd).st_mode):
                allowed &= FILE_ACCESS
            if allowed:
                rule = _PathBeneathAttr(allowed, fd)
                _syscall(LANDLOCK_ADD_RULE, ruleset, LANDLOCK_RULE_PATH_BENEATH, ctypes.byref(rule), 0)
        finally:
            os.close(fd)
    return ruleset


def _drop_privileges(uid: int) -> None:
    """From root to ``uid`` (and its group, no others) for good, keeping ``CAP_DAC_READ_SEARCH`` alone, also across
    exec (as an ambient capability), so that an interpreter under a 0700 home still starts."""
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    for capability in range(last + 1):
        if capability != CAP_DAC_READ_SEARCH:
            _prctl(PR_CAPBSET_DROP, capability)
    os.setgroups([])
    _prctl(PR_SET_KEEPCAPS, 1)
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    kept = 1 << CAP_DAC_READ_SEARCH
    header = (ctypes.c_uint32 * 2)(LINUX_CAPABILITY_VERSION_3, 0)
    _checked(_libc().capset(header, (ctypes.c_uint32 * 6)(kept, kept, kept, 0, 0, 0)))  # effective, permitted, inheritable
    _prctl(PR_SET_KEEPCAPS, 0)
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_DAC_READ_SEARCH)


def seccomp_program(arch: int, syscalls: Mapping[str, int]) -> bytes:
    """The seccomp filter as classic BPF: another ABI (i386, x32) kills the process; ``SECCOMP_DENIED`` and a
    ``clone`` asking for a new namespace fail with EPERM, ``clone3`` with ENOSYS (its flags lie in memory a filter
    cannot read; the C library then falls back to ``clone``); everything else is allowed."""
    steps: list[tuple[int, str | None, str | None, int]] = [
        (BPF_LD_W_ABS, None, None, 4), (BPF_JEQ, None, "kill", arch), (BPF_LD_W_ABS, None, None, 0),
        (BPF_JGE, "eperm", None, X32_SYSCALL_BIT)]
    steps += [(BPF_JEQ, "eperm", None, syscalls[name]) for name in SECCOMP_DENIED]
    steps += [(BPF_JEQ, "enosys", None, syscalls["clone3"]), (BPF_JEQ, None, "allow", syscalls["clone"]),
              (BPF_LD_W_ABS, None, None, 16), (BPF_JSET, "eperm", None, NAMESPACE_FLAGS)]
    returns = {"allow": SECCOMP_RET_ALLOW, "eperm": SECCOMP_RET_ERRNO | errno.EPERM,
               "enosys": SECCOMP_RET_ERRNO | errno.ENOSYS, "kill": SECCOMP_RET_KILL_PROCESS}
    where = {label: len(steps) + i for i, label in enumerate(returns)}

    def jump(label: str | None, at: int) -> int:
        return 0 if label is None else where[label] - at - 1

    code = [struct.pack("=HBBI", op, jump(yes, at), jump(no, at), k) for at, (op, yes, no, k) in enumerate(steps)]
    return b"".join(code + [struct.pack("=HBBI", BPF_RET, 0, 0, value) for value in returns.values()])


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
        _prctl(PR_SET_CHILD_SUBREAPER, 1)
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


# Cgroup caps (v1): https://docs.kernel.org/admin-guide/cgroup-v1/memory.html and .../pids.html
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
