"""The shape of the package: modules import downwards, and database drivers only behind the engine."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "transforms"


def _module(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")


def _imports() -> dict[str, set[str]]:
    """Every module's imports of the package's own modules, function-level imports included."""
    modules = {_module(path): path for path in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module in modules:
                found.add(node.module)
                found |= {f"{node.module}.{alias.name}" for alias in node.names} & set(modules)
            elif isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names} & set(modules)
        graph[name] = found - {name, "transforms"}
    return graph


def test_no_import_cycles():
    try:
        TopologicalSorter(_imports()).prepare()
    except CycleError as exc:
        raise AssertionError(f"import cycle: {' -> '.join(exc.args[1])}") from None
