"""Plugin methods: pruning methods defined in files outside the harness -- every ``bench/methods/*.py``
and any file given to ``bench submit``.

The harness never runs a plugin file in its own process. It reads the file's registration -- an
``@register_method(...)`` decorator whose arguments are literals -- from the syntax tree, checks
it (a name, a kind, a module-level function of exactly one context argument), and registers a
:class:`PluginMethod` stand-in holding the file's bytes. Plans are computed by running exactly
those bytes in an isolated child process (``harness.methods.isolation``), so what was digested is what ran.

A plugin may declare what a built-in method declares (``harness.methods.training``): ``rounds=<int>`` and
``training=TrainingPhase(<fraction>, penalty=<function>, hook=<function>)``, the fraction a literal number and
penalty and hook (one or both) names of module-level functions of this file taking one argument, the
``PhaseContext``. The parent keeps the fraction, to split the budget, and :class:`PluginFunction` stand-ins for
the functions; the phase runs in the method's isolated process, like its plan.

A method's *digest* is the SHA-256 of its source file (for a built-in, its module file): records
carry it, and ``bench verify`` compares it with the file as it is now.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import os
import re
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

from harness.core.errors import BenchError
from harness.methods.registry import (
    Method,
    PruningContext,
    builtin_sources,
    get_method,
    list_methods,
    register_method,
    registered_method,
)
from harness.methods.training import PhaseContext, TrainingPhase

METHODS_ENV = "PRUNE_BENCH_METHODS"
KINDS = ("structured", "unstructured")
ARGUMENTS: dict[str, type] = {"name": str, "kind": str, "needs_data": bool, "citation": str, "global_ranking": bool,
                              "rounds": int}
"""register_method's literal arguments; ``training`` is read apart (``_training``)."""
PHASE_FUNCTIONS = ("penalty", "hook")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_EXAMPLE = '@register_method("my-method", kind="structured") above `def my_method(ctx):`'
_TRAINING_EXAMPLE = "training=TrainingPhase(0.5, penalty=my_penalty, hook=my_hook) naming module-level functions"


@dataclass(frozen=True)
class PluginMethod:
    """The registry's stand-in for a plugin method: where it is defined, and the exact bytes that were read."""

    name: str
    path: Path
    function: str
    line: int
    source: bytes = field(repr=False)

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.source).hexdigest()

    def __call__(self, context: PruningContext):
        raise BenchError(f"method '{self.name}' ({self.path}) is a plugin: its plan is computed in an isolated "
                         "process through Workspace.make_plan, never in the harness's own process")


@dataclass(frozen=True)
class PluginFunction:
    """The parent's stand-in for a plugin's penalty or hook: the module-level function it names, which runs only
    in the method's isolated process."""

    method: str
    path: Path
    function: str
    line: int

    def __call__(self, context: PhaseContext):
        raise BenchError(f"method '{self.method}' ({self.path}) is a plugin: its training phase ('{self.function}') "
                         "runs in its isolated process, never in the harness's own process")


@dataclass(frozen=True)
class Registration:
    """One ``@register_method(...)`` as read from a plugin file."""

    name: str
    kind: str
    needs_data: bool
    citation: str
    global_ranking: bool
    function: str
    line: int
    decorator_line: int
    training: TrainingPhase | None = None
    rounds: int = 1


def methods_dir(explicit: str | Path | None = None) -> Path | None:
    """Where plugin files live: an explicit dir (which must exist), $PRUNE_BENCH_METHODS, ./bench/methods,
    or the checkout's; None when there is none."""
    named = explicit or os.environ.get(METHODS_ENV)
    if named:
        if not Path(named).is_dir():
            raise BenchError(f"method directory {named} does not exist; point --methods-dir or {METHODS_ENV} "
                             "at a folder of method files")
        return Path(named)
    for candidate in (Path.cwd() / "bench" / "methods", Path(__file__).resolve().parents[1] / "bench" / "methods"):
        if candidate.is_dir():
            return candidate
    return None


