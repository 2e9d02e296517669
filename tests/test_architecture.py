"""The layer contract: each folder of ``harness`` imports only from folders below it in the flow.

A run flows track -> data/model -> dense -> plan -> prune -> retrain -> record -> grid -> tune -> stats
-> audit -> publish, and the workflows (protocols) and the CLI sit on top. An upward import would let a
lower stage depend on a higher one, which is how layouts rot; this test fails on the first one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[1] / "harness"

LAYERS = (
    "core", "stats", "track", "data", "models", "plans", "methods", "prune", "train", "dense", "run",
    "grid", "tune", "audit", "publish", "protocols", "cli",
)
"""Lowest first; a layer may import itself and anything before it."""


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "harness" and parts[1] in LAYERS else None


def runtime_imports(path: Path) -> list[tuple[int, str]]:
    """Imported ``harness`` modules, leaving out ``if TYPE_CHECKING:`` blocks (they never run)."""
    tree = ast.parse(path.read_text())
    skipped = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
               and getattr(block.test, "id", None) == "TYPE_CHECKING" for node in ast.walk(block)}
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "harness":
                found += [(node.lineno, f"harness.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return found


def modules():
    return sorted(p for p in HARNESS.rglob("*.py"))


def test_every_module_sits_in_a_layer():
    strays = [p.relative_to(HARNESS).as_posix() for p in modules()
              if p.parent == HARNESS and p.name not in ("__init__.py", "__main__.py")]
    folders = sorted(p.name for p in HARNESS.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    assert strays == [], f"modules outside a stage folder: {strays}"
    assert sorted(LAYERS) == folders


@pytest.mark.parametrize("path", modules(), ids=lambda p: p.relative_to(HARNESS).as_posix())
def test_no_upward_import(path):
    own = layer_of("harness." + ".".join(path.relative_to(HARNESS).with_suffix("").parts))
    if own is None:
        return
    upward = [f"line {line}: {module} ({layer_of(module)} is above {own})"
              for line, module in runtime_imports(path)
              if layer_of(module) is not None and LAYERS.index(layer_of(module)) > LAYERS.index(own)]
    assert upward == []
