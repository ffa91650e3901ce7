"""The engine interface: what the pipeline asks of a warehouse, whatever runs it.

A `Warehouse` opens sessions (`work()` to write, `read()` for the published tables) and publishes;
a `Session` runs SQL and moves Arrow data in and out. Each engine (one module beside this one)
answers these with its driver; no module outside this package imports a driver.
"""

from __future__ import annotations

import contextlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from transforms.errors import SegflowError
from transforms.settings import Settings
from transforms.sql import literal, render_refs

# How long a writing command waits for another to finish before it gives up.
LOCK_WAIT_SECONDS = float(os.environ.get("SEGFLOW_LOCK_WAIT_SECONDS", "600"))


def another_writer(location: str) -> SegflowError:
    return SegflowError(
        f"{location}: another segflow command is writing to this warehouse "
        f"and did not finish within {LOCK_WAIT_SECONDS:.0f} s"
    )


def only_key(keys: set[str], run_value: str | None) -> str | None:
    """The one key (as text) a history merge's rows hold, so they are stored as written: the run's
    key when they hold nothing else; None when they hold several and are stored key by key."""
    if run_value is not None:
        return run_value if keys <= {run_value} else None
    return next(iter(keys)) if len(keys) == 1 else None


class Rows:
    """A result a session answers itself (describe, a catalog it keeps), DB-API style."""

    def __init__(self, rows: list[tuple], names: list[str]):
        self._rows = rows
        self.description = [(name,) for name in names]
        self.rowcount = len(rows)

    def fetchall(self) -> list[tuple]:
        return self._rows

    def fetchone(self) -> tuple | None:
        return self._rows[0] if self._rows else None


