"""Untrusted method code runs isolated: a plugin's plan is computed in a child Python process under
CPU-time, memory and wall-clock limits, and comes back as plain data for the harness to validate.

The child gets a CPU copy of the model, the prunable layers with their counts, the method's seeded
generator, at most ``max_batches`` training-split batches (materialised tensors -- never validation
or test data), an example input, and the target's global ranking when the method may use it. It
never gets the optimizer, the splits or the results directory, and it runs in a fresh temporary
working directory (removed afterwards). It runs exactly the bytes the harness digested for the
record. The child is a ``subprocess`` (not ``multiprocessing``), so the caller's ``__main__`` is
never re-imported, and it leads its own process group, which is killed as a whole.

Its own session keeps it out of the caller's process-group signals, so it dies with its parent
instead: the kernel sends it SIGTERM when the parent dies (``PR_SET_PDEATHSIG``) and a watchdog
thread checks the parent's id besides; either way the child removes its temporary folder and kills
its whole group (whatever the method started goes too). Folders of children killed before they
could clean up are removed by the next isolated run, once their parent is gone.

Limits (``Limits``) count from the moment the child is ready -- torch imported, inputs loaded -- so
they measure the method, not the start-up: CPU time (``RLIMIT_CPU``, SIGXCPU), address space beyond
the child's baseline (``RLIMIT_AS``), and wall-clock time (the parent kills the child). rlimits are
set with hard = soft; a method running as root could still lift them, so run submissions as an
unprivileged user. Plans are computed on the CPU: ``RLIMIT_AS`` and CUDA's address-space
reservations do not mix.

The child's answer is read with ``torch.load(weights_only=True)``: tensors, numbers, strings, lists
and dicts only, so nothing the child sends can execute code in the harness; it is refused unread
beyond ``Limits.answer_mb``.

The child runs in the sandbox of ``harness.methods.sandbox`` at the strongest level this machine
allows (``bwrap`` > ``landlock`` > ``rlimits``), probed once and named on stderr the first time a
plugin runs: an allow-listed environment, stdout and stderr into capped pipes (shown only escaped and
truncated, in failure messages), and -- the harness being a child subreaper -- every descendant it
left is killed when the plan is done. Text from the child is escaped before it reaches any message.
"""

from __future__ import annotations

import copy
import hashlib
import io
import itertools
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

from harness.core.atomic import pid_alive
from harness.core.errors import BenchError
from harness.core.processes import leave_with_parent
from harness.methods import sandbox
from harness.methods.plugins import PluginMethod, is_plugin, run_plugin_source
from harness.methods.registry import Method, PruningContext, get_method
from harness.plans import ChannelPlan, MaskPlan

READY = b"ready"
INPUT_FILE = "inputs.pt"
WORKDIR_PREFIX = "bench-method-"
"""Temporary folders are ``bench-method-<parent pid>-<random>``: the parent's id tells a stale one."""
MEMORY_MARKERS = ("can't allocate memory", "cannot allocate memory", "out of memory", "std::bad_alloc")


@dataclass(frozen=True)
class Limits:
    """What one plugin plan may use, counted from when its child is ready; ``startup_seconds`` bounds
    the start-up itself (importing torch, loading the model)."""

    wall_seconds: float = 600.0
    cpu_seconds: int = 600
    memory_mb: int = 8192
    startup_seconds: float = 300.0
    answer_mb: int = 256
    processes: int = sandbox.MAX_PROCESSES

    def __post_init__(self) -> None:
        if min(self.wall_seconds, self.cpu_seconds, self.memory_mb, self.startup_seconds, self.answer_mb,
               self.processes) <= 0:
            raise BenchError(f"isolation limits must be positive, got {self}")


@dataclass(frozen=True)
class ChildInput:
    """Everything the child receives (and the key a plugin's outcome is remembered by)."""

    method: str
    path: str
    source: bytes
    model: nn.Module
    sizes: Mapping[str, int]
    keep: Mapping[str, int]
    generator_state: torch.Tensor
    batches: list[tuple[torch.Tensor, torch.Tensor]]
    kind: str
    example_input: torch.Tensor | None
    allocate: Callable[[Mapping[str, torch.Tensor]], dict[str, int]] | None
    threads: int
    limits: Limits
    function: str = ""
    line: int = 0


