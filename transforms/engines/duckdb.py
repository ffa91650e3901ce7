"""The warehouse: a DuckDB work file that only segflow writes, and a published file that readers open.

A DuckDB file takes one writer or many readers, never both. So nothing is written to the file readers
hold. Ingest, the build's models and pack exports write their tables (schema `pub`) into
`<name>.next.duckdb`, the next published file, beside the work file `<name>.work.duckdb` (raw,
staging, intermediates, bookkeeping). A build publishes by renaming the next file over
`<name>.duckdb` in one atomic step: its tables are written once, where readers then find them.
History tables are views over one Parquet file per as-of date (duckdb_history.py), so publishing
does not grow with the dates kept. Readers holding the old file keep reading it; the next
connection sees the new one. Nobody ever waits on a lock to read.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import duckdb
import numpy as np
import pyarrow as pa

from transforms.engines.base import LOCK_WAIT_SECONDS, Session, Warehouse, another_writer
from transforms.engines.duckdb_ge import ge_connection
from transforms.engines.duckdb_history import delete_unlisted, listed_tables, replace_keys
from transforms.errors import SegflowError
from transforms.failpoints import failpoint
from transforms.settings import Settings
from transforms.sql import literal
from transforms.table_docs import comment_statements

SCHEMAS = ("raw", "stg", "int", "meta")


def duckdb_path_from_url(url: str) -> Path:
    """`duckdb:///relative/or/absolute.duckdb` -> a path."""
    raw = url[len("duckdb:///") :] if url.startswith("duckdb:///") else urlparse(url).path
    raw = raw.split("?", 1)[0]
    if not raw or raw == ":memory:":
        raise SegflowError(f"warehouse URL '{url}': name a file, e.g. duckdb:///warehouse/segflow.duckdb")
    return Path(raw).expanduser().resolve()


# What callers catch, by kind (see transforms.engines for all engines' together).
DATABASE_ERRORS: tuple[type[BaseException], ...] = (duckdb.Error,)
OUT_OF_MEMORY_ERRORS: tuple[type[BaseException], ...] = (duckdb.OutOfMemoryException,)
MISSING_RELATION_ERRORS: tuple[type[BaseException], ...] = (duckdb.CatalogException,)


def scratch_connection(settings: Settings, temp_dir: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that spills to `temp_dir`: where other engines read and type landing files."""
    temp_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(config=_config(settings, temp_dir))
    con.execute(f"set TimeZone = '{settings.timezone}'")
    return con


@contextlib.contextmanager
def scratch_session(settings: Settings, temp_dir: Path) -> Iterator[DuckDBSession]:
    """A session on `scratch_connection`, closed when the block ends: where engines that do not read
    files themselves type landing files (Warehouse.staging)."""
    con = scratch_connection(settings, temp_dir)
    try:
        yield DuckDBSession(con)
    finally:
        con.close()


def _config(settings: Settings, temp_dir: Path) -> dict:
    return {
        "memory_limit": str(settings.get("warehouse.duckdb_memory_limit")),
        "threads": int(settings.get("warehouse.duckdb_threads")),
        "temp_directory": str(temp_dir),
        "preserve_insertion_order": True,
        # The models' top-1 windows rank millions of partitions of one or two rows (versions of
        # an order or a line). DuckDB rewrites a one-key top-1 window into an arg_max aggregate,
        # which is slower than the window for them (bench/RESULTS.md).
        "disabled_optimizers": "top_n_window_elimination",
    }