def file_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def is_plugin(method: Method) -> bool:
    return isinstance(method.select, PluginMethod)


def method_source(method: Method) -> Path | None:
    """The file that defines ``method``, or None for a function without a source file."""
    if is_plugin(method):
        return method.select.path
    source = inspect.getsourcefile(method.select)
    return Path(source).resolve() if source else None


def method_digest(method: Method) -> str | None:
    """SHA-256 of the method's source: the bytes a plugin's child runs, or a built-in's module file."""
    if is_plugin(method):
        return method.select.digest
    source = method_source(method)
    return file_digest(source) if source and source.is_file() else None


def registered_digest(name: str) -> str | None:
    """The digest of the registered method ``name`` (None when there is none, or no source file)."""
    method = next((m for m in list_methods() if m.name == name), None)
    return method_digest(method) if method is not None else None


def _callee(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _literal(path: Path, argument: str, node: ast.expr) -> object:
    expected = ARGUMENTS[argument]
    try:
        value = ast.literal_eval(node)
    except ValueError:
        value = None
    if type(value) is not expected:
        raise BenchError(f"{path}:{node.lineno}: register_method's '{argument}' must be a literal {expected.__name__} "
                         "(the harness reads it without running the file)")
    return value


def _named_arguments(call: ast.Call, first: str, given_twice: str) -> dict[str, ast.expr]:
    """A call's arguments by name, its one positional argument named ``first``; ``given_twice`` is the error
    when it is also passed by keyword."""
    nodes = {k.arg: k.value for k in call.keywords}
    if call.args:
        if first in nodes:
            raise BenchError(given_twice)
        nodes[first] = call.args[0]
    return nodes


def _registration(path: Path, call: ast.Call, function: ast.FunctionDef,
                  functions: dict[str, ast.FunctionDef]) -> Registration:
    line = call.lineno
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        raise BenchError(f"{path}:{line}: write register_method's arguments out (no * or **); "
                         "the harness reads them without running the file")
    if len(call.args) > 1:
        raise BenchError(f"{path}:{line}: register_method takes only the name positionally; "
                         "pass kind=..., needs_data=... by keyword")
    nodes = _named_arguments(call, "name", f"{path}:{line}: register_method is given the name twice")
    training = nodes.pop("training", None)
    unknown = [a for a in nodes if a not in ARGUMENTS]
    if unknown:
        raise BenchError(f"{path}:{line}: register_method has no argument '{unknown[0]}' "
                         f"(it takes {', '.join(ARGUMENTS)}, training)")
    if "name" not in nodes:
        raise BenchError(f"{path}:{line}: register_method is missing the method's name; write {_EXAMPLE}")
    values = {argument: _literal(path, argument, node) for argument, node in nodes.items()}
    name = values["name"]
    if not _NAME.match(name):
        raise BenchError(f"{path}:{line}: bad method name {name!r}; use letters, digits, '.', '_' or '-' "
                         "(it names records, studies and report folders)")
    if "kind" not in values:
        raise BenchError(f"{path}:{line}: method '{name}' is missing its kind; add kind=\"structured\" "
                         "(returns a ChannelPlan) or kind=\"unstructured\" (returns a MaskPlan)")
    if values["kind"] not in KINDS:
        raise BenchError(f"{path}:{line}: bad kind {values['kind']!r} for method '{name}'; use \"structured\" "
                         "(returns a ChannelPlan) or \"unstructured\" (returns a MaskPlan)")
    _check_signature(path, f"function '{function.name}' of method '{name}'", function, "PruningContext")
    citation = values.get("citation") or (ast.get_docstring(function) or "").strip()
    return Registration(name, values["kind"], values.get("needs_data", False), citation,
                        values.get("global_ranking", False), function.name, function.lineno, line,
                        None if training is None else _training(path, name, training, functions),
                        values.get("rounds", 1))


def _training(path: Path, name: str, node: ast.expr, functions: dict[str, ast.FunctionDef]) -> TrainingPhase:
    """``training=TrainingPhase(...)`` as read: the declared fraction, and stand-ins for the functions it names."""
    line = node.lineno
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "TrainingPhase") \
            or any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords) \
            or len(node.args) > 1:
        raise BenchError(f"{path}:{line}: method '{name}': write {_TRAINING_EXAMPLE} (the harness reads it without "
                         "running the file)")
    nodes = _named_arguments(node, "fraction",
                             f"{path}:{line}: method '{name}': TrainingPhase is given its fraction twice")
    unknown = [a for a in nodes if a not in ("fraction", *PHASE_FUNCTIONS)]
    if unknown or "fraction" not in nodes:
        problem = f"has no argument '{unknown[0]}'" if unknown else "is missing its fraction of the budget"
        raise BenchError(f"{path}:{line}: method '{name}': TrainingPhase {problem}; write {_TRAINING_EXAMPLE}")
    try:
        fraction = ast.literal_eval(nodes["fraction"])
    except ValueError:
        fraction = None
    if type(fraction) not in (int, float):
        raise BenchError(f"{path}:{line}: method '{name}': TrainingPhase's fraction must be a literal number "
                         "(the harness reads it without running the file)")
    stand_ins = {role: _phase_function(path, name, role, nodes[role], functions)
                 for role in PHASE_FUNCTIONS if role in nodes}
    try:
        return TrainingPhase(fraction, **stand_ins)
    except BenchError as exc:
        raise BenchError(f"{path}:{line}: method '{name}': {exc}") from None


