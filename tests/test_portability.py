"""Every model stays in the portable SQL subset: it transpiles to PostgreSQL and Spark with sqlglot
and uses none of the DuckDB-only constructs that sqlglot would pass through unchanged. And every
model reads only relations its build step can see (temp tables live in one step's connection)."""

from __future__ import annotations

import re
from datetime import date

import pytest
import sqlglot
from sqlglot.errors import ErrorLevel

from transforms.build import load_project
from transforms.settings import Settings

DUCKDB_ONLY = [
    r"\bgroup\s+by\s+all\b",
    r"\barg_(min|max)\b",
    r"\bqualify\b",
    r"::",
    r"\blist\(",
    r"\bstruct_pack\b",
    r"\bmd5_number\b",
    r"\bunnest\b",
    r"\bexclude\s*\(",
]


@pytest.fixture(scope="module")
def project():
    return load_project(Settings.load(), date(2026, 7, 1))


def test_models_use_no_duckdb_only_constructs(project):
    for model in project.models.values():
        if model.python is not None:
            continue
        for pattern in DUCKDB_ONLY:
            assert not re.search(pattern, model.sql, re.IGNORECASE), f"{model.name}: {pattern}"


@pytest.mark.parametrize("dialect", ["postgres", "spark"])
def test_models_transpile(project, dialect):
    for model in project.models.values():
        if model.python is not None:
            continue
        [statement] = sqlglot.transpile(
            model.sql, read="duckdb", write=dialect, unsupported_level=ErrorLevel.RAISE
        )
        assert statement.strip(), model.name


def test_temporary_models_are_read_only_within_their_build_step(project):
    # A temp table lives in the connection of the step that builds it; each step has its own.
    from transforms.build import step_of

    temporary = {name for name, model in project.models.items() if model.materialized == "temporary"}
    assert "int_identity_edges" in temporary
    for model in project.models.values():
        for dep in model.deps & temporary:
            assert step_of(project.models[dep]) == step_of(model), f"{model.name} reads {dep}"