class DuckDBSession(Session):
    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        published_catalog: str | None = None,
        history_dir: Path | None = None,
    ):
        self.con = con
        # The published tables (a reader's) or the next ones (a writer's): the attached file's main
        # schema, addressed as pub.
        self.published_catalog = published_catalog
        self.history_dir = history_dir

    def relation_kind(self, schema: str, name: str) -> str | None:
        if self.published_catalog and schema == "pub":
            return self.scalar(
                "select table_type from information_schema.tables where table_catalog = ? "
                "and table_schema = 'main' and table_name = ?",
                [self.published_catalog, name],
            )
        return super().relation_kind(schema, name)

    def published_tables(self) -> list[str]:
        return [
            row[0]
            for row in self.execute(
                "select table_name from information_schema.tables where table_catalog = ? "
                "and table_schema = 'main' order by 1",
                [self.published_catalog],
            ).fetchall()
        ]

    def execute(self, sql: str, params: list | None = None):
        return self.con.execute(sql, params) if params else self.con.execute(sql)

    def fetch_arrow(self, sql: str, params: list | None = None) -> pa.Table:
        if params:
            return self.con.execute(sql, params).to_arrow_table()
        return self.con.sql(sql).to_arrow_table()

    def fetch_numpy(self, sql: str) -> dict[str, np.ndarray]:
        return self.con.sql(sql).fetchnumpy()

    def fetch_batches(self, sql: str, rows: int):
        return iter(self.con.sql(sql).to_arrow_reader(rows))

    @contextlib.contextmanager
    def dq_sql_source(self) -> Iterator[dict]:
        """GE's SQL engine on cursors of this connection (`ge_connection`): they see its committed
        tables and attached files, not its temp tables. The cursors are closed when the block ends,
        and what GE's engine keeps after it is emptied."""
        from sqlalchemy.pool import NullPool

        connection = [self.con]
        holders: list[list[duckdb.DuckDBPyConnection]] = []

        def connect():
            holders.append([connection[0].cursor()])
            return ge_connection(holders[-1])

        kwargs = {"creator": connect, "poolclass": NullPool, "pool_reset_on_return": None}
        try:
            yield {"type": "sql", "connection_string": "duckdb:///:memory:", "kwargs": kwargs}
        finally:
            connection.clear()
            for holder in holders:
                holder.pop().close()
            holders.clear()

    def dq_sql(self, table: str, sql: str) -> str:
        if self.temp_table_exists(table):
            raise SegflowError(
                f"data-quality checks read tables other connections can see; {table} is temporary"
            )
        return sql

    @contextlib.contextmanager
    def registered(self, name: str, data) -> Iterator[None]:
        self.con.register(name, data)
        try:
            yield
        finally:
            self.con.unregister(name)

    def scan_files(self, name: str, paths: list[str], file_format: str) -> pa.Table | None:
        """One multi-file scan into temp relation `name`; CSV rows that would not split come back."""
        listed = "[" + ", ".join(literal(path) for path in paths) + "]"
        self.drop_scan(name)
        if file_format == "csv":
            self.execute("drop table if exists landing_rejects")
            self.execute("drop table if exists landing_rejects_scan")
            reader = (
                f"read_csv({listed}, all_varchar = true, header = true, filename = '_scan_file',"
                " store_rejects = true, rejects_table = 'landing_rejects', rejects_scan = 'landing_rejects_scan')"
            )
        elif file_format == "parquet":
            reader = f"read_parquet({listed}, union_by_name = true, filename = '_scan_file')"
        else:
            reader = f"read_json({listed}, format = 'newline_delimited', union_by_name = true, filename = '_scan_file')"
        self.execute(f"create temp table {name}_data as select * from {reader}")
        self.execute(f"create temp view {name} as select *, rowid as _scan_row from {name}_data")
        if file_format != "csv":
            return None
        rejects = self.fetch_arrow("select line, csv_line, error_message from landing_rejects order by line")
        return rejects if rejects.num_rows else None

    def drop_scan(self, name: str) -> None:
        self.execute(f"drop view if exists {name}")
        self.execute(f"drop table if exists {name}_data")

    def columns(self, relation: str) -> list[str]:
        return [row[0] for row in self.execute(f"describe {relation}").fetchall()]

    def replace_keyed_rows(self, relation, key, select, run_key, expire) -> list[str]:
        if self.history_dir is None or not relation.startswith("pub."):
            return super().replace_keyed_rows(relation, key, select, run_key, expire)
        return replace_keys(
            self.con, self.history_dir, relation.split(".", 1)[1], key, select, run_key, expire
        )


