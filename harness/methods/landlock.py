"""Level ``landlock``'s confinement: the child confines itself with Landlock, an unprivileged uid and a seccomp
filter (``confine``), and everything that policy needs (the masked data-set folders, the Python roots, the
harness package, the seccomp program).

It is its own module, importing the standard library only, because the landlock child loads this file by its
path before any harness import runs (``landlock_command``): nothing it needs may come from elsewhere. The
bwrap level reuses its view of the filesystem (``masked_paths``, ``python_roots``, ``harness_package``).
See https://docs.kernel.org/userspace-api/landlock.html and seccomp(2), used through their system calls.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import stat
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

UNPRIVILEGED_UID = 65534  # nobody
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, PR_SET_KEEPCAPS, PR_CAPBSET_DROP, PR_CAP_AMBIENT = 38, 22, 8, 24, 47
PR_CAP_AMBIENT_RAISE = 2
CAP_DAC_READ_SEARCH = 2


def masked_paths() -> list[str]:
    """Folders holding data sets that the Python install or /usr carry: hidden from the child."""
    paths = ["/usr/share/datasets"]
    for module in ("sklearn", "torchvision", "keras", "tensorflow_datasets"):
        for folder in sys.path:
            candidate = Path(folder) / module
            if candidate.is_dir():
                paths += [str(p) for p in (candidate / "datasets" / "data", candidate / "datasets" / "descr")]
    return [p for p in dict.fromkeys(paths) if Path(p).is_dir()]


def python_roots() -> list[str]:
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


def prctl(option: int, *arguments: int) -> None:
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
    installs = list(dict.fromkeys(str(Path(p).resolve()) for p in (*INSTALLS, *python_roots()) if Path(p).exists()))
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
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    _syscall(LANDLOCK_RESTRICT_SELF, ruleset, 0)
    os.close(ruleset)
    program = seccomp_program(X86_64, X86_64_SYSCALLS)
    instructions = ctypes.create_string_buffer(program, len(program))
    filters = _SockFprog(len(program) // 8, ctypes.addressof(instructions))  # 8 bytes per instruction
    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(filters))


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
            prctl(PR_CAPBSET_DROP, capability)
    os.setgroups([])
    prctl(PR_SET_KEEPCAPS, 1)
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    kept = 1 << CAP_DAC_READ_SEARCH
    header = (ctypes.c_uint32 * 2)(LINUX_CAPABILITY_VERSION_3, 0)
    _checked(_libc().capset(header, (ctypes.c_uint32 * 6)(kept, kept, kept, 0, 0, 0)))  # effective, permitted, inheritable
    prctl(PR_SET_KEEPCAPS, 0)
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_DAC_READ_SEARCH)


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

