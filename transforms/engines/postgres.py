"""The warehouse on a PostgreSQL 15+ server: segflow's schemas in one database, published tables in
schema `segflow` (warehouse.published_schema).

segflow writes in its own schemas (raw, stg, int, pub, meta) and readers never look there. A build
publishes by moving the work `pub` tables into a fresh schema (ALTER TABLE ... SET SCHEMA, no copy)
and renaming it over the published one, in one transaction with the two ALTER SCHEMA ... RENAME:
the renames take no table locks, so neither a reader nor the publish waits on the other. Each moved
table leaves a view in `pub` that later commands read; a command that changes one first makes its
own copy (PostgresSession._own_copy). A query running at that moment keeps reading the tables it
opened; the next one finds the new schema. The replaced schema is dropped afterwards under a short
lock_timeout; while a long reader still holds it the drop fails quietly and the next publish tries
again, so an ACCESS EXCLUSIVE waiter never queues readers up behind it.

Commands that publish only their own tables (ingest's quarantine, pack exports) swap those tables
one by one inside a transaction that takes each table's lock with a short lock_timeout and retries.

Files are read and typed by DuckDB in process (the same reader, rejects and line numbers as the
embedded warehouse: transforms/engines/duckdb.py). Only their distinct order ids and identifiers go
to the server, which gives their keys; the keys come back, and the finished rows arrive with one
COPY into the raw table.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import psycopg
import psycopg.sql
import pyarrow as pa
import pyarrow.csv as pa_csv
from psycopg import errors as pg_errors
from sqlglot import exp

import transforms.engines.postgres_history as history
import transforms.engines.postgres_staged_rows as staged_rows
from transforms.engines.base import Rows, Session, Warehouse
from transforms.engines.duckdb import scratch_session
from transforms.engines.postgres_sql import generate, hash_bucket_sql, parse
from transforms.engines.postgres_types import (
    ARROW_TYPES,
    NumericLoader,
    arrow_type,
    copyable,
    sql_type,
    unique,
)
from transforms.errors import SegflowError
from transforms.failpoints import failpoint
from transforms.settings import DEFAULT_WAREHOUSE_PATH, Settings
from transforms.sql import literal
from transforms.table_docs import comment_statements

SCHEMAS = ("raw", "stg", "int", "pub", "meta")
DATABASE_ERRORS: tuple[type[BaseException], ...] = (psycopg.Error,)
OUT_OF_MEMORY_ERRORS: tuple[type[BaseException], ...] = (pg_errors.OutOfMemory, pg_errors.DiskFull)
MISSING_RELATION_ERRORS: tuple[type[BaseException], ...] = (pg_errors.UndefinedTable,)
# How long a publish's lock request waits before it lets readers through and tries again.
LOCK_TIMEOUT_MS = 200
PUBLISH_RETRY_SECONDS = float(os.environ.get("SEGFLOW_PUBLISH_RETRY_SECONDS", "900"))
COPY_BATCH_ROWS = 200_000


# A publish moves the work tables (schema pub) into the published schema instead of copying them,
# and leaves in pub a view of each, marked so; a command that writes one copies it back first.
READS_PUBLISHED = "segflow: reads the published table until a command writes its own"


def _written_tables(statement: exp.Expression) -> list[exp.Table]:
    """The tables a statement changes in place (its rows or its columns)."""
    if isinstance(statement, exp.Insert | exp.Delete | exp.Update | exp.Merge | exp.Alter):
        target = statement.this
        return [target.this if isinstance(target, exp.Schema) else target]
    if isinstance(statement, exp.TruncateTable):
        return list(statement.expressions)
    return []


class PostgresSession(Session):
    def __init__(
        self,
        con: psycopg.Connection,
        timezone: str,
        published_schema: str | None = None,
        sqlalchemy_url: str | None = None,
    ):
        self.con = con
        self.sqlalchemy_url = sqlalchemy_url
        self.timezone = timezone
        # A reader's `pub.<table>` means the published schema (postgres_sql rewrites it).
        self.published_schema = published_schema

    # -- running SQL ---------------------------------------------------------------------------
    def execute(self, sql: str, params: list | None = None):
        result = None
        for statement in parse(sql, self.published_schema):
            result = self._execute_statement(statement, params)
        return result

    def _execute_statement(self, statement: exp.Expression, params: list | None):
        if isinstance(statement, exp.Describe):
            relation = statement.this.sql(dialect="postgres")
            return Rows(self._column_types(relation), ["column_name", "column_type"])
        if isinstance(statement, exp.Create) and statement.args.get("replace"):
            statement = statement.copy()
            statement.set("replace", False)
            target = statement.this.this if isinstance(statement.this, exp.Schema) else statement.this
            if self._reads_published(target):
                self.con.execute(f"drop view {target.sql(dialect='postgres')}")
            self.con.execute(f"drop table if exists {statement.this.sql(dialect='postgres')}")
        if isinstance(statement, exp.Drop) and statement.args.get("kind") == "TABLE":
            for table in statement.args.get("tables") or []:
                if self._reads_published(table):
                    self.con.execute(f"drop view {table.sql(dialect='postgres')}")
        for table in _written_tables(statement):
            if self._reads_published(table):
                self._own_copy(table)
        if isinstance(statement, exp.Insert) and statement.args.get("by_name"):
            statement = self._insert_by_name(statement, params)
        if isinstance(statement, exp.Command) and statement.name.lower() == "checkpoint":
            return None
        result = self.con.execute(generate(statement, bool(params)), params or None)
        if isinstance(statement, exp.Create) and statement.expression is not None:
            self._analyze(statement.this)
        return result

    def replace_keyed_rows(self, relation, key, select, run_key, expire) -> list[str]:
        """A history table (schema pub) as one part table per key, listed by a view
        (postgres_history.py): each key's rows are written once and never copied again."""
        if self.published_schema or not relation.startswith("pub."):
            return super().replace_keyed_rows(relation, key, select, run_key, expire)
        return history.replace_keys(self, relation.split(".", 1)[1], key, select, run_key, expire)

    def _reads_published(self, table: exp.Expression) -> bool:
        """Whether a work table (schema pub) is still the view of its published table a publish left."""
        if not isinstance(table, exp.Table) or table.db != "pub" or self.published_schema:
            return False
        return bool(
            self.con.execute(
                "select 1 from pg_class where oid = to_regclass(%s) and relkind = 'v' "
                "and obj_description(oid, 'pg_class') = %s",
                [f"pub.{table.name}", READS_PUBLISHED],
            ).fetchone()
        )

    def _own_copy(self, table: exp.Table) -> None:
        """A command about to change a work table that still reads the published one gets its own
        copy first: the published table changes only when a publish replaces it."""
        name = table.name
        self.con.execute(f"create table pub.{name}__own as select * from pub.{name}")
        self.con.execute(f"drop view pub.{name}")
        self.con.execute(f"alter table pub.{name}__own rename to {name}")

    def _analyze(self, target: exp.Expression) -> None:
        """Statistics for a table just built: autovacuum never analyzes temp tables, and without
        them the planner chose nested loops that made an ingest's insert run for minutes."""
        table = target.this if isinstance(target, exp.Schema) else target
        self.con.execute(f"analyze {table.sql(dialect='postgres')}")

    def _insert_by_name(self, statement: exp.Insert, params: list | None) -> exp.Insert:
        """insert ... by name: the select's columns named in the insert."""
        select = statement.expression
        probe = exp.select("*").from_(select.copy().subquery("by_name")).limit(0)
        names = [
            column.name
            for column in self.con.execute(generate(probe, bool(params)), params or None).description
        ]
        statement = statement.copy()
        statement.set("by_name", None)
        target = statement.this if isinstance(statement.this, exp.Table) else statement.this.this
        statement.set(
            "this", exp.Schema(this=target, expressions=[exp.to_identifier(n, quoted=True) for n in names])
        )
        return statement

    def fetch_arrow(self, sql: str, params: list | None = None) -> pa.Table:
        cursor = self.execute(sql, params)
        return self._arrow(cursor.description, cursor.fetchall())

    def _arrow(self, description, rows: list[tuple]) -> pa.Table:
        names = [column.name for column in description]
        types = [arrow_type(column, self.timezone) for column in description]
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
        arrays = [
            pa.array(list(values), type=arrow_type) for values, arrow_type in zip(columns, types, strict=True)
        ]
        return pa.Table.from_arrays(arrays, names=unique(names))

    def fetch_numpy(self, sql: str) -> dict[str, np.ndarray]:
        """Integer columns (identity's graph: two numbers per link) through COPY as CSV, parsed by
        Arrow: no Python object per value, so tens of millions of links fit in their arrays."""
        statement = generate(parse(sql, self.published_schema)[-1], False)
        description = self.con.execute(f"select * from ({statement}) as probe limit 0").description
        types = {column.name: ARROW_TYPES.get(column.type_code) for column in description}
        if not all(
            arrow_type is not None and pa.types.is_integer(arrow_type) for arrow_type in types.values()
        ):
            table = self.fetch_arrow(sql)
            return {name: table.column(name).to_numpy() for name in table.column_names}
        buffer = io.BytesIO()
        with self.con.cursor().copy(f"copy ({statement}) to stdout with (format csv)") as copy:
            for chunk in copy:
                buffer.write(chunk)
        if not buffer.tell():
            return {
                name: np.array([], dtype=arrow_type.to_pandas_dtype()) for name, arrow_type in types.items()
            }
        buffer.seek(0)
        table = pa_csv.read_csv(
            buffer,
            read_options=pa_csv.ReadOptions(column_names=list(types)),
            convert_options=pa_csv.ConvertOptions(column_types=types),
        )
        return {name: table.column(name).to_numpy() for name in table.column_names}

    def fetch_batches(self, sql: str, rows: int) -> Iterator[pa.RecordBatch]:
        """A server-side cursor (WITH HOLD, so it outlives the statement's transaction)."""
        statements = parse(sql, self.published_schema)
        cursor = self.con.cursor(name=f"segflow_batches_{id(self)}_{time.monotonic_ns()}", withhold=True)
        try:
            cursor.execute(generate(statements[-1], False))
            while True:
                chunk = cursor.fetchmany(rows)
                if not chunk:
                    break
                yield from self._arrow(cursor.description, chunk).to_batches()
        finally:
            cursor.close()

    # -- loading -------------------------------------------------------------------------------
    def load_temp_table(self, name: str, data: Any, select: str = "*") -> None:
        if select == "*":
            self._load_temp(name, data)  # straight into the table, without a second copy
        else:
            super().load_temp_table(name, data, select)

    @contextlib.contextmanager
    def registered(self, name: str, data: Any) -> Iterator[None]:
        """A temp table of that name holding the data, for the block."""
        self._load_temp(name, data)
        try:
            yield
        finally:
            self.con.execute(f"drop table if exists {name}")

    def _load_temp(self, name: str, data: Any) -> None:
        if isinstance(data, pd.DataFrame):
            data = pa.Table.from_pandas(data, preserve_index=False)
        batches = data.to_batches(COPY_BATCH_ROWS) if isinstance(data, pa.Table) else data
        schema = data.schema
        columns = ", ".join(f'"{field.name}" {sql_type(field.type)}' for field in schema)
        self.con.execute(f"drop table if exists {name}")
        self.con.execute(f"create temp table {name} ({columns})")
        self.copy_into(name, batches, schema)
        self.con.execute(f"analyze {name}")

    def copy_into(self, relation: str, batches, schema: pa.Schema) -> int:
        """Arrow batches into a table with COPY (CSV written by Arrow: no Python per row)."""
        names = ", ".join(f'"{field.name}"' for field in schema)
        rows = 0
        with self.con.cursor().copy(f"copy {relation} ({names}) from stdin with (format csv)") as copy:
            for batch in batches:
                if not batch.num_rows:
                    continue
                batch = pa.RecordBatch.from_arrays(
                    [copyable(column) for column in batch.columns], names=batch.schema.names
                )
                buffer = io.BytesIO()
                pa_csv.write_csv(
                    batch, buffer, pa_csv.WriteOptions(include_header=False, quoting_style="needed")
                )
                copy.write(buffer.getvalue())
                rows += batch.num_rows
        return rows

    def scan_files(self, name: str, paths: list[str], file_format: str) -> pa.Table | None:
        raise SegflowError("PostgreSQL sessions do not read files: ingest stages them in DuckDB")

    def drop_scan(self, name: str) -> None:
        return None

    # -- catalog -------------------------------------------------------------------------------
    def columns(self, relation: str) -> list[str]:
        return [name for name, _ in self._column_types(relation)]

    def _column_types(self, relation: str) -> list[tuple[str, str]]:
        return self.con.execute(
            "select attname, format_type(atttypid, atttypmod) from pg_attribute "
            "where attrelid = to_regclass(%s) and attnum > 0 and not attisdropped order by attnum",
            [relation],
        ).fetchall()

    def relation_kind(self, schema: str, name: str) -> str | None:
        if self.published_schema and schema == "pub":
            schema = self.published_schema
        return super().relation_kind(schema, name)

    @contextlib.contextmanager
    def dq_sql_source(self) -> Iterator[dict]:
        """GE's own SQL engine, on its own connection: it sees what this session has committed."""
        yield {"type": "postgres", "connection_string": self.sqlalchemy_url}

    def dq_sql(self, table: str, sql: str) -> str:
        return generate(parse(sql, self.published_schema)[-1], False)

    def published_tables(self) -> list[str]:
        return [
            row[0]
            for row in self.con.execute(
                "select table_name from information_schema.tables where table_schema = %s order by 1",
                [self.published_schema],
            ).fetchall()
        ]

    def temp_table_exists(self, name: str) -> bool:
        return (
            self.scalar(
                "select count(*) from pg_tables where tablename = ? and schemaname like 'pg_temp%'", [name]
            )
            > 0
        )

    def hash_bucket(self, value_sql: str, buckets: int) -> str:
        return hash_bucket_sql(value_sql, buckets)