def _phase_function(path: Path, name: str, role: str, node: ast.expr,
                    functions: dict[str, ast.FunctionDef]) -> PluginFunction:
    function = functions.get(node.id) if isinstance(node, ast.Name) else None
    if function is None:
        raise BenchError(f"{path}:{node.lineno}: method '{name}': the training phase's {role} must name a "
                         f"module-level function of this file (`{role}=my_{role}` with `def my_{role}(phase):`)")
    _check_signature(path, f"{role} '{function.name}' of method '{name}'", function, "PhaseContext")
    return PluginFunction(name, path, function.name, function.lineno)


def _check_signature(path: Path, what: str, function: ast.FunctionDef, argument: str) -> None:
    args = function.args
    positional = [a.arg for a in args.posonlyargs + args.args]
    extra = ([f"*{args.vararg.arg}"] if args.vararg else []) + [a.arg for a in args.kwonlyargs] + \
        ([f"**{args.kwarg.arg}"] if args.kwarg else [])
    if len(positional) != 1 or extra:
        taken = ", ".join(positional + extra) or "nothing"
        raise BenchError(f"{path}:{function.lineno}: {what} must take exactly one argument, the {argument}; "
                         f"it takes {taken}")


def read_registrations(path: str | Path, source: bytes) -> list[Registration]:
    """The methods a plugin file registers, read from its syntax tree; the first problem raises with its line."""
    path = Path(path)
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        raise BenchError(f"{path}:{exc.lineno}: not valid Python ({exc.msg})") from None
    decorators = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for decorator in node.decorator_list:
                decorators[id(decorator)] = node
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    registrations = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _callee(node.func) == "register_method":
            if not isinstance(node.func, ast.Name):
                raise BenchError(f"{path}:{node.lineno}: call register_method by its name, imported from "
                                 "harness.methods")
            function = decorators.get(id(node))
            if not isinstance(function, ast.FunctionDef):
                raise BenchError(f"{path}:{node.lineno}: register_method must decorate a module-level function; "
                                 f"write {_EXAMPLE}")
            registrations.append(_registration(path, node, function, functions))
        elif _callee(node) == "register_method" and isinstance(decorators.get(id(node)), ast.FunctionDef):
            raise BenchError(f"{path}:{node.lineno}: register_method is missing the method's name; write {_EXAMPLE}")
    if not registrations:
        raise BenchError(f"{path}:1: no register_method call, so the file defines no method; write {_EXAMPLE}")
    _check_register_method(path, source, tree, registrations[0].decorator_line)
    names = [r.name for r in registrations]
    duplicate = next((r for r in registrations if names.count(r.name) > 1), None)
    if duplicate:
        raise BenchError(f"{path}:{duplicate.decorator_line}: method '{duplicate.name}' is registered twice "
                         "in this file")
    return registrations


