"""The child process's side of isolation: load the inputs, limit itself, signal ready, wait for the go
signal, run the plugin's bytes and answer with the plan as data. The child's bootstrap imports this module
alone, so none of the parent's launching code runs there.

Limits count from the moment the child is ready -- torch imported, inputs loaded -- so they measure
the method, not the start-up: CPU time (``RLIMIT_CPU``, SIGXCPU) and address space beyond the
child's baseline (``RLIMIT_AS``); the parent adds the wall clock and, between ready and go, the cgroup
caps. rlimits are set with hard = soft; a method running as root (level ``rlimits`` under a root
harness) could still lift them, which the sandbox levels prevent by running it as uid 65534. Plans are
computed on the CPU: ``RLIMIT_AS`` and CUDA's address-space reservations do not mix.

Every failure of the method's code -- loading the file, registering the wrong function, raising,
running out of memory -- becomes an error answer; none escapes as anything else.
"""

from __future__ import annotations

import math
import os
import resource
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import torch

from harness.core.errors import BenchError
from harness.core.processes import leave_with_parent
from harness.methods.exchange import GO, INPUT_FILE, READY, ChildInput, Limits, plan_to_data, serialise
from harness.methods.landlock import UNPRIVILEGED_UID
from harness.methods.plugins import run_plugin_source
from harness.methods.registry import Method, PruningContext, get_method

MEMORY_MARKERS = ("can't allocate memory", "cannot allocate memory", "out of memory", "std::bad_alloc")


def child_main(fd: int, go_fd: int, parent: int | None = None) -> None:
    """The child (run as ``python -c``): load, limit, signal ready, wait for the go signal (the parent puts it in
    its cgroups meanwhile), run the plugin's bytes, send the plan as data."""
    if parent is not None:  # normally done already, before this module (and torch) was imported
        leave_with_parent(parent, Path.cwd())
    sender = Connection(fd, readable=False)
    inputs: ChildInput = torch.load(INPUT_FILE, weights_only=False)
    os.remove(INPUT_FILE)
    torch.set_num_threads(inputs.threads)
    _limit_resources(inputs.limits, inputs.threads)
    sender.send_bytes(READY)
    if os.read(go_fd, len(GO)) != GO:  # the parent is gone
        os._exit(1)
    os.close(go_fd)
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
    sender.send_bytes(serialise(answer))
    sender.close()


def _limit_resources(limits: Limits, threads: int) -> None:
    """CPU seconds and address space from now on; hard = soft so the method cannot raise them unprivileged. The
    process cap leaves room for torch's pool of ``threads`` (started at its first parallel operation)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = math.ceil(usage.ru_utime + usage.ru_stime) + limits.cpu_seconds
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    memory = _address_space() + limits.memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.memory_mb * 2**20,) * 2)
    # RLIMIT_NPROC counts every process of the user, so it is set only for the sandbox's own uid (bwrap or
    # landlock under a root harness); root ignores it, and a user's session would already be over any small cap
    if os.getuid() == UNPRIVILEGED_UID:
        tasks = len(os.listdir("/proc/self/task")) + threads + limits.processes
        resource.setrlimit(resource.RLIMIT_NPROC, (tasks, tasks))


def _address_space() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise BenchError("cannot read this process's address space size from /proc/self/status (Linux only)")


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


def _where_in(path: str, exc: BaseException) -> str | None:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == path]
    return f"{path}:{frames[-1].lineno}" if frames else None


def _is_memory_error(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or (
        isinstance(exc, RuntimeError) and any(m in str(exc).lower() for m in MEMORY_MARKERS))


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
