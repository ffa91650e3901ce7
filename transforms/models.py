"""The model runner: one SELECT per file in sql/, `{{ ref('model') }}` dependencies run in graph order.

Materialization is set per folder (staging, intermediate and mart tables) and may be
overridden in a model with `{{ config(materialized='incremental', unique_key='as_of_date') }}`,
`'view'`, or `'temporary'`: a temporary table lives only in the connection that builds it, so
only models of the same build step may read it; it costs a fraction of writing a table into the
warehouse file (bench/RESULTS.md).
A table is built under a temporary name and swapped in inside one transaction, so nothing ever
reads a half-built table. Python models (identity stitching) and models generated from the
business YAML (tags, segments) take part in the same graph.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

import jinja2

from transforms import PROJECT_ROOT
from transforms.engines import DatabaseError, OutOfMemoryError, Session
from transforms.errors import SegflowError
from transforms.sql import render_refs
from transforms.steps import step_of

SQL_DIR = PROJECT_ROOT / "sql"
LAYER_SCHEMA = {"staging": "stg", "intermediate": "int", "marts": "pub"}
# Staging is materialized as tables, not views (jaffle-shop uses views): the order-version
# window over all raw rows would otherwise be recomputed by every model that reads it.
LAYER_MATERIALIZED = {"staging": "table", "intermediate": "table", "marts": "table"}

# A Python model does its work through the connection (registering or creating what it needs) and
# returns the SELECT that builds it, so its rows stream into the table inside DuckDB instead of
# passing through Python memory.
PythonModel = Callable[[Session, dict], str]


@dataclass
class Model:
    name: str
    layer: str
    template: str | None = None
    python: PythonModel | None = None
    declared_deps: tuple[str, ...] = ()
    path: Path | None = None
    # Filled in when rendered:
    sql: str = ""
    deps: set[str] = field(default_factory=set)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def schema(self) -> str:
        return LAYER_SCHEMA[self.layer]

    @property
    def relation(self) -> str:
        if self.materialized == "temporary":
            return self.name
        return f"{self.schema}.{self.name}"

    @property
    def materialized(self) -> str:
        return self.config.get("materialized", LAYER_MATERIALIZED[self.layer])

    @property
    def step(self) -> str:
        """The build step that runs the model (transforms/steps.py)."""
        return step_of(self.name, self.layer, self.config.get("step"))


@dataclass
class ModelRun:
    name: str
    relation: str
    materialized: str
    seconds: float
    rows: int | None
    # As-of dates a snapshot history dropped under history.keep_daily_days in this run.
    removed_snapshots: list[str] = field(default_factory=list)


def discover_sql_models(sql_dir: Path = SQL_DIR) -> list[Model]:
    models = []
    for layer in LAYER_SCHEMA:
        for path in sorted((sql_dir / layer).glob("*.sql")):
            models.append(
                Model(name=path.stem, layer=layer, template=path.read_text(encoding="utf-8"), path=path)
            )
    return models


class Project:
    """A set of models and the variables they are rendered with."""

    def __init__(self, models: list[Model], variables: dict[str, Any]):
        names = [m.name for m in models]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise SegflowError(f"model name(s) defined twice: {', '.join(sorted(duplicates))}")
        self.models = {m.name: m for m in models}
        self.variables = variables
        self._render_all()
        # Python models find the relations they read here.
        self.variables["relations"] = {name: model.relation for name, model in self.models.items()}

    def _render_all(self) -> None:
        env = jinja2.Environment(
            undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
        )
        # Where a model lives depends on its config(), so every config is read before any ref().
        templates: dict[str, jinja2.Template] = {}
        for model in self.models.values():
            if model.python is None and model.template is not None:
                templates[model.name] = _compile(env, model)
                model.config = self._read_config(templates[model.name])
        for model in self.models.values():
            if model.python is not None:
                model.deps = set(model.declared_deps)  # Python models declare what they read
                continue
            if model.template is None:
                # SQL generated from the business YAML names its inputs with sql.ref().
                deps = set(model.declared_deps)
                model.sql = render_refs(
                    model.sql, lambda name, _deps=deps, _model=model: self._ref(_model, name, _deps)
                )
                model.deps = deps
                continue
            deps: set[str] = set()

            def ref(name: str, _deps=deps, _model=model) -> str:
                return self._ref(_model, name, _deps)

            def source(name: str) -> str:
                return f"raw.{name}"

            def var(name: str, _model=model) -> Any:
                if name not in self.variables:
                    raise SegflowError(f"{_model.path or _model.name}: var('{name}') is not set")
                return self.variables[name]

            # config() was read in the first pass; here it only has to render to nothing.
            context = {**self.variables, "ref": ref, "source": source, "var": var, "config": _no_output}
            try:
                model.sql = templates[model.name].render(**context).strip().rstrip(";")
            except jinja2.TemplateError as exc:
                raise SegflowError(f"{model.path or model.name}: {exc}") from exc
            model.deps = deps

    def _ref(self, model: Model, name: str, deps: set[str]) -> str:
        """Where model `name` lives, recorded as a dependency of `model`."""
        if name not in self.models:
            raise SegflowError(f"{model.path or model.name}: ref('{name}') names no model")
        deps.add(name)
        return self.models[name].relation

    def _read_config(self, template: jinja2.Template) -> dict[str, Any]:
        config: dict[str, Any] = {}

        def set_config(**kwargs) -> str:
            config.update(kwargs)
            return ""

        context = {
            **self.variables,
            "ref": lambda name: name,
            "source": lambda name: name,
            "var": lambda name: self.variables.get(name),
            "config": set_config,
        }
        try:
            template.render(**context)
        except jinja2.TemplateError:
            pass  # the full render below reports template errors with the model's name
        return config

    def order(self, step: str | None = None) -> list[Model]:
        graph = {name: model.deps for name, model in self.models.items()}
        try:
            ordered = list(TopologicalSorter(graph).static_order())
        except CycleError as exc:
            raise SegflowError(f"models depend on each other in a cycle: {' -> '.join(exc.args[1])}") from exc
        models = [self.models[n] for n in ordered]
        return [m for m in models if step is None or m.step == step]


def _no_output(**_: Any) -> str:
    return ""


def _compile(env: jinja2.Environment, model: Model) -> jinja2.Template:
    try:
        return env.from_string(model.template or "")
    except jinja2.TemplateSyntaxError as exc:
        raise SegflowError(f"{model.path or model.name} line {exc.lineno}: {exc.message}") from exc


def _origin(model: Model) -> str:
    if model.path:
        return str(model.path)
    return "python" if model.python is not None else "generated from the business config"


def _drop_relation(con: Session, model: Model) -> None:
    """Cascade: on engines that bind views to tables (PostgreSQL) the views reading this model go
    too; they are models built after it, so the build recreates them."""
    kind = con.relation_kind(model.schema, model.name)
    if kind == "VIEW":
        con.execute(f"drop view {model.schema}.{model.name} cascade")
    elif kind:
        con.execute(f"drop table {model.schema}.{model.name} cascade")


def _swap_in(con: Session, model: Model, build_sql: str) -> None:
    temporary = f"{model.schema}.{model.name}__building"
    con.execute(f"drop table if exists {temporary}")
    con.execute(f"create table {temporary} as {build_sql}")
    with con.transaction():
        _drop_relation(con, model)
        con.execute(f"alter table {temporary} rename to {model.name}")


def materialize(con: Session, model: Model, variables: dict) -> ModelRun:
    """Build one model; the run says how long it took, its rows (none for a view) and what it removed."""
    started = time.perf_counter()
    removed: list[str] = []
    try:
        if model.python is not None:
            _swap_in(con, model, model.python(con, variables))
        elif model.materialized == "view":
            _drop_relation(con, model)
            con.execute(f"create view {model.relation} as {model.sql}")
        elif model.materialized == "table":
            _swap_in(con, model, model.sql)
        elif model.materialized == "temporary":
            _drop_relation(con, model)  # a table of this name left in the warehouse by an older build
            con.execute(f"create or replace temp table {model.relation} as {model.sql}")
        elif model.materialized == "incremental":
            removed = _merge_incremental(con, model, variables)
        else:
            raise SegflowError(f"{model.path}: unknown materialization '{model.materialized}'")
    except OutOfMemoryError as exc:
        exc.add_note(f"model {model.name} ({_origin(model)})")  # the warehouse reports it with its limits
        raise
    except DatabaseError as exc:
        raise SegflowError(
            f"model {model.name} ({_origin(model)}) failed: {str(exc).splitlines()[0]}"
        ) from exc
    rows = None if model.materialized == "view" else con.row_count(model.relation)
    return ModelRun(
        model.name, model.relation, model.materialized, time.perf_counter() - started, rows, removed
    )


def _expired_snapshots(model: Model, variables: dict) -> Callable[[list[str]], list[str]]:
    """Which as-of dates (ISO) a snapshot history no longer keeps, from all it holds; none when it
    keeps every date.

    A snapshot history (`config(snapshot=true)`) holds a row per customer for every as-of date: at
    10M orders, about 0.4 GB per date across the five of them. It keeps the dates within
    `history.keep_daily_days` of its newest one and the first day of every month. The date being
    built and the one before it are never removed: the change logs (customer_tag_history,
    segment_migration) compare the two after this merge, and a backfill of an old date stays until
    the next build.
    """
    keep_days = variables.get("history_keep_daily_days")
    if not model.config.get("snapshot") or keep_days is None:
        return lambda keys: []
    if model.config.get("unique_key") != "as_of_date":
        raise SegflowError(f"{model.path}: snapshot=true needs unique_key='as_of_date'")
    run_date = variables["as_of"]

    def expired(keys: list[str]) -> list[str]:
        dates = sorted(date.fromisoformat(key) for key in keys)
        if not dates:
            return []
        oldest_kept = dates[-1] - timedelta(days=keep_days)
        before_run = max((day for day in dates if day < run_date), default=None)
        return [
            day.isoformat()
            for day in dates
            if day < oldest_kept and day.day != 1 and day != run_date and day != before_run
        ]

    return expired


def _merge_incremental(con: Session, model: Model, variables: dict) -> list[str]:
    """Replace the rows of the keys this run produces (e.g. one as_of_date), in one transaction.

    Returns the snapshot dates it removed (`_expired_snapshots`).

    Keyed by as_of_date, the run's date is replaced even when the run produces no rows for it.
    """
    key = model.config.get("unique_key")
    if not key:
        raise SegflowError(f"{model.path}: an incremental model needs unique_key in its config()")
    run_key = variables["as_of_date"] if key == "as_of_date" and "as_of_date" in variables else None
    return con.replace_keyed_rows(
        model.relation, key, model.sql, run_key, _expired_snapshots(model, variables)
    )