class Isolation:
    """Computes a method's raw plan: in this process for built-in methods (fast), in a limited child
    process for plugins. A plugin's outcome -- plan or failure -- is remembered by its exact inputs,
    so a method's twin and its runs under every schedule and budget share one child."""

    def __init__(self, limits: Limits = Limits(), level: str | None = None, unsafe: bool = False):
        if level is not None and level not in sandbox.LEVELS:
            raise BenchError(f"unknown sandbox level {level!r}; use one of {', '.join(sandbox.LEVELS)}")
        required, asked_unsafe = sandbox.requirement()
        self.limits = limits
        self.unsafe = unsafe or asked_unsafe
        self._level = level
        self._outcomes: dict[str, dict[str, Any] | BenchError] = {}
        if required is not None:
            self.require(required)

    @property
    def level(self) -> str:
        """The sandbox level plugins run at: the one asked for, else the strongest this machine allows."""
        if self._level is None:
            probe = sandbox.probe()
            self._level = probe.level
            print(probe.line(), file=sys.stderr)
        return self._level

    def record_fields(self, name: str) -> dict[str, Any]:
        """What a record says about where the method ``name``'s plan was computed (nothing is probed for a
        built-in method, which runs in-process)."""
        try:
            method = get_method(name)
        except BenchError:
            return {}
        if not is_plugin(method):
            return {"isolation": "in-process"}
        level = self.level
        below = not sandbox.greater_or_equal(level, sandbox.REQUIRED_LEVEL)
        return {"isolation": level, "unsafe_isolation": self.unsafe and below}

    def require(self, required: str = sandbox.REQUIRED_LEVEL) -> None:
        """Refuse to go on below ``required`` unless this isolation was made ``unsafe`` on request."""
        level = self.level
        if not sandbox.greater_or_equal(level, required) and not self.unsafe:
            probe = sandbox.probe()
            raise BenchError(f"the sandbox here reaches level '{level}', below the '{required}' the leaderboard "
                             f"requires ({'; '.join(probe.missing) or 'level set by hand'}); install what is "
                             "missing, or pass --unsafe-isolation to run anyway with the records marked")

    def select(self, method: Method, context: PruningContext) -> object:
        if not is_plugin(method):
            return method.select(context)
        inputs = child_input(method.select, context, self.limits)
        payload = _serialise(inputs)
        key = hashlib.sha256(payload).hexdigest()
        if key not in self._outcomes:
            try:
                self._outcomes[key] = run_isolated(inputs, payload, self.level)
            except BenchError as exc:
                self._outcomes[key] = exc
        outcome = self._outcomes[key]
        if isinstance(outcome, BenchError):
            raise BenchError(str(outcome))
        return plan_from_data(outcome)


def child_input(plugin: PluginMethod, context: PruningContext, limits: Limits) -> ChildInput:
    """The child's share of ``context``: CPU copies, and at most ``max_batches`` materialised training batches."""
    batches = []
    if context.batch_source is not None and context.max_batches > 0:
        batches = [(inputs.detach().cpu(), labels.detach().cpu())
                   for inputs, labels in itertools.islice(context.batch_source(), context.max_batches)]
    return ChildInput(
        method=plugin.name, path=str(plugin.path), source=plugin.source,
        model=copy.deepcopy(context.model).cpu().eval(), sizes=dict(context.sizes), keep=dict(context.keep),
        generator_state=context.generator.get_state(), batches=batches, kind=context.kind,
        example_input=None if context.example_input is None else context.example_input.detach().cpu(),
        allocate=context.allocate, threads=torch.get_num_threads(), limits=limits,
        function=plugin.function, line=plugin.line,
    )