class DuckDBWarehouse(Warehouse):
    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.published_path = duckdb_path_from_url(settings.warehouse_url)
        self.work_path = self.published_path.with_name(self.published_path.stem + ".work.duckdb")
        self.next_path = self.published_path.with_name(self.published_path.stem + ".next.duckdb")
        self.history_dir = self.published_path.with_name(self.published_path.stem + ".history")
        self.temp_dir = self.published_path.parent / ".duckdb_tmp"

    @property
    def location(self) -> str:
        return str(self.published_path)

    @property
    def readers(self) -> str:
        return "open it read-only with any DuckDB client"

    @property
    def files_dir(self) -> Path:
        return self.published_path.parent

    # -- writers -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def work(self, doing: str = "segflow", outcome: str = "published nothing") -> Iterator[DuckDBSession]:
        """The read-write connection to the work file. One process at a time; others wait their turn.

        Running out of memory anywhere inside is reported as one line that says what was being done
        (`doing`, plus any notes the code added to the exception, such as the model) and what to change.
        """
        self.published_path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                con = duckdb.connect(str(self.work_path), config=self._config())
                break
            except duckdb.OutOfMemoryException as exc:  # opening a large file pins blocks too
                raise SegflowError(self._out_of_memory(exc, doing, outcome)) from exc
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise SegflowError(
                        f"{self.work_path}: cannot be opened ({str(exc).splitlines()[0]})"
                    ) from exc
                if time.monotonic() > deadline:
                    raise another_writer(str(self.work_path)) from exc
                time.sleep(0.5)
        try:
            con.execute(f"set TimeZone = '{self.settings.timezone}'")
            for schema in SCHEMAS:
                con.execute(f"create schema if not exists {schema}")
            self._attach_next(con)
            yield DuckDBSession(con, published_catalog="pub", history_dir=self.history_dir)
        except duckdb.OutOfMemoryException as exc:
            raise SegflowError(self._out_of_memory(exc, doing, outcome)) from exc
        finally:
            con.close()

    def _out_of_memory(self, exc: duckdb.OutOfMemoryException, doing: str, outcome: str) -> str:
        # Built from the settings, not by asking the connection that has just run out of memory.
        where = "".join(f" in {note}" for note in getattr(exc, "__notes__", []))
        limit = self.settings.get("warehouse.duckdb_memory_limit")
        try:
            free = f"{shutil.disk_usage(self.temp_dir).free / 1e9:.1f} GB free"
        except OSError:
            free = "free space unknown"
        return (
            f"{doing} ran out of memory{where} and {outcome} ({str(exc).splitlines()[0]}). "
            f"DuckDB's memory limit is {limit} and it spills to {self.temp_dir} ({free}): raise "
            "warehouse.duckdb_memory_limit in settings.yml, free disk space there, or load fewer files at a time"
        )

    def _config(self) -> dict:
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        return _config(self.settings, self.temp_dir)

    def _attach_next(self, con: duckdb.DuckDBPyConnection) -> None:
        """The next published file as catalog `pub`: what the last publish left, plus what was
        written since. Made as a copy of the published file when missing (after each build's publish)."""
        if _has_work_pub_schema(con):
            self._move_work_pub_to_next(con)
        if not self.next_path.exists():
            partial = self.next_path.with_name(f".{self.next_path.name}.partial")
            if self.published_path.exists():
                shutil.copyfile(self.published_path, partial)
            else:
                partial.unlink(missing_ok=True)
                duckdb.connect(str(partial)).close()
            _fsync(partial)
            os.replace(partial, self.next_path)
        con.execute(f"attach {literal(str(self.next_path))} as pub")

    def _move_work_pub_to_next(self, con: duckdb.DuckDBPyConnection) -> None:
        """A warehouse of an older segflow kept the next tables in the work file's schema pub."""
        self.next_path.unlink(missing_ok=True)
        con.execute(f"attach {literal(str(self.next_path))} as next_file")
        try:
            for (table,) in con.execute(
                "select table_name from duckdb_tables() where database_name = current_database() "
                "and schema_name = 'pub' order by 1"
            ).fetchall():
                con.execute(f"create table next_file.main.{table} as select * from pub.{table}")
            con.execute("checkpoint next_file")
        finally:
            con.execute("detach database if exists next_file")
        con.execute("drop schema pub cascade")
        con.execute("drop table if exists meta.unpublished_keys")

    def publish(self, session: Session, tables: list[str] | None = None) -> dict[str, str]:
        """Make the next file's tables what readers see.

        With `tables=None` (the build's publish step, after its checks passed) the next file itself
        becomes the published file: a rename, whatever the size of the tables. Commands that change
        only their own tables (ingest, pack exports, reminders) name them: those are copied into a
        copy of the published file, and every other table is carried over from the file readers see
        now, so a build that failed its checks is never published by a later command.
        """
        con = session.con
        if tables is None or not self.published_path.exists():
            return self._publish_next(con)
        staging_path = self.published_path.with_name(
            f".{self.published_path.stem}.publish-{os.getpid()}.duckdb"
        )
        staging_path.unlink(missing_ok=True)
        staging_path.with_name(staging_path.name + ".wal").unlink(missing_ok=True)  # left by a crash
        shutil.copyfile(self.published_path, staging_path)
        con.execute(f"attach {literal(str(staging_path))} as publishing")
        try:
            published_before = set(_tables(con, "publishing"))
            next_tables = set(_tables(con, "pub"))
            copied = [table for table in tables if table in next_tables]
            for table in copied:
                con.execute(f"drop table if exists publishing.main.{table}")
                con.execute(f"create table publishing.main.{table} as select * from pub.main.{table}")
                _comment(con, "publishing", table)
            con.execute("checkpoint publishing")
        finally:
            con.execute("detach database if exists publishing")
        _fsync(staging_path)
        failpoint("publish:before_swap")
        os.replace(staging_path, self.published_path)
        failpoint("publish:after_swap")
        modes = dict.fromkeys(sorted(published_before - set(copied)), "carried")
        modes.update(dict.fromkeys(copied, "copied"))
        return dict(sorted(modes.items()))

    def _publish_next(self, con: duckdb.DuckDBPyConnection) -> dict[str, str]:
        tables = _tables(con, "pub")
        for table in tables:  # the comments BI tools show, from the models' YAML
            _comment(con, "pub", table)
        con.execute("checkpoint pub")
        con.execute("detach pub")
        _fsync(self.next_path)
        failpoint("publish:before_swap")
        os.replace(self.next_path, self.published_path)
        failpoint("publish:after_swap")
        # Files of dates no longer listed (expired, or built again) go once no reader can need them.
        con.execute(f"attach {literal(str(self.published_path))} as published (read_only)")
        try:
            minutes = float(self.settings.get("history.delete_replaced_after_minutes"))
            delete_unlisted(con, "published", self.history_dir, minutes * 60)
            history = set(listed_tables(con, "published"))
        finally:
            con.execute("detach database if exists published")
        return {table: "appended" if table in history else "built" for table in tables}

    # -- readers -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def read(self) -> Iterator[DuckDBSession]:
        """The published file, read-only, as schema `pub` of an in-memory connection and its default
        schema: readers name tables bare (as BI tools do) or as pub.<table> (as pack expressions do).
        The connection holds the version it attached, whatever is published meanwhile."""
        if not self.published_path.exists():
            raise SegflowError(
                f"{self.published_path}: nothing published yet; run `segflow ingest` and `segflow build` first"
            )
        con = duckdb.connect()
        try:
            con.execute(f"set TimeZone = '{self.settings.timezone}'")
            con.execute(f"attach '{self.published_path}' as pub (read_only)")
            con.execute("use pub")
            yield DuckDBSession(con, published_catalog="pub")
        finally:
            con.close()

    @contextlib.contextmanager
    def read_loaded(self, doing: str) -> Iterator[DuckDBSession]:
        """The work file read-only (raw.<kind>, meta.*) with the published file as catalog `pub`.
        DuckDB lets no reader open a file while a writer holds it, so during a build or an ingest
        this says so in one line rather than waiting."""
        if not self.published_path.exists() or not self.work_path.exists():
            raise SegflowError(
                f"{self.published_path}: nothing published yet; run `segflow ingest` and `segflow build` first"
            )
        try:
            con = duckdb.connect(str(self.work_path), read_only=True)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise SegflowError(
                    f"{self.work_path}: cannot be opened ({str(exc).splitlines()[0]})"
                ) from exc
            raise SegflowError(
                f"{self.work_path}: {doing} reads the loaded records, and a build or ingest is writing "
                "them now; try again when it finishes"
            ) from exc
        try:
            con.execute(f"set TimeZone = '{self.settings.timezone}'")
            con.execute(f"attach {literal(str(self.published_path))} as pub (read_only)")
            yield DuckDBSession(con, published_catalog="pub")
        finally:
            con.close()


def _has_work_pub_schema(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(
        con.execute(
            "select count(*) from duckdb_schemas() where database_name = current_database() and schema_name = 'pub'"
        ).fetchone()[0]
    )


def _tables(con: duckdb.DuckDBPyConnection, catalog: str) -> list[str]:
    """The tables and history views of an attached file's main schema."""
    return [
        row[0]
        for row in con.execute(
            "select table_name from information_schema.tables where table_catalog = ? and table_schema = 'main' "
            "order by 1",
            [catalog],
        ).fetchall()
    ]


def _comment(con: duckdb.DuckDBPyConnection, catalog: str, table: str) -> None:
    columns = [row[0] for row in con.execute(f"describe {catalog}.main.{table}").fetchall()]
    for statement in comment_statements(f"{catalog}.main.{table}", table, columns):
        con.execute(statement)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
