"""The parent's side of isolation: start a plugin's child in the sandbox, wait for it within its
limits, and turn every way it can end into one escaped line.

The child is a ``subprocess`` (not ``multiprocessing``), so the caller's ``__main__`` is never
re-imported; it runs a fixed bootstrap in a fresh temporary box (removed afterwards) and leads its own
process group, which is killed as a whole.

Its own session keeps it out of the caller's process-group signals, so it dies with its parent
instead: the kernel sends it SIGTERM when the parent dies (``PR_SET_PDEATHSIG``) and a watchdog
thread checks the parent's id besides; either way the child removes its work folder and kills
its whole group (whatever the method started goes too). Boxes and cgroups of children killed before
they could clean up are removed by the next isolated run, once their parent is gone.

Once ready, the child waits for the parent's go signal (``GO``), and in between its whole process tree
joins its cgroups (``harness.methods.cgroups.CgroupCaps``: a memory cap for all its processes together and
a process cap), so no line of the method runs outside them. The wall clock is the parent's to enforce (it kills
the child), and so is the answer's size: beyond ``Limits.answer_mb`` it is refused from its length
header, unread. The child runs in the sandbox of ``harness.methods.sandbox`` at the level it is given:
an allow-listed environment, stdout and stderr into capped pipes (shown only escaped and truncated, in
failure messages), and -- the harness being a child subreaper -- every descendant it left is killed
when the plan is done.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from harness.core.atomic import pid_alive
from harness.core.errors import BenchError
from harness.methods import cgroups, containment, landlock, sandbox
from harness.methods.exchange import GO, INPUT_FILE, READY, ChildInput, Limits, serialise

WORKDIR_PREFIX = "bench-method-"
"""Temporary folders are ``bench-method-<parent pid>-<random>``: the parent's id tells a stale one."""

_SUBREAPER: list[bool] = []