def _check_register_method(path: Path, source: bytes, tree: ast.Module, line: int) -> None:
    """Registration is honoured only for ``register_method`` imported, under its own name, from
    ``harness.methods`` at module level and never rebound: a file's own ``register_method`` could register
    another function than the one read here."""
    from harness.methods.lint import REGISTRATION_MODULES, review

    imported = any(isinstance(node, ast.ImportFrom) and node.module in REGISTRATION_MODULES
                   and any(a.name == "register_method" and a.asname is None for a in node.names)
                   for node in tree.body)
    if not imported:
        raise BenchError(f"{path}:{line}: register_method must be imported from harness.methods "
                         "(`from harness.methods import register_method`); no other one registers a method")
    rebound = next((f for f in review(path, source) if f.rule == "register_method"), None)
    if rebound is not None:
        raise BenchError(f"{path}:{rebound.line}: {rebound.message}")


def load_plugin(path: str | Path) -> list[Method]:
    """Register the methods of one plugin file (again loading the same bytes is a no-op); returns them."""
    path = Path(path).resolve()
    if path.suffix != ".py":
        raise BenchError(f"{path}: a method file must be a Python file (*.py)")
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise BenchError(f"cannot read method file {path}: {exc.strerror}; check the path") from None
    methods = []
    for reg in read_registrations(path, source):
        stand_in = PluginMethod(reg.name, path, reg.function, reg.line, source)
        existing = registered_method(reg.name)
        builtin = builtin_sources().get(reg.name)
        if builtin is not None or (existing is not None and existing.select != stand_in):
            where = builtin or method_source(existing)
            raise BenchError(f"{path}:{reg.decorator_line}: method name '{reg.name}' is already registered"
                             f"{f' by {where}' if where else ''}; pick another name")
        if existing is None:
            try:  # the registry's own checks (rounds), with the file's line
                register = register_method(reg.name, kind=reg.kind, needs_data=reg.needs_data,
                                           citation=reg.citation or f"plugin defined in {path}",
                                           global_ranking=reg.global_ranking, training=reg.training, rounds=reg.rounds)
            except BenchError as exc:
                raise BenchError(f"{path}:{reg.decorator_line}: {exc}") from None
            register(stand_in)
        methods.append(get_method(reg.name))
    return methods


BROKEN: dict[Path, str] = {}
"""Plugin files of the methods directory that could not be registered, with their one-line problem."""


def load_plugins(directory: str | Path | None = None) -> list[Method]:
    """Register every ``*.py`` in the methods directory (files starting with ``_`` are skipped).

    A file that cannot be registered (not valid Python, a bad ``register_method``) is skipped with one
    warning line on stderr naming it -- once per process -- so one bad file never blocks the commands
    that do not use it; its problem is kept in ``BROKEN``. A file given to ``bench submit`` still
    fails with its line (``load_plugin``)."""
    folder = methods_dir(directory)
    if folder is None:
        return []
    methods = []
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        try:
            methods.extend(load_plugin(path))
        except BenchError as exc:
            key = path.resolve()
            if key not in BROKEN:
                print(f"warning: {exc} -- this method file is skipped until it is fixed", file=sys.stderr)
            BROKEN[key] = str(exc)
    return methods


def run_plugin_source(source: bytes, path: str | Path) -> types.ModuleType:
    """Execute a plugin file's bytes as a module (in the isolated child only): its decorators register its methods."""
    name = f"harness_plugin_{hashlib.sha256(str(path).encode() + source).hexdigest()[:16]}"
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module
    exec(compile(source, str(path), "exec"), module.__dict__)
    return module
