"""Review lints for what no sandbox can stop: a method file may carry data (the test set, a plan computed
elsewhere) inside itself, or hide what it runs. ``bench submit`` reports these as findings a reviewer
must clear; they refuse nothing by themselves.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

MAX_SOURCE_BYTES = 64 * 1024
MAX_LITERAL_CHARS = 1024
MAX_COLLECTION_ITEMS = 256
DYNAMIC = ("exec", "eval", "compile", "__import__", "importlib", "marshal", "pickle", "ctypes", "base64",
           "zlib", "lzma", "bz2", "codecs", "globals", "setattr", "__builtins__", "builtins")
REGISTRATION_MODULES = ("harness.methods", "harness.methods.registry")


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: [{self.rule}] {self.message}"


def review(path: str | Path, source: bytes) -> list[Finding]:
    """Every finding for one method file, in line order."""
    path = str(path)
    findings = []
    if len(source) > MAX_SOURCE_BYTES:
        findings.append(Finding(path, 1, "size", f"the file is {len(source)} bytes, over the {MAX_SOURCE_BYTES}-byte "
                                                 "limit: a method rarely needs that much; check it carries no data"))
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as exc:
        return findings + [Finding(path, exc.lineno or 1, "syntax", f"not valid Python ({exc.msg})")]
    for node in ast.walk(tree):
        findings += _literal(path, node) + _dynamic(path, node) + _rebinding(path, node)
    findings += _module_level(path, tree)
    return sorted(set(findings), key=lambda f: (f.line, f.rule, f.message))


def _literal(path: str, node: ast.AST) -> list[Finding]:
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)) and len(node.value) > MAX_LITERAL_CHARS:
        kind = "bytes" if isinstance(node.value, bytes) else "string"
        return [Finding(path, node.lineno, "literal", f"a {len(node.value)}-character {kind} literal (over "
                                                      f"{MAX_LITERAL_CHARS}): data embedded in the method file?")]
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)) and len(node.elts) > MAX_COLLECTION_ITEMS:
        return [Finding(path, node.lineno, "literal", f"a literal of {len(node.elts)} items (over "
                                                      f"{MAX_COLLECTION_ITEMS}): data embedded in the method file?")]
    if isinstance(node, ast.Dict) and len(node.keys) > MAX_COLLECTION_ITEMS:
        return [Finding(path, node.lineno, "literal", f"a dict literal of {len(node.keys)} items (over "
                                                      f"{MAX_COLLECTION_ITEMS}): data embedded in the method file?")]
    return []


def _dynamic(path: str, node: ast.AST) -> list[Finding]:
    names = []
    if isinstance(node, ast.Name) and node.id in DYNAMIC:
        names.append(node.id)
    elif isinstance(node, ast.Attribute) and node.attr in DYNAMIC:
        names.append(node.attr)
    elif isinstance(node, ast.Import):
        names += [a.name for a in node.names if a.name.split(".")[0] in DYNAMIC]
    elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in DYNAMIC:
        names.append(node.module)
    return [Finding(path, node.lineno, "dynamic", f"uses '{name}': code the reviewer cannot read from the file "
                                                  "(run or decoded at run time)") for name in names]


def _rebinding(path: str, node: ast.AST) -> list[Finding]:
    bound = []
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        bound.append((node.name, node.lineno))
        if not isinstance(node, ast.ClassDef):
            args = node.args
            bound += [(a.arg, node.lineno) for a in args.posonlyargs + args.args + args.kwonlyargs]
    elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
        bound.append((node.id, node.lineno))
    elif isinstance(node, (ast.Import, ast.ImportFrom)):
        for alias in node.names:
            name = alias.asname or alias.name.split(".")[0]
            legit = isinstance(node, ast.ImportFrom) and node.module in REGISTRATION_MODULES \
                and alias.name == "register_method" and alias.asname is None
            if (name == "register_method" or alias.name == "register_method") and not legit:
                bound.append((name, node.lineno))
    elif isinstance(node, ast.Attribute) and node.attr == "register_method" and isinstance(node.ctx, ast.Store):
        bound.append(("register_method", node.lineno))
    elif isinstance(node, ast.Global | ast.Nonlocal):
        bound += [(n, node.lineno) for n in node.names]
    return [Finding(path, line, "register_method", "rebinds or shadows 'register_method': only the one imported "
                                                   "from harness.methods registers a method")
            for name, line in bound if name == "register_method"]


def _module_level(path: str, tree: ast.Module) -> list[Finding]:
    findings = []
    for index, node in enumerate(tree.body):
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if index == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) \
                and isinstance(node.value.value, str):
            continue  # the module's docstring
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and _constant(node.value):
            continue  # a named constant
        findings.append(Finding(path, node.lineno, "module-code", f"module-level {type(node).__name__.lower()}: "
                                                                  "code that runs on import, beyond imports, "
                                                                  "definitions and the registration"))
    return findings


def _constant(node: ast.expr | None) -> bool:
    if node is None:
        return True
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True
