"""History tables on PostgreSQL: one table per history table and key (as-of date), written once
into schema `segflow_history` and listed by a view.

A publish moves the work tables into the published schema, but a history table kept whole would
be copied back by every build that adds a date to it: a copy that grows with every date kept
(bench/RESULTS.md). Here each date's rows are written once, as a part table; `pub.<table>` is a view
over the parts `segflow_history.parts` lists, and each publish makes the same view in the published
schema. A view keeps reading the parts it was made on (PostgreSQL binds views to tables), so a
part no longer listed is dropped only once no view reads it: the drop is tried under a short
lock_timeout after each merge and gives way to a published view or a reader still using it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from transforms.engines.base import only_key
from transforms.sql import literal

SCHEMA = "segflow_history"
LISTING = f"{SCHEMA}.parts"
# What BI tools and publish read on the view in pub: it lists parts, it is not a copy of a table.
MARK = "segflow: a history table, one part table per as_of_date in schema segflow_history"
LOCK_TIMEOUT_MS = 200


def ensure_listing(con: psycopg.Connection) -> None:
    con.execute(f"create schema if not exists {SCHEMA}")
    con.execute(f"create table if not exists {LISTING} (table_name text, key_value text, part text)")


def is_listed(con: psycopg.Connection, table: str) -> bool:
    return (
        con.execute(f"select 1 from {LISTING} where table_name = %s limit 1", [table]).fetchone() is not None
    )


def history_views(con: psycopg.Connection) -> list[str]:
    """The work views (schema pub) that are history tables."""
    return [
        row[0]
        for row in con.execute(
            "select c.relname from pg_class as c join pg_namespace as n on n.oid = c.relnamespace "
            "where n.nspname = 'pub' and c.relkind = 'v' and obj_description(c.oid, 'pg_class') = %s "
            "order by 1",
            [MARK],
        ).fetchall()
    ]


def write_part(execute: Callable[[str], object], select: str) -> str:
    """The rows of `select` (segflow SQL, run through the session) as a new part table; its name."""
    part = f"part_{uuid.uuid4().hex}"
    execute(f"create table {SCHEMA}.{part} as {select}")
    return part


def keys_of(con: psycopg.Connection, part: str, key: str) -> set[str]:
    return {row[0] for row in con.execute(f'select distinct cast("{key}" as text) from {SCHEMA}.{part}')}


def split_part(con: psycopg.Connection, part: str, key: str, values: set[str]) -> dict[str, str]:
    """A part holding several keys rewritten as one part per key (the part itself dropped)."""
    written = {}
    for value in sorted(values):
        own = f"part_{uuid.uuid4().hex}"
        con.execute(
            f"create table {SCHEMA}.{own} as select * from {SCHEMA}.{part} "
            f'where cast("{key}" as text) is not distinct from %s',
            [value],
        )
        written[value] = own
    con.execute(f"drop table {SCHEMA}.{part}")
    return written


def list_parts(con: psycopg.Connection, table: str, written: dict[str, str]) -> list[str]:
    """Record the parts of these keys (replacing the keys' earlier parts); every listed key, sorted."""
    for value, part in written.items():
        con.execute(f"delete from {LISTING} where table_name = %s and key_value = %s", [table, value])
        con.execute(f"insert into {LISTING} values (%s, %s, %s)", [table, value, part])
    return [
        row[0]
        for row in con.execute(
            f"select key_value from {LISTING} where table_name = %s order by 1", [table]
        ).fetchall()
    ]


def unlist(con: psycopg.Connection, table: str, keys: list[str]) -> None:
    if keys:
        con.execute(f"delete from {LISTING} where table_name = %s and key_value = any(%s)", [table, keys])


def view_sql(con: psycopg.Connection, table: str) -> str | None:
    """The query over the listed parts of a history table (None: no part listed). A column a later
    part added reads as null in the earlier parts, as it did in a table that gained the column."""
    parts = [
        row[0]
        for row in con.execute(
            f"select part from {LISTING} where table_name = %s order by key_value", [table]
        ).fetchall()
    ]
    if not parts:
        return None
    columns: dict[str, dict[str, str]] = {}
    for part in parts:
        columns[part] = dict(
            con.execute(
                "select attname, format_type(atttypid, atttypmod) from pg_attribute "
                "where attrelid = to_regclass(%s) and attnum > 0 and not attisdropped order by attnum",
                [f"{SCHEMA}.{part}"],
            ).fetchall()
        )
    names: dict[str, str] = {}
    for part in reversed(parts):  # the newest part's column order first
        for name, sql_type in columns[part].items():
            names.setdefault(name, sql_type)
    selects = []
    for part in parts:
        values = [
            f'"{name}"' if name in columns[part] else f'cast(null as {sql_type}) as "{name}"'
            for name, sql_type in names.items()
        ]
        selects.append(f"select {', '.join(values)} from {SCHEMA}.{part}")
    return " union all ".join(selects)


def create_view(con: psycopg.Connection, relation: str, sql: str | None) -> None:
    con.execute(f"drop view if exists {relation}")
    if sql is None:  # every key dropped: no table until a key is written again
        return
    con.execute(f"create view {relation} as {sql}")
    con.execute(f"comment on view {relation} is {literal(MARK)}")


def drop_unlisted(con: psycopg.Connection) -> None:
    """Drop the parts no longer listed that no view reads any more (a published view, until the
    publish that replaced it drops it; a reader's query)."""
    listed = {row[0] for row in con.execute(f"select part from {LISTING}").fetchall()}
    parts = [
        row[0]
        for row in con.execute(
            "select tablename from pg_tables where schemaname = %s and tablename like 'part\\_%%'", [SCHEMA]
        ).fetchall()
    ]
    for part in parts:
        if part in listed:
            continue
        try:
            with con.transaction():
                con.execute(f"set local lock_timeout = {LOCK_TIMEOUT_MS}")
                con.execute(f"drop table {SCHEMA}.{part}")
        except (pg_errors.DependentObjectsStillExist, pg_errors.LockNotAvailable, pg_errors.DeadlockDetected):
            pass


def replace_keys(
    session: Any,
    table: str,
    key: str,
    select: str,
    run_key: str | None,
    expire: Callable[[list[str]], list[str]],
) -> list[str]:
    """Session.replace_keyed_rows for history table pub.<table> of a PostgreSQL work session: the
    rows of `select` become the parts of their keys (and of `run_key`, with no rows if it selects
    none); then the keys `expire` picks are unlisted. Returns the expired keys."""
    con = session.con
    ensure_listing(con)
    if not is_listed(con, table) and session.table_exists("pub", table):
        _split_table(session, table, key)  # kept whole by an older segflow
    part = write_part(session.execute, select)
    keys = keys_of(con, part, key)
    run_value = session.scalar(f"select cast({run_key} as varchar)") if run_key else None
    single = only_key(keys, run_value)
    if single is not None:
        written = {single: part}
    else:
        written = split_part(con, part, key, keys | ({run_value} if run_value else set()))
    with session.transaction():
        expired = expire(list_parts(con, table, written))
        unlist(con, table, expired)
        create_view(con, f"pub.{table}", view_sql(con, table))
    drop_unlisted(con)
    return expired


def _split_table(session: Any, table: str, key: str) -> None:
    """A history table kept whole (or the view of its published copy) split into parts, once."""
    con = session.con
    part = write_part(session.execute, f"select * from pub.{table}")
    keys = keys_of(con, part, key)
    written = {keys.pop(): part} if len(keys) == 1 else split_part(con, part, key, keys)
    with session.transaction():
        list_parts(con, table, written)
        kind = "view" if session.relation_kind("pub", table) == "VIEW" else "table"
        con.execute(f"drop {kind} pub.{table}")
        create_view(con, f"pub.{table}", view_sql(con, table))
