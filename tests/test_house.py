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


DRIVERS = ("duckdb", "psycopg", "psycopg2", "pyspark")
PROJECT = PACKAGE.parent


def test_database_drivers_are_imported_only_behind_the_engine_boundary():
    importing = []
    for folder in ("transforms", "dags", "plugins"):
        for path in (PROJECT / folder).rglob("*.py"):
            if path.is_relative_to(PACKAGE / "engines"):
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = (
                    [alias.name for alias in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else []
                )
                if any(name.split(".")[0] in DRIVERS for name in names):
                    importing.append(str(path.relative_to(PROJECT)))
    assert importing == []


def test_no_module_over_600_lines_and_no_function_over_100():
    too_long = []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > 600:
            too_long.append(f"{path.relative_to(PROJECT)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if (
                isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                and node.end_lineno - node.lineno >= 100
            ):
                too_long.append(
                    f"{path.relative_to(PROJECT)}:{node.name}: {node.end_lineno - node.lineno + 1} lines"
                )
    assert too_long == []