class PostgresWarehouse(Warehouse):
    def __init__(self, settings: Settings):
        super().__init__(settings)
        url = settings.warehouse_url
        parts = urlparse(url)
        if not parts.path.strip("/"):
            raise SegflowError(
                f"warehouse URL '{url}': name a database, e.g. postgresql+psycopg://USER@HOST:5432/DB"
            )
        self.conninfo = url.replace(parts.scheme + "://", "postgresql://", 1)
        # SQLAlchemy 2.1 needs the driver named; psycopg 3 is the one installed.
        self.sqlalchemy_url = url.replace(parts.scheme + "://", "postgresql+psycopg://", 1)
        self.published_schema = str(settings.get("warehouse.published_schema") or "segflow")
        self.display = f"{parts.hostname}:{parts.port or 5432}/{parts.path.strip('/')}"

    @property
    def location(self) -> str:
        return f"PostgreSQL {self.display}"

    @property
    def readers(self) -> str:
        return f"published tables in schema {self.published_schema}"

    @property
    def files_dir(self) -> Path:
        """Data docs and the GE project: beside the default warehouse, in a folder per database."""
        chosen = self.settings.get("warehouse.files_dir")
        if chosen:
            return Path(chosen).expanduser().resolve()
        return DEFAULT_WAREHOUSE_PATH.parent / f"postgres-{self.display.replace('/', '-').replace(':', '-')}"

    def _connect(self, doing: str) -> psycopg.Connection:
        try:
            # Prepared plans would outlive the tables a build replaces ("cached plan must not change result type").
            con = psycopg.connect(
                self.conninfo, autocommit=True, application_name="segflow", prepare_threshold=None
            )
        except psycopg.OperationalError as exc:
            raise SegflowError(
                f"{self.location}: cannot connect for {doing} ({str(exc).strip().splitlines()[0]})"
            ) from exc
        con.adapters.register_loader("numeric", NumericLoader)
        return con

    @contextlib.contextmanager
    def work(self, doing: str = "segflow", outcome: str = "published nothing") -> Iterator[PostgresSession]:
        con = self._connect(doing)
        try:
            con.execute(f"set timezone = '{self.settings.timezone}'")
            con.execute(f"set work_mem = '{self.settings.get('warehouse.postgres_work_mem')}'")
            # The JIT compiles the generated tag and segment queries for longer than they run
            # (bench/RESULTS.md).
            con.execute("set jit = off")
            # One writer at a time, as on DuckDB: a session-level advisory lock, released on close.
            deadline = time.monotonic() + PUBLISH_RETRY_SECONDS
            while not con.execute("select pg_try_advisory_lock(hashtext('segflow writer'))").fetchone()[0]:
                if time.monotonic() > deadline:
                    raise SegflowError(
                        f"{self.location}: another segflow command is writing to this warehouse and did not "
                        f"finish within {PUBLISH_RETRY_SECONDS:.0f} s"
                    )
                time.sleep(0.5)
            for schema in (*SCHEMAS, self.published_schema):
                con.execute(f"create schema if not exists {schema}")
            yield PostgresSession(con, self.settings.timezone, sqlalchemy_url=self.sqlalchemy_url)
        except OUT_OF_MEMORY_ERRORS as exc:
            where = "".join(f" in {note}" for note in getattr(exc, "__notes__", []))
            raise SegflowError(
                f"{doing} ran out of memory or disk{where} on {self.location} and {outcome} "
                f"({str(exc).strip().splitlines()[0]})"
            ) from exc
        except psycopg.OperationalError as exc:
            raise SegflowError(
                f"{doing} lost its connection to {self.location} and {outcome} ({str(exc).strip().splitlines()[0]})"
            ) from exc
        finally:
            con.close()

    def staging(self, work: Session) -> contextlib.AbstractContextManager[Session]:
        """Files are typed in DuckDB in process; hand_over moves the result."""
        return scratch_session(self.settings, self.files_dir / ".duckdb_tmp")

    def hand_over(self, staging: Session, work: Session, tables: dict[str, str]) -> None:
        staged_rows.hand_over(self.files_dir / ".duckdb_tmp", staging, work, tables)

    def append_rows(
        self, staging: Session, work: Session, relation: str, columns: list[str], sql: str
    ) -> None:
        staged_rows.copy_in(
            self.files_dir / ".duckdb_tmp", staging, work, f"{relation} ({', '.join(columns)})", sql
        )

    def take_back(self, work: Session, staging: Session, tables: list[str]) -> None:
        staged_rows.take_back(self.files_dir / ".duckdb_tmp", work, staging, tables)

    def publish(self, session: Session, tables: list[str] | None = None) -> dict[str, str]:
        con = session.con
        work_tables = self._work_relations(con, "BASE TABLE")
        published = {
            row[0]
            for row in con.execute(
                "select table_name from information_schema.tables where table_schema = %s",
                [self.published_schema],
            ).fetchall()
        }
        if tables is None or not published:
            reading = [
                view
                for view in self._work_relations(con, "VIEW")
                if session._reads_published(exp.to_table(f"pub.{view}"))
            ]
            histories = history.history_views(con) if self._has_histories(con) else []
            self._swap_schema(session, work_tables, reading, histories)
            modes = {
                **dict.fromkeys(work_tables, "built"),
                **dict.fromkeys(reading, "carried"),
                **dict.fromkeys(histories, "appended"),
            }
            return dict(sorted(modes.items()))
        fresh = [t for t in tables if t in work_tables]
        self._swap_tables(session, fresh)
        modes = {table: "carried" for table in published if "__" not in table}
        modes.update(dict.fromkeys(fresh, "copied"))
        return dict(sorted(modes.items()))

    @staticmethod
    def _has_histories(con: psycopg.Connection) -> bool:
        return (
            con.execute("select 1 from pg_namespace where nspname = %s", [history.SCHEMA]).fetchone()
            is not None
        )

    @staticmethod
    def _work_relations(con: psycopg.Connection, kind: str) -> list[str]:
        return [
            row[0]
            for row in con.execute(
                "select table_name from information_schema.tables where table_schema = 'pub' "
                "and table_type = %s order by table_name",
                [kind],
            ).fetchall()
        ]

    def _copy(self, session: Session, schema: str, table: str, name: str) -> None:
        session.con.execute(f"create table {schema}.{name} as select * from pub.{table}")
        self._describe_for_readers(session, f"{schema}.{name}", table)

    def _describe_for_readers(self, session: Session, relation: str, table: str, kind: str = "table") -> None:
        """The table's comments from the models' docs, and SELECT for the reader roles."""
        for statement in comment_statements(relation, table, session.columns(relation), kind):
            session.execute(statement)
        for role in self._reader_roles():
            session.con.execute(f"grant select on {relation} to {role}")

    def _reader_roles(self) -> list[str]:
        roles = self.settings.get("warehouse.reader_roles") or []
        return [str(psycopg.sql.Identifier(str(role)).as_string()) for role in roles]

    def _swap_schema(
        self, session: Session, built: list[str], reading: list[str], histories: list[str]
    ) -> None:
        """The work tables become the published schema without a copy: in one transaction they move
        (ALTER TABLE ... SET SCHEMA: a catalog change) into a fresh schema renamed over the published
        one, and each leaves a view in pub that later commands read (PostgresSession._own_copy).
        Only the tables no command rewrote since the last publish (`reading`) are copied."""
        con = session.con
        target = self.published_schema
        self._drop_replaced(con)
        building = f"{target}__building"
        con.execute(f"drop schema if exists {building} cascade")
        con.execute(f"create schema {building}")
        for role in self._reader_roles():
            con.execute(f"grant usage on schema {building} to {role}")
        for table in reading:
            self._copy(session, building, table, table)
        for table in built:
            self._describe_for_readers(session, f"pub.{table}", table)
        for table in histories:  # the same parts, listed by a view of the published schema
            con.execute(f"create view {building}.{table} as {history.view_sql(con, table)}")
            self._describe_for_readers(session, f"{building}.{table}", table, "view")
        failpoint("publish:before_swap")
        replaced = f"{target}__replaced_{time.time_ns()}"
        with con.transaction():
            # Only segflow's own sessions ever lock the work tables; never wait on one forever.
            con.execute("set local lock_timeout = '60s'")
            for table in built:
                con.execute(f"alter table pub.{table} set schema {building}")
            for table in reading:
                con.execute(f"drop view pub.{table}")
            for table in [*built, *reading]:
                con.execute(f"create view pub.{table} as select * from {building}.{table}")
                con.execute(f"comment on view pub.{table} is {literal(READS_PUBLISHED)}")
            con.execute(f"alter schema {target} rename to {replaced}")
            con.execute(f"alter schema {building} rename to {target}")
        failpoint("publish:after_swap")
        self._drop_replaced(con)
        if histories:  # parts only the replaced views listed
            history.drop_unlisted(con)

    def _drop_replaced(self, con: psycopg.Connection) -> None:
        """Drop schemas replaced by earlier publishes; one a reader still holds waits for later."""
        replaced = con.execute(
            "select nspname from pg_namespace where nspname like %s",
            [f"{self.published_schema}\\_\\_replaced\\_%"],
        ).fetchall()
        for (schema,) in replaced:
            try:
                with con.transaction():
                    con.execute(f"set local lock_timeout = {LOCK_TIMEOUT_MS}")
                    con.execute(f"drop schema {schema} cascade")
            except (pg_errors.LockNotAvailable, pg_errors.DeadlockDetected):
                pass

    def _swap_tables(self, session: Session, tables: list[str]) -> None:
        con = session.con
        target = self.published_schema
        for table in tables:
            con.execute(f"drop table if exists {target}.{table}__next")
            self._copy(session, target, table, f"{table}__next")
        failpoint("publish:before_swap")
        deadline = time.monotonic() + PUBLISH_RETRY_SECONDS
        while True:
            try:
                with con.transaction():
                    con.execute(f"set local lock_timeout = {LOCK_TIMEOUT_MS}")
                    for table in tables:
                        con.execute(f"drop table if exists {target}.{table}")
                        con.execute(f"alter table {target}.{table}__next rename to {table}")
                break
            except pg_errors.LockNotAvailable as exc:
                if time.monotonic() > deadline:
                    raise SegflowError(
                        f"{self.location}: readers held {', '.join(tables)} for {PUBLISH_RETRY_SECONDS:.0f} s; "
                        "nothing published"
                    ) from exc
                time.sleep(0.5)
        failpoint("publish:after_swap")

    @contextlib.contextmanager
    def read(self) -> Iterator[PostgresSession]:
        con = self._connect("reading")
        try:
            con.execute(f"set timezone = '{self.settings.timezone}'")
            exists = con.execute(
                "select 1 from pg_namespace where nspname = %s", [self.published_schema]
            ).fetchone()
            if (
                not exists
                or not con.execute(
                    "select 1 from information_schema.tables where table_schema = %s limit 1",
                    [self.published_schema],
                ).fetchone()
            ):
                raise SegflowError(
                    f"{self.location}: nothing published yet; run `segflow ingest` and `segflow build` first"
                )
            # Not read-only: pack previews and exports keep their working sets in temp tables.
            con.execute(f"set search_path = {self.published_schema}")
            yield PostgresSession(con, self.settings.timezone, published_schema=self.published_schema)
        finally:
            con.close()
