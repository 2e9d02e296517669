"""The child process's side of isolation: load the inputs, limit itself, signal ready, wait for the go
signal, run the plugin's bytes and answer with the plan -- or, given a ``PhaseInput``, the pre-pruning
phase's run and trained weights, trained by the harness's own loop (``run_phase``) -- as data. The child's
bootstrap imports this module alone, so none of the parent's launching code runs there.

Limits count from the moment the child is ready -- torch imported, inputs loaded -- so they measure
the method, not the start-up: CPU time (``RLIMIT_CPU``, SIGXCPU) and address space beyond the
child's baseline (``RLIMIT_AS``); the parent adds the wall clock and, between ready and go, the cgroup
caps. rlimits are set with hard = soft; a method running as root (level ``rlimits`` under a root
harness) could still lift them, which the sandbox levels prevent by running it as uid 65534. Plans are
computed on the CPU: ``RLIMIT_AS`` and CUDA's address-space reservations do not mix.

Every failure of the method's code -- loading the file, registering the wrong function or phase, raising,
running out of memory, keeping a memory that is not plain data -- becomes an error answer; none escapes as
anything else.
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
from harness.methods.exchange import (GO, INPUT_FILE, READY, ChildInput, Limits, phase_to_data, plan_to_data,
                                     serialise)
from harness.methods.landlock import UNPRIVILEGED_UID
from harness.methods.phase import PhaseRun, run_phase
from harness.methods.plugins import PHASE_FUNCTIONS, run_plugin_source
from harness.methods.registry import Method, PruningContext, get_method
from harness.methods.training import PhaseContext

MEMORY_MARKERS = ("can't allocate memory", "cannot allocate memory", "out of memory", "std::bad_alloc")


def child_main(fd: int, go_fd: int, parent: int | None = None) -> None:
    """The child (run as ``python -c``): load, limit, signal ready, wait for the go signal (the parent puts it in
    its cgroups meanwhile), run the plugin's bytes, send the plan or the phase as data."""
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
        generator = torch.Generator()
        generator.set_state(inputs.generator_state)
        if inputs.phase is None:
            stage = "select"
            result = plan_to_data(method.select(PruningContext(
                model=inputs.model, sizes=inputs.sizes, keep=inputs.keep, generator=generator,
                max_batches=len(inputs.batches),
                batch_source=(lambda: iter(inputs.batches)) if inputs.batches else None, kind=inputs.kind,
                example_input=inputs.example_input, allocate=inputs.allocate, memory=inputs.memory)))
        else:
            _check_phase(inputs, module, method)
            stage = "phase"
            run = _run_phase(inputs, method, generator)
            stage = "answer"
            result = phase_to_data(run, inputs.model)
        answer = {"status": "ok", "result": result}
    except BaseException as exc:  # the method's code is untrusted: every failure is reported, none escapes
        cause = "memory" if _is_memory_error(exc) else stage if stage in ("load", "registration", "answer") \
            else "exception"
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


def _run_phase(inputs: ChildInput, method: Method, generator: torch.Generator) -> PhaseRun:
    """The method's real phase on the model's copy, by the harness's loop, with the batch norms found in the copy."""
    phase = inputs.phase
    named = dict(inputs.model.named_modules())
    data_generator = torch.Generator()
    data_generator.set_state(phase.data_generator_state)
    context = PhaseContext(model=inputs.model, sizes=inputs.sizes, keep=inputs.keep,
                           batchnorms={layer: named[name] for layer, name in phase.batchnorms.items()},
                           generator=generator, steps=phase.steps, epochs=phase.epochs, memory=dict(inputs.memory))
    return run_phase(method.training, context, phase.train_split, phase.recipe, data_generator)


def _check_phase(inputs: ChildInput, module: Any, method: Method) -> None:
    """The phase registered under the name must be the one the syntax tree showed: its fraction, and as penalty and
    hook the module-level functions it named."""
    declared, phase = inputs.phase.declared, method.training
    names = {role: getattr(getattr(declared, role), "function", None) for role in PHASE_FUNCTIONS}
    if phase is None or phase.fraction != declared.fraction or any(
            getattr(phase, role) is not (module.__dict__.get(name) if name else None) for role, name in names.items()):
        written = ", ".join([repr(declared.fraction)] + [f"{role}={name}" for role, name in names.items() if name])
        raise BenchError(f"the training phase registered as '{inputs.method}' is not TrainingPhase({written}), the one "
                         "the harness read; register it with harness.methods.register_method")


def _where_in(path: str, exc: BaseException) -> str | None:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == path]
    return f"{path}:{frames[-1].lineno}" if frames else None


def _is_memory_error(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or (
        isinstance(exc, RuntimeError) and any(m in str(exc).lower() for m in MEMORY_MARKERS))


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