def run_isolated(inputs: ChildInput, payload: bytes | None = None, level: str = "rlimits") -> dict[str, Any]:
    """Start the child in the sandbox at ``level`` and wait within the limits; returns its plan (or phase) as data,
    every failure is one BenchError line."""
    limits = inputs.limits
    where = f"method '{inputs.method}' ({inputs.path}){' training phase' if inputs.phase is not None else ''}"
    remove_stale_workdirs()
    remove_stale_cgroups()
    if not _SUBREAPER:
        _SUBREAPER.append(containment.become_subreaper())
    before = containment.children_now()
    with tempfile.TemporaryDirectory(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-") as box:
        workdir = landlock.LandlockFolders.inside(box).make().work if level == "landlock" else box
        (Path(workdir) / INPUT_FILE).write_bytes(payload or serialise(inputs))
        if level != "rlimits" and os.geteuid() == 0:
            for path in (workdir, Path(workdir) / INPUT_FILE):
                os.chown(path, landlock.UNPRIVILEGED_UID, landlock.UNPRIVILEGED_UID)
        caps = _cgroup_caps(where, _cgroup_name(box), limits)
        janitor = _janitor(box) if level != "rlimits" else None
        read_fd, write_fd = os.pipe()
        go_read, go_write = os.pipe()
        out_read, out_write = os.pipe()
        try:
            child = subprocess.Popen(
                _command(level, box, write_fd, go_read), cwd=workdir, pass_fds=(write_fd, go_read),
                stdin=subprocess.DEVNULL, stdout=out_write, stderr=out_write, start_new_session=True,
                env=_environment(level, box))
        except OSError as exc:
            for fd in (out_read, go_write):
                os.close(fd)
            caps.remove()
            raise BenchError(f"{where}: the sandbox ({level}) could not start the isolated process: "
                             f"{containment.escape(str(exc))}") from None
        finally:
            for fd in (write_fd, go_read, out_write):
                os.close(fd)
        output = containment.CappedReader(out_read)
        receiver = Connection(read_fd, writable=False)
        try:
            tasks = limits.processes + inputs.threads
            answer = _answer(receiver, child, where, limits, lambda: _admit(where, child, caps, tasks, go_write))
        except BenchError as exc:
            raise BenchError(_with_output(_with_memory_cap(str(exc), caps, limits), output)) from None
        finally:
            receiver.close()
            os.close(go_write)
            _stop(child)
            if janitor is not None:
                janitor.kill()
                janitor.wait()
            containment.reap_descendants(before)
            caps.remove()
    if answer.get("status") != "ok":
        raise BenchError(_with_output(_failure_message(where, answer, limits), output))
    return answer["result"]


def _cgroup_name(box: str) -> str:
    """The box's name and this pid namespace's: a harness in another namespace that shares the cgroup hierarchy
    (where the pid in the name means another process) never takes these groups for stale ones."""
    return f"{Path(box).name}-ns{os.stat('/proc/self/ns/pid').st_ino}"


def _cgroup_caps(where: str, name: str, limits: Limits) -> cgroups.CgroupCaps:
    try:
        return cgroups.CgroupCaps.make(name, limits.memory_mb * 2**20)
    except OSError as exc:
        raise BenchError(f"{where}: could not make the isolated process's cgroups: "
                         f"{containment.escape(str(exc))}") from None


def _admit(where: str, child: subprocess.Popen, caps: cgroups.CgroupCaps, tasks: int, go_fd: int) -> None:
    """The child is ready and waits for ``GO``: its whole process tree (under bwrap, bubblewrap's processes too) joins
    its cgroups, which may hold ``tasks`` more (its process cap and torch's thread pool, not started yet), before
    any of the method's code runs."""
    try:
        caps.admit(containment.process_tree(child.pid), tasks)
    except OSError as exc:
        raise BenchError(f"{where}: could not put the isolated process in its cgroups: "
                         f"{containment.escape(str(exc))}") from None
    try:
        os.write(go_fd, GO)
    except BrokenPipeError:  # it died meanwhile: waiting for its answer says how
        pass


def _with_memory_cap(message: str, caps: cgroups.CgroupCaps, limits: Limits) -> str:
    if not caps.memory_cap_hit():
        return message
    return (f"{message}; its processes together hit the cgroup memory cap of {limits.memory_mb} MiB and the kernel's "
            "OOM killer acted")


def _with_output(message: str, output: containment.CappedReader) -> str:
    text = output.text()
    return f"{message} (its output, escaped: {text})" if text else message


def _command(level: str, box: str, fd: int, go_fd: int) -> list[str]:
    """The child's command line: the interpreter runs a fixed bootstrap (the parent's id, the work folder
    and the pipes' numbers are its only arguments), wrapped in bubblewrap at level ``bwrap`` and confining
    itself first at level ``landlock``."""
    folders = landlock.LandlockFolders.inside(box)
    inside = {"bwrap": sandbox.SANDBOX_WORK, "landlock": folders.work}.get(level, box)
    # under bwrap the parent is the sandbox's own init (the harness is in another pid namespace): it dies
    # with the harness (--die-with-parent), and the child with it
    parent = "os.getppid()" if level == "bwrap" else str(os.getpid())
    bootstrap = (f"import os; os.chdir({inside!r}); from harness.core.processes import leave_with_parent; "
                 f"leave_with_parent({parent}, os.getcwd()); "
                 f"from harness.methods.child import child_main; child_main({fd}, {go_fd})")
    if level == "landlock":
        return landlock.landlock_command(bootstrap, folders)
    argv = [sys.executable, "-s", "-c", bootstrap]
    return sandbox.bwrap_command(argv, box) if level == "bwrap" else argv


def _environment(level: str, box: str) -> dict[str, str]:
    if level == "bwrap":
        return sandbox.child_env(sandbox.SANDBOX_LIB, sandbox.SANDBOX_WORK)
    if level == "landlock":
        folders = landlock.LandlockFolders.inside(box)
        return sandbox.child_env(folders.lib, folders.work, folders.tmp)
    return sandbox.child_env(str(landlock.harness_package().parent), box)


def _answer(receiver: Connection, child: subprocess.Popen, where: str, limits: Limits,
            go: Callable[[], None]) -> dict[str, Any]:
    """The child's answer: ``go`` runs once it is ready, and the wall clock counts from then."""
    if not receiver.poll(limits.startup_seconds):
        raise BenchError(_silent_child(child, where, f"did not start within {limits.startup_seconds:g} s "
                                                     "(importing torch and loading the model)", limits))
    if _receive(receiver, child, where, limits) != READY:
        raise BenchError(f"{where}: the isolated process sent something other than its ready signal")
    go()
    if not receiver.poll(limits.wall_seconds):
        raise BenchError(_silent_child(child, where, f"ran past the wall-clock limit of {limits.wall_seconds:g} s",
                                       limits))
    data = _receive(receiver, child, where, limits)
    try:
        answer = torch.load(io.BytesIO(data), weights_only=True)
    except Exception as exc:  # whatever the bytes are, they must not reach the harness as anything but an error
        raise BenchError(f"{where}: the isolated process sent an unreadable answer ({type(exc).__name__})") from None
    if not isinstance(answer, dict) or not isinstance(answer.get("result", {}), dict):
        raise BenchError(f"{where}: the isolated process sent an answer that is neither a result nor an error")
    return answer


def _receive(receiver: Connection, child: subprocess.Popen, where: str, limits: Limits) -> bytes:
    try:
        return receiver.recv_bytes(limits.answer_mb * 2**20)
    except OSError as exc:
        if "too long" in str(exc) or "bad message length" in str(exc):
            _kill(child)
            raise BenchError(f"{where}: the isolated process sent an answer larger than the cap of "
                             f"{limits.answer_mb} MiB; it was refused unread and the process killed") from None
        raise BenchError(_death_message(where, _exit_code(child), limits)) from None
    except EOFError:
        raise BenchError(_death_message(where, _exit_code(child), limits)) from None


def _exit_code(child: subprocess.Popen) -> int | None:
    try:
        return child.wait(5)
    except subprocess.TimeoutExpired:
        return None


def _silent_child(child: subprocess.Popen, where: str, reason: str, limits: Limits) -> str:
    """A child that sent nothing in time: dead (say how) or alive (kill it, say which limit)."""
    if child.poll() is not None:
        return _death_message(where, child.returncode, limits)
    _kill(child)
    return f"{where}: {reason}; the isolated process was killed"


def _death_message(where: str, exitcode: int | None, limits: Limits) -> str:
    if exitcode is not None and 128 < exitcode < 128 + signal.NSIG:  # bwrap passes a signal on as 128 + its number
        exitcode = 128 - exitcode
    if exitcode is not None and exitcode < 0:
        number = -exitcode
        if number == signal.SIGXCPU:
            return f"{where}: used more than the CPU-time limit of {limits.cpu_seconds} s; killed by SIGXCPU"
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        hint = f" (the memory limit of {limits.memory_mb} MiB or the system's OOM killer)" \
            if number == signal.SIGKILL else ""
        return f"{where}: the isolated process was killed by {name}{hint} before answering"
    return f"{where}: the isolated process exited with code {exitcode} before answering"


def _failure_message(where: str, answer: Mapping[str, Any], limits: Limits) -> str:
    """The child's error, every piece of it escaped (it is the method's text, and may carry rich markup,
    control characters or a fake line of the harness's output)."""
    at = f" at {containment.escape(str(answer['at']), 200)}" if answer.get("at") else ""
    error = containment.escape(str(answer.get("error")))
    if answer.get("cause") == "memory":
        return (f"{where}: ran out of memory{at}: it hit the memory limit of {limits.memory_mb} MiB "
                f"(address space beyond the isolated process's start-up) -- {error}")
    if answer.get("cause") == "load":
        return f"{where}: running the method file failed{at}: {error}"
    if answer.get("cause") in ("registration", "answer"):
        return f"{where}: {error}"
    return f"{where}: raised {error}{at}"


def _kill(child: subprocess.Popen) -> None:
    """The child leads its own session: kill the whole group, so processes the method started go too."""
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    child.wait()


def _stop(child: subprocess.Popen) -> None:
    try:
        child.wait(1)
    except subprocess.TimeoutExpired:
        pass
    _kill(child)


def _janitor(workdir: str) -> subprocess.Popen:
    """A light process outside the sandbox that removes ``workdir`` if this one is killed: the sandboxed child
    cannot remove the folder it is mounted on, and this process is gone."""
    code = ("from harness.core.processes import remove_when_parent_dies; "
            f"remove_when_parent_dies({os.getpid()}, {workdir!r})")
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=True, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def remove_stale_workdirs(folder: str | Path | None = None) -> None:
    """Remove temporary folders of isolated children whose parent process is gone."""
    for workdir in Path(folder or tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}*-*"):
        if _stale(workdir.name):
            shutil.rmtree(workdir, ignore_errors=True)


def remove_stale_cgroups() -> None:
    """Empty and remove the cgroups of isolated children whose parent process is gone (they carry their box's name)."""
    for controller, parent in cgroups.cgroup_parents()[0].items():
        for folder in parent.glob(_cgroup_name(f"{WORKDIR_PREFIX}*-*")):
            if _stale(folder.name):
                cgroups.CgroupCaps({controller: folder}).remove()


def _stale(name: str) -> bool:
    pid = name[len(WORKDIR_PREFIX):].split("-", 1)[0]
    return pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid))
