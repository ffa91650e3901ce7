"""History tables on DuckDB: one immutable Parquet file per table and key (as-of date), listed by
a view in each published file.

Readers hold the published DuckDB file while a new one is made, so each publish makes a new file.
A history table stored inside it had to be copied into every new file, and publish grew with every
as-of date kept (bench/RESULTS.md). Here each date's rows are written once, as a Parquet file under
`<name>.history/<table>/`; the file being built (catalog `pub`) lists the current file per key in
`segflow_history.files`, and the table is a view over the files listed. A published file keeps
reading the files it lists: a file no longer listed is deleted only after
`history.delete_replaced_after_minutes`, so a reader holding an older file does not lose it.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb

from transforms.engines.base import only_key
from transforms.sql import literal

LISTING_SCHEMA = "segflow_history"


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Session.transaction on the bare connection this module works with."""
    con.execute("begin transaction")
    try:
        yield
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")


def ensure_listing(con: duckdb.DuckDBPyConnection, catalog: str) -> None:
    con.execute(f"create schema if not exists {catalog}.{LISTING_SCHEMA}")
    con.execute(
        f"create table if not exists {catalog}.{LISTING_SCHEMA}.files "
        "(table_name varchar, key_value varchar, path varchar)"
    )
    # BI tools list this schema too: it says what it is.
    listing = f"{catalog}.{LISTING_SCHEMA}.files"
    con.execute(
        f"comment on table {listing} is 'the Parquet file holding each key (as-of date) of each history table'"
    )
    con.execute(
        f"comment on column {listing}.table_name is 'a history table of schema main (a view over its files)'"
    )
    con.execute(f"comment on column {listing}.key_value is 'the as-of date (unique_key) the file holds'")
    con.execute(f"comment on column {listing}.path is 'the file, relative to the <warehouse>.history folder'")


def replace_keys(
    con: duckdb.DuckDBPyConnection,
    folder: Path,
    table: str,
    key: str,
    select: str,
    run_key: str | None,
    expire: Callable[[list[str]], list[str]],
) -> list[str]:
    """The rows of `select` become the rows of their keys (and of `run_key`, with no rows if it
    selects none) in history table pub.<table>; then the keys `expire` picks from all keys are
    dropped. Returns the expired keys.

    The rows go straight into one file, which is listed as is when it holds one key (a build's
    date: the usual case) and split by key otherwise."""
    ensure_listing(con, "pub")
    if _kind(con, table) == "BASE TABLE":  # kept inside the file by an older segflow
        _partition_table(con, folder, table, key)
    whole = _write_file(con, folder, table, select)
    whole_sql = f"read_parquet({literal(str(folder / whole))})"
    keys = {
        row[0] for row in con.execute(f"select distinct cast({key} as varchar) from {whole_sql}").fetchall()
    }
    run_value = con.execute(f"select cast({run_key} as varchar)").fetchone()[0] if run_key else None
    single = only_key(keys, run_value)
    if single is not None:
        written = {single: whole}
    else:
        written = {
            value: _write_file(
                con,
                folder,
                table,
                f"select * from {whole_sql} where cast({key} as varchar) = {literal(value)}",
            )
            for value in sorted(keys | ({run_value} if run_value else set()))
        }
        (folder / whole).unlink()
    with transaction(con):
        _list(con, table, written)
        listed = [
            row[0]
            for row in con.execute(
                f"select key_value from pub.{LISTING_SCHEMA}.files where table_name = ? order by 1", [table]
            ).fetchall()
        ]
        expired = expire(listed)
        con.execute(
            f"delete from pub.{LISTING_SCHEMA}.files where table_name = ? and key_value in (select unnest(?))",
            [table, expired],
        )
        create_view(con, "pub", folder, table)
    return expired


def create_view(con: duckdb.DuckDBPyConnection, catalog: str, folder: Path, table: str) -> None:
    paths = [
        str(folder / row[0])
        for row in con.execute(
            f"select path from {catalog}.{LISTING_SCHEMA}.files where table_name = ? order by key_value",
            [table],
        ).fetchall()
    ]
    con.execute(f"drop view if exists {catalog}.main.{table}")
    if not paths:  # every key dropped: no table until a key is written again
        return
    con.execute(
        f"create view {catalog}.main.{table} as select * from read_parquet("
        f"[{', '.join(literal(path) for path in paths)}], union_by_name = true)"
    )


def listed_tables(con: duckdb.DuckDBPyConnection, catalog: str) -> list[str]:
    if not con.execute(
        "select count(*) from duckdb_tables() where database_name = ? and schema_name = ? and table_name = 'files'",
        [catalog, LISTING_SCHEMA],
    ).fetchone()[0]:
        return []
    return [
        row[0]
        for row in con.execute(
            f"select distinct table_name from {catalog}.{LISTING_SCHEMA}.files order by 1"
        ).fetchall()
    ]


def delete_unlisted(con: duckdb.DuckDBPyConnection, catalog: str, folder: Path, after_seconds: float) -> int:
    """Delete the files `catalog` does not list, once they are older than `after_seconds`
    (readers of an older published file may still read them). Returns how many went."""
    if not folder.exists():
        return 0
    listed = set()
    if listed_tables(con, catalog):
        listed = {
            row[0] for row in con.execute(f"select path from {catalog}.{LISTING_SCHEMA}.files").fetchall()
        }
    cutoff = time.time() - after_seconds
    deleted = 0
    for path in folder.glob("*/*.parquet"):
        if str(path.relative_to(folder)) not in listed and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            deleted += 1
    return deleted


def _kind(con: duckdb.DuckDBPyConnection, table: str) -> str | None:
    row = con.execute(
        "select table_type from information_schema.tables where table_catalog = 'pub' "
        "and table_schema = 'main' and table_name = ?",
        [table],
    ).fetchone()
    return row[0] if row else None


def _write_file(con: duckdb.DuckDBPyConnection, folder: Path, table: str, select: str) -> str:
    """The rows as a new Parquet file (never overwriting one a published file may list); its path
    relative to `folder`."""
    (folder / table).mkdir(parents=True, exist_ok=True)
    relative = f"{table}/{uuid.uuid4().hex}.parquet"
    con.execute(f"copy ({select}) to {literal(str(folder / relative))} (format parquet, compression zstd)")
    return relative


def _list(con: duckdb.DuckDBPyConnection, table: str, written: dict[str, str]) -> None:
    for value, path in written.items():
        con.execute(
            f"delete from pub.{LISTING_SCHEMA}.files where table_name = ? and key_value = ?", [table, value]
        )
        con.execute(f"insert into pub.{LISTING_SCHEMA}.files values (?, ?, ?)", [table, value, path])


def _partition_table(con: duckdb.DuckDBPyConnection, folder: Path, table: str, key: str) -> None:
    """A history table of an older segflow, kept inside the file, moved into files once."""
    keys = [
        row[0]
        for row in con.execute(
            f"select distinct cast({key} as varchar) from pub.main.{table} order by 1"
        ).fetchall()
    ]
    written = {
        value: _write_file(
            con,
            folder,
            table,
            f"select * from pub.main.{table} where cast({key} as varchar) = {literal(value)}",
        )
        for value in keys
    }
    with transaction(con):
        _list(con, table, written)
        con.execute(f"drop table pub.main.{table}")
        create_view(con, "pub", folder, table)
