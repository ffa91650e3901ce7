"""Rows between ingest's DuckDB staging session and a PostgreSQL work session (postgres.py), as
CSV through a scratch folder: DuckDB writes and reads CSV several times faster than Arrow's CSV
writer through Python, and COPY reads and writes it on the server side."""

from __future__ import annotations

import os
import time
from pathlib import Path

from transforms.engines.base import Session
from transforms.engines.postgres_types import sql_type_for_duckdb, sql_type_of_duckdb
from transforms.sql import literal

COPY_CHUNK_BYTES = 4 << 20


def hand_over(scratch: Path, staging: Session, work: Session, tables: dict[str, str]) -> None:
    """Each query's rows from the DuckDB staging session into a temp table of the work session."""
    for table, sql in tables.items():
        relation = staging.con.sql(sql)
        columns = ", ".join(
            f'"{name}" {sql_type_of_duckdb(str(column_type))}'
            for name, column_type in zip(relation.columns, relation.types, strict=True)
        )
        work.con.execute(f"drop table if exists {table}")
        work.con.execute(f"create temp table {table} ({columns})")
        copy_in(scratch, staging, work, table, sql)
        work.con.execute(f"analyze {table}")
        staging.execute(f"drop table if exists {table}")


def copy_in(scratch: Path, staging: Session, work: Session, target: str, sql: str) -> None:
    """A DuckDB query's rows into `target` (a table, with its column list) with one COPY."""
    path = _scratch_file(scratch, "staged")
    try:
        staging.execute(f"copy ({sql}) to '{path}' (format csv, header false)")
        with (
            open(path, "rb") as rows,
            work.con.cursor().copy(f"copy {target} from stdin with (format csv)") as copy,
        ):
            while chunk := rows.read(COPY_CHUNK_BYTES):
                copy.write(chunk)
    finally:
        path.unlink(missing_ok=True)


def take_back(scratch: Path, work: Session, staging: Session, tables: list[str]) -> None:
    """Temp tables of the work session into the DuckDB staging session, under the same names
    (COPY ... TO STDOUT, read by DuckDB's CSV reader)."""
    for table in tables:
        types = {name: sql_type_for_duckdb(pg_type) for name, pg_type in work._column_types(table)}
        path = _scratch_file(scratch, table)
        try:
            with (
                open(path, "wb") as out,
                work.con.cursor().copy(f"copy {table} to stdout with (format csv)") as copy,
            ):
                for chunk in copy:
                    out.write(chunk)
            columns = ", ".join(f"{literal(name)}: {literal(sql_type)}" for name, sql_type in types.items())
            staging.execute(
                f"create or replace temp table {table} as select * from read_csv({literal(str(path))}, "
                f"header = false, columns = {{{columns}}}, allow_quoted_nulls = false)"
            )
        finally:
            path.unlink(missing_ok=True)


def _scratch_file(scratch: Path, name: str) -> Path:
    scratch.mkdir(parents=True, exist_ok=True)
    return scratch / f"{name}-{os.getpid()}-{time.monotonic_ns()}.csv"