class Session(ABC):
    """One connection to the warehouse. `execute` follows DB-API: the result has fetchall()."""

    # Identity stitching computes connected components in SQL inside the engine (a cluster) rather
    # than pulling the identifier pairs into scipy (one machine: faster there).
    graph_in_engine = False

    @abstractmethod
    def execute(self, sql: str, params: list | None = None) -> Any: ...

    @abstractmethod
    def fetch_arrow(self, sql: str, params: list | None = None) -> pa.Table: ...

    @abstractmethod
    def fetch_numpy(self, sql: str) -> dict[str, np.ndarray]:
        """Columns as numpy arrays (identity stitching's graph)."""

    @abstractmethod
    def fetch_batches(self, sql: str, rows: int) -> Iterator[pa.RecordBatch]:
        """The result in record batches of about `rows` rows, never all of it in memory at once."""

    @abstractmethod
    def registered(self, name: str, data: Any) -> contextlib.AbstractContextManager[None]:
        """An Arrow table or a pandas frame readable as relation `name` inside the block."""

    @abstractmethod
    def scan_files(self, name: str, paths: list[str], file_format: str) -> pa.Table | None:
        """Read landing files of one format (csv, parquet, jsonl) into temp relation `name`: their
        columns, `_scan_file` (the path read) and `_scan_row` (order in the scan). For CSV, the
        rows that could not be split into columns come back as (line, csv_line, error_message)."""

    @abstractmethod
    def drop_scan(self, name: str) -> None:
        """Free what scan_files made."""

    @abstractmethod
    def columns(self, relation: str) -> list[str]:
        """A relation's column names, in order."""

    def load_temp_table(self, name: str, data: Any, select: str = "*") -> None:
        """An Arrow table (or what `select` makes of it) as temp table `name`, replacing one of
        that name: unlike a registered view it lives as long as the session and can spill."""
        with self.registered(f"{name}__arrow", data):
            self.execute(f"create or replace temp table {name} as select {select} from {name}__arrow")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction: committed when the block ends, rolled back when it raises."""
        self.execute("begin transaction")
        try:
            yield
        except BaseException:
            self.execute("rollback")
            raise
        self.execute("commit")

    def replace_keyed_rows(
        self,
        relation: str,
        key: str,
        select: str,
        run_key: str | None,
        expire: Callable[[list[str]], list[str]],
    ) -> list[str]:
        """An incremental model's merge: the rows of `select` replace the rows of their keys in
        `relation` (and those of `run_key`, an SQL literal, even when it selects none); then the
        keys `expire` picks from all the relation's keys (as text) are deleted. One transaction.
        Returns the deleted keys."""
        batch = "incremental_batch"
        self.execute(f"create or replace temp table {batch} as {select}")
        try:
            return self._merge_batch(relation, key, batch, run_key, expire)
        finally:
            self.execute(f"drop table if exists {batch}")

    def _merge_batch(
        self,
        relation: str,
        key: str,
        batch: str,
        run_key: str | None,
        expire: Callable[[list[str]], list[str]],
    ) -> list[str]:
        if not self.table_exists(*relation.split(".", 1)):
            self.execute(f"create table {relation} as select * from {batch}")
            return []
        existing = set(self.columns(relation))
        for name, sql_type, *_ in self.execute(f"describe {batch}").fetchall():
            if name not in existing:
                self.execute(f'alter table {relation} add column "{name}" {sql_type}')
        with self.transaction():
            self.execute(f"delete from {relation} where {key} in (select distinct {key} from {batch})")
            if run_key:
                self.execute(f"delete from {relation} where {key} = {run_key}")
            self.execute(f"insert into {relation} by name select * from {batch}")
            keys = [
                row[0]
                for row in self.execute(
                    f"select distinct cast({key} as varchar) from {relation} order by 1"
                ).fetchall()
            ]
            expired = expire(keys)
            if expired:
                self.execute(
                    f"delete from {relation} where cast({key} as varchar) in ({', '.join(literal(k) for k in expired)})"
                )
        return expired

    @abstractmethod
    def dq_sql_source(self) -> contextlib.AbstractContextManager[dict]:
        """For the block: how Great Expectations' SQL execution engine reaches this session's tables
        (its data source type, `connection_string` and any `kwargs` for SQLAlchemy's create_engine)."""

    def dq_sql(self, table: str, sql: str) -> str:
        """A query of `table` for GE's data source, in the engine's dialect."""
        return sql

    def dq_batch(self, source, name: str, table: str, sql: str):
        """The GE batch a table's checks validate: `sql` (a query of `table`) as asset `name` of
        `source` (what dq_sql_source described, added to GE's context)."""
        asset = source.add_query_asset(name, self.dq_sql(table, sql))
        return asset.add_batch_definition_whole_table("all").get_batch()

    def published_tables(self) -> list[str]:
        """In a reader session: the names of the published tables, sorted."""
        raise NotImplementedError

    def temp_table_exists(self, name: str) -> bool:
        return bool(
            self.scalar("select count(*) from duckdb_tables() where temporary and table_name = ?", [name])
        )

    def hash_bucket(self, value_sql: str, buckets: int) -> str:
        """SQL for a stable bucket 0..buckets-1 of a text value: the MD5 digest as a little-endian
        integer, modulo buckets (holdout groups, so the same customers on every engine)."""
        return f"(md5_number({value_sql}) % {buckets})"

    def render(self, sql: str) -> str:
        """SQL that names published tables with sql.ref(), as this session reaches them (schema pub)."""
        return render_refs(sql, lambda model: f"pub.{model}")

    def row_count(self, relation: str) -> int:
        """The rows of a table (a model just built, for the build's report)."""
        return int(self.scalar(f"select count(*) from {relation}"))

    def fetch_dicts(self, sql: str, params: list | None = None) -> list[dict]:
        cursor = self.execute(sql, params or [])
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def scalar(self, sql: str, params: list | None = None) -> Any:
        """The single value of a query, with the result drained."""
        rows = self.execute(sql, params or []).fetchall()
        return rows[0][0] if rows else None

    def relation_kind(self, schema: str, name: str) -> str | None:
        """'BASE TABLE', 'VIEW' or None when there is no such relation in the work database."""
        return self.scalar(
            "select table_type from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, name],
        )

    def table_exists(self, schema: str, name: str) -> bool:
        return self.relation_kind(schema, name) is not None


class Warehouse(ABC):
    """Where segflow writes (the work database) and what readers see (the published tables)."""

    def __init__(self, settings: Settings):
        self.settings = settings

    @property
    @abstractmethod
    def location(self) -> str:
        """What messages name as the warehouse (a file, a server and database)."""

    @property
    def readers(self) -> str:
        """How BI tools reach the published tables, for messages."""
        raise NotImplementedError

    @property
    def files_dir(self) -> Path:
        """The folder for what lives beside the warehouse (data docs, the GE project)."""
        raise NotImplementedError

    @abstractmethod
    def work(
        self, doing: str = "segflow", outcome: str = "published nothing"
    ) -> contextlib.AbstractContextManager[Session]:
        """The writing session; errors it can name (out of memory, locks) become one line."""

    @abstractmethod
    def read(self) -> contextlib.AbstractContextManager[Session]:
        """A read-only session on the published tables, by their bare names, as BI tools see them."""

    def read_loaded(self, doing: str) -> contextlib.AbstractContextManager[Session]:
        """A read session that also sees the loaded records (raw.<kind>, meta.*) beside the published
        tables (as pub.<table>), for commands that explain a table from its records (`whois`). Here
        both live in one database; engines that keep them apart override this."""
        return self.read()

    @contextlib.contextmanager
    def staging(self, work: Session) -> Iterator[Session]:
        """Where ingest reads and types landing files: the work session itself where the engine
        reads files natively; `hand_over` then moves the named temp tables into the work session."""
        yield work

    def hand_over(self, staging: Session, work: Session, tables: dict[str, str]) -> None:
        """Each query's rows (run in the staging session) as a temp table of that name in the work
        session, when the two differ."""
        raise NotImplementedError("this engine stages files in its work session")

    def take_back(self, work: Session, staging: Session, tables: list[str]) -> None:
        """Temp tables of the work session copied, under the same names, into the staging session,
        when the two differ."""
        raise NotImplementedError("this engine stages files in its work session")

    def append_rows(
        self, staging: Session, work: Session, relation: str, columns: list[str], sql: str
    ) -> None:
        """The rows of `sql` (run in the staging session) appended to `relation` of the work session,
        its `columns` in the query's order."""
        work.execute(f"insert into {relation} ({', '.join(columns)}) {sql}")

    @abstractmethod
    def publish(self, session: Session, tables: list[str] | None = None) -> dict[str, str]:
        """Make the work session's finished tables what readers see, all at once. With a list, only
        those tables change and every other one is carried over. Returns every published table with
        how it got there: built (written where readers now find it), copied (from the work
        session), or carried (unchanged)."""