def _serialise(value: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


_SUBREAPER: list[bool] = []


def run_isolated(inputs: ChildInput, payload: bytes | None = None, level: str = "rlimits") -> dict[str, Any]:
    """Start the child in the sandbox at ``level`` and wait within the limits; returns its plan as data,
    every failure is one BenchError line."""
    limits = inputs.limits
    where = f"method '{inputs.method}' ({inputs.path})"
    remove_stale_workdirs()
    if not _SUBREAPER:
        _SUBREAPER.append(sandbox.become_subreaper())
    before = sandbox.children_now()
    with tempfile.TemporaryDirectory(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-") as workdir:
        (Path(workdir) / INPUT_FILE).write_bytes(payload or _serialise(inputs))
        if level == "bwrap" and os.geteuid() == 0:
            for path in (workdir, Path(workdir) / INPUT_FILE):
                os.chown(path, sandbox.UNPRIVILEGED_UID, sandbox.UNPRIVILEGED_UID)
        janitor = _janitor(workdir) if level == "bwrap" else None
        read_fd, write_fd = os.pipe()
        out_read, out_write = os.pipe()
        try:
            child = subprocess.Popen(
                _command(level, write_fd, workdir), cwd=workdir, pass_fds=(write_fd,), stdin=subprocess.DEVNULL,
                stdout=out_write, stderr=out_write, start_new_session=True, env=_environment(level, workdir))
        except OSError as exc:
            os.close(out_read)
            raise BenchError(f"{where}: the sandbox ({level}) could not start the isolated process: "
                             f"{sandbox.escape(str(exc))}") from None
        finally:
            os.close(write_fd)
            os.close(out_write)
        output = sandbox.CappedReader(out_read)
        receiver = Connection(read_fd, writable=False)
        try:
            answer = _answer(receiver, child, where, limits)
        except BenchError as exc:
            raise BenchError(_with_output(str(exc), output)) from None
        finally:
            receiver.close()
            _stop(child)
            if janitor is not None:
                janitor.kill()
                janitor.wait()
            sandbox.reap_descendants(before)
    if answer.get("status") != "ok":
        raise BenchError(_with_output(_failure_message(where, answer, limits), output))
    return answer["plan"]


def _with_output(message: str, output: sandbox.CappedReader) -> str:
    text = output.text()
    return f"{message} (its output, escaped: {text})" if text else message


def _command(level: str, fd: int, workdir: str) -> list[str]:
    """The child's command line: the interpreter runs a fixed bootstrap (the parent's id, the work folder
    and the pipe's number are its only arguments), wrapped in bubblewrap at level ``bwrap``."""
    inside = sandbox.SANDBOX_WORK if level == "bwrap" else workdir
    # under bwrap the parent is the sandbox's own init (the harness is in another pid namespace): it dies
    # with the harness (--die-with-parent), and the child with it
    parent = "os.getppid()" if level == "bwrap" else str(os.getpid())
    bootstrap = (f"import os; os.chdir({inside!r}); from harness.core.processes import leave_with_parent; "
                 f"leave_with_parent({parent}, os.getcwd()); "
                 f"from harness.methods.isolation import child_main; child_main({fd})")
    argv = [sys.executable, "-s", "-c", bootstrap]
    return sandbox.bwrap_command(argv, workdir) if level == "bwrap" else argv


def _environment(level: str, workdir: str) -> dict[str, str]:
    if level == "bwrap":
        return sandbox.child_env(level, sandbox.SANDBOX_LIB, sandbox.SANDBOX_WORK)
    return sandbox.child_env(level, str(Path(__file__).resolve().parents[2]), workdir)


def _answer(receiver: Connection, child: subprocess.Popen, where: str, limits: Limits) -> dict[str, Any]:
    if not receiver.poll(limits.startup_seconds):
        raise BenchError(_silent_child(child, where, f"did not start within {limits.startup_seconds:g} s "
                                                     "(importing torch and loading the model)", limits))
    if _receive(receiver, child, where, limits) != READY:
        raise BenchError(f"{where}: the isolated process sent something other than its ready signal")
    if not receiver.poll(limits.wall_seconds):
        raise BenchError(_silent_child(child, where, f"ran past the wall-clock limit of {limits.wall_seconds:g} s",
                                       limits))
    data = _receive(receiver, child, where, limits)
    try:
        answer = torch.load(io.BytesIO(data), weights_only=True)
    except Exception as exc:  # whatever the bytes are, they must not reach the harness as anything but an error
        raise BenchError(f"{where}: the isolated process sent an unreadable answer ({type(exc).__name__})") from None
    if not isinstance(answer, dict) or not isinstance(answer.get("plan", {}), dict):
        raise BenchError(f"{where}: the isolated process sent an answer that is not a plan or an error")
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
        return f"{where}: the isolated process was killed by {name}{hint} before returning a plan"
    return f"{where}: the isolated process exited with code {exitcode} before returning a plan"


def _failure_message(where: str, answer: Mapping[str, Any], limits: Limits) -> str:
    """The child's error, every piece of it escaped (it is the method's text, and may carry rich markup,
    control characters or a fake line of the harness's output)."""
    at = f" at {sandbox.escape(str(answer['at']), 200)}" if answer.get("at") else ""
    error = sandbox.escape(str(answer.get("error")))
    if answer.get("cause") == "memory":
        return (f"{where}: ran out of memory{at}: it hit the memory limit of {limits.memory_mb} MiB "
                f"(address space beyond the isolated process's start-up) -- {error}")
    if answer.get("cause") == "load":
        return f"{where}: running the method file failed{at}: {error}"
    if answer.get("cause") == "registration":
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


def plan_to_data(plan: object) -> dict[str, Any]:
    """A plan as plain data for the trip back; anything that is not an int index or a tensor mask
    travels as its repr, so the harness's validation refuses it exactly as it would in-process."""
    if isinstance(plan, ChannelPlan) and isinstance(plan.kept, Mapping):
        return {"type": "ChannelPlan", "kept": {
            _key(layer): [i if type(i) is int else repr(i) for i in indices] if _sequence(indices) else repr(indices)
            for layer, indices in plan.kept.items()}}
    if isinstance(plan, MaskPlan) and isinstance(plan.masks, Mapping):
        return {"type": "MaskPlan", "masks": {
            _key(layer): mask.detach().cpu().clone() if isinstance(mask, torch.Tensor) else repr(mask)
            for layer, mask in plan.masks.items()}}
    return {"type": type(plan).__name__}


def _key(layer: object) -> str:
    return layer if isinstance(layer, str) else repr(layer)


def _sequence(value: object) -> bool:
    return isinstance(value, (list, tuple, range))


def plan_from_data(data: Mapping[str, Any]) -> object:
    """The plan the child returned, rebuilt (with its own tensors) for ``validate_plan``."""
    if data.get("type") == "ChannelPlan" and isinstance(data.get("kept"), dict):
        return ChannelPlan({layer: tuple(v) if isinstance(v, list) else v for layer, v in data["kept"].items()})
    if data.get("type") == "MaskPlan" and isinstance(data.get("masks"), dict):
        return MaskPlan({layer: v.clone() if isinstance(v, torch.Tensor) else v for layer, v in data["masks"].items()})
    return type(str(data.get("type")), (), {})()  # an object of the returned type's name, for validate_plan's message


def _limit_resources(limits: Limits) -> None:
    """CPU seconds and address space from now on; hard = soft so the method cannot raise them unprivileged."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = math.ceil(usage.ru_utime + usage.ru_stime) + limits.cpu_seconds
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    memory = _address_space() + limits.memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.memory_mb * 2**20,) * 2)
    # RLIMIT_NPROC counts every process of the user, so it is set only for the sandbox's own uid (bwrap
    # started as root); root ignores it, and a user's session would already be over any small cap
    if os.getuid() == sandbox.UNPRIVILEGED_UID:
        tasks = len(os.listdir("/proc/self/task")) + limits.processes
        resource.setrlimit(resource.RLIMIT_NPROC, (tasks, tasks))


def _address_space() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise BenchError("cannot read this process's address space size from /proc/self/status (Linux only)")


def _where_in(path: str, exc: BaseException) -> str | None:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == path]
    return f"{path}:{frames[-1].lineno}" if frames else None


def _is_memory_error(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or (
        isinstance(exc, RuntimeError) and any(m in str(exc).lower() for m in MEMORY_MARKERS))


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


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
        pid = workdir.name[len(WORKDIR_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            shutil.rmtree(workdir, ignore_errors=True)


def _check_registered(inputs: ChildInput, module: Any, method: Method) -> None:
    """The function registered under the name must be the module-level function the syntax tree showed."""
    if not inputs.function:
        return
    function = module.__dict__.get(inputs.function)
    code = getattr(method.select, "__code__", None)
    if method.select is not function or code is None or code.co_filename != inputs.path \
            or code.co_firstlineno > inputs.line or inputs.line - code.co_firstlineno > 50:
        raise BenchError(f"the function registered as '{inputs.method}' is not '{inputs.function}' defined at line "
                         f"{inputs.line}, the one the harness read; register it with harness.methods.register_method")


def child_main(fd: int, parent: int | None = None) -> None:
    """The child (run as ``python -c``): load, limit, signal ready, run the plugin's bytes, send the plan as data."""
    if parent is not None:  # normally done already, before this module (and torch) was imported
        leave_with_parent(parent, Path.cwd())
    sender = Connection(fd, readable=False)
    inputs: ChildInput = torch.load(INPUT_FILE, weights_only=False)
    os.remove(INPUT_FILE)
    torch.set_num_threads(inputs.threads)
    _limit_resources(inputs.limits)
    sender.send_bytes(READY)
    stage = "load"
    try:
        module = run_plugin_source(inputs.source, inputs.path)
        method = get_method(inputs.method)
        stage = "registration"
        _check_registered(inputs, module, method)
        stage = "select"
        generator = torch.Generator()
        generator.set_state(inputs.generator_state)
        context = PruningContext(
            model=inputs.model, sizes=inputs.sizes, keep=inputs.keep, generator=generator,
            max_batches=len(inputs.batches), batch_source=(lambda: iter(inputs.batches)) if inputs.batches else None,
            kind=inputs.kind, example_input=inputs.example_input, allocate=inputs.allocate,
        )
        answer = {"status": "ok", "plan": plan_to_data(method.select(context))}
    except BaseException as exc:  # the method's code is untrusted: every failure is reported, none escapes
        cause = "memory" if _is_memory_error(exc) else stage if stage in ("load", "registration") else "exception"
        answer = {"status": "error", "cause": cause, "error": _describe(exc), "at": _where_in(inputs.path, exc)}
    sender.send_bytes(_serialise(answer))
    sender.close()
