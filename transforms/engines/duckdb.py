"""The warehouse: a DuckDB work file that only segflow writes, and a published file that readers open.

A DuckDB file takes one writer or many readers, never both. So every write (ingest, build, pack
export) happens in `<name>.work.duckdb`; publishing brings a copy of the published file up to date
with the work file's `pub` tables and renames it over `<name>.duckdb` in one atomic step. Readers
holding the old file keep reading it; the next connection sees the new one. Nobody ever waits on a
lock to read.
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

from transforms.engines.base import Session, Warehouse
from transforms.errors import SegflowError
from transforms.failpoints import failpoint
from transforms.settings import Settings
from transforms.sql import literal
from transforms.table_docs import comment_statements

SCHEMAS = ("raw", "stg", "int", "pub", "meta")
# The keys (e.g. as-of dates) of history tables written since the last publish: publish copies
# only those rows into the new file. Filled by incremental models; emptied after each swap.
UNPUBLISHED_KEYS_DDL = "create table if not exists meta.unpublished_keys (table_name varchar, key_column varchar, key_value varchar)"
LOCK_WAIT_SECONDS = float(os.environ.get("SEGFLOW_LOCK_WAIT_SECONDS", "600"))


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
    def __init__(self, con: duckdb.DuckDBPyConnection, published_catalog: str | None = None):
        self.con = con
        # A reader's published tables are the attached file's main schema, addressed as pub.
        self.published_catalog = published_catalog

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

    def note_rows_written(self, relation: str, key: str, keys_sql: str, params: list | None = None) -> None:
        """Publish copies only these keys' rows of a history table into the next published file."""
        self.execute(UNPUBLISHED_KEYS_DDL)
        self.execute(
            f"insert into meta.unpublished_keys select '{relation}', '{key}', key_value "
            f"from ({keys_sql}) as keys(key_value)",
            params,
        )


class DuckDBWarehouse(Warehouse):
    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.published_path = duckdb_path_from_url(settings.warehouse_url)
        self.work_path = self.published_path.with_name(self.published_path.stem + ".work.duckdb")
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
                    raise SegflowError(
                        f"{self.work_path}: another segflow command is writing to this warehouse "
                        f"and did not finish within {LOCK_WAIT_SECONDS:.0f} s"
                    ) from exc
                time.sleep(0.5)
        try:
            con.execute(f"set TimeZone = '{self.settings.timezone}'")
            for schema in SCHEMAS:
                con.execute(f"create schema if not exists {schema}")
            yield DuckDBSession(con)
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

    def publish(self, session: Session, tables: list[str] | None = None) -> dict[str, str]:
        """Swap in a new published file.

        With `tables=None` (the build's publish step, after its checks passed) every table of the
        work file's `pub` schema is published. Commands that change only their own tables (ingest,
        pack exports, reminders) name them: every other table is carried over from the file readers
        see now, so a build that failed its checks is never published by a later command.

        The new file starts as a byte copy of the published one, so carried tables cost nothing, and
        a history table gets only the rows of the keys written since the last publish
        (UNPUBLISHED_KEYS_DDL): rewriting every table made publish grow with each as-of date kept.
        The other tables are rewritten whole, and so is a history table whose columns or row count
        would differ from the work file's.
        """
        con = session.con
        work_tables = [
            row[0]
            for row in con.execute(
                "select table_name from information_schema.tables "
                "where table_catalog = current_database() and table_schema = 'pub' "
                "and table_type = 'BASE TABLE' order by table_name"
            ).fetchall()
        ]
        if tables is not None and not self.published_path.exists():
            tables = work_tables  # nothing published yet: publish what there is
        fresh = work_tables if tables is None else [t for t in tables if t in work_tables]
        staging_path = self.published_path.with_name(
            f".{self.published_path.stem}.publish-{os.getpid()}.duckdb"
        )
        staging_path.unlink(missing_ok=True)
        staging_path.with_name(staging_path.name + ".wal").unlink(missing_ok=True)  # left by a crash
        if self.published_path.exists():
            shutil.copyfile(self.published_path, staging_path)
        con.execute(UNPUBLISHED_KEYS_DDL)
        con.execute(f"attach '{staging_path}' as publishing")
        try:
            published_before = {
                row[0]
                for row in con.execute(
                    "select table_name from information_schema.tables where table_catalog = 'publishing' "
                    "and table_type = 'BASE TABLE'"
                ).fetchall()
            }
            appendable = {
                table: key
                for table in fresh
                if table in published_before and (key := _unpublished_key(con, table))
            }
            rewritten = [t for t in fresh if t not in appendable]
            stale = sorted(published_before - set(work_tables)) if tables is None else []
            # Dropped and checkpointed first, so the new tables reuse their blocks and the file
            # stays the size of what it holds.
            for table in rewritten + stale:
                con.execute(f"drop table if exists publishing.main.{table}")
            con.execute("checkpoint publishing")
            for table, key in appendable.items():
                if not _publish_new_keys(con, table, key):
                    con.execute(f"drop table publishing.main.{table}")
                    rewritten.append(table)
            for table in rewritten:
                con.execute(f"create table publishing.main.{table} as select * from pub.{table}")
            carried = sorted(published_before - set(fresh)) if tables is not None else []
            for table in fresh:  # the comments BI tools show, from the models' YAML
                columns = [row[0] for row in con.execute(f"describe publishing.main.{table}").fetchall()]
                for statement in comment_statements(f"publishing.main.{table}", table, columns):
                    con.execute(statement)
            con.execute("checkpoint publishing")
        finally:
            con.execute("detach database if exists publishing")
        with open(staging_path, "rb") as handle:
            os.fsync(handle.fileno())
        failpoint("publish:before_swap")
        os.replace(staging_path, self.published_path)
        failpoint("publish:after_swap")
        # After the swap: a crash before this line publishes the same keys again next time.
        con.execute(
            "delete from meta.unpublished_keys where table_name in (select unnest(?))",
            [[f"pub.{table}" for table in fresh]],
        )
        modes = {table: "carried" for table in carried}
        modes.update({table: "appended" for table in appendable if table not in rewritten})
        modes.update({table: "rewritten" for table in rewritten})
        return dict(sorted(modes.items()))

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


def _unpublished_key(con: duckdb.DuckDBPyConnection, table: str) -> str | None:
    """The key column of the rows written to a history table since the last publish, when the new
    published file's copy of it can take just those rows (same columns); else None."""
    keys = con.execute(
        "select distinct key_column from meta.unpublished_keys where table_name = ?", [f"pub.{table}"]
    ).fetchall()
    if len(keys) != 1:
        return None
    same_columns = (
        con.execute(f"describe pub.{table}").fetchall()
        == con.execute(f"describe publishing.main.{table}").fetchall()
    )
    return keys[0][0] if same_columns else None


def _publish_new_keys(con: duckdb.DuckDBPyConnection, table: str, key: str) -> bool:
    """Replace the rows of the keys written since the last publish. False, with nothing changed,
    when the row count then differs from the work file's (the files went apart)."""
    relation = f"pub.{table}"
    written = (
        f"cast({key} as varchar) in (select key_value from meta.unpublished_keys where table_name = "
        f"'{relation}')"
    )
    con.execute("begin transaction")
    try:
        con.execute(f"delete from publishing.main.{table} where {written}")
        con.execute(f"insert into publishing.main.{table} by name select * from pub.{table} where {written}")
        counts = con.execute(
            f"select (select count(*) from publishing.main.{table}), (select count(*) from pub.{table})"
        ).fetchone()
        if counts[0] != counts[1]:
            con.execute("rollback")
            return False
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return True
