"""The published tables of a warehouse in a form two engines can be compared in: rows sorted, money
and ratios rounded, load timestamps left out, every value as text."""

from __future__ import annotations

import datetime as dt
import decimal
import math

import pyarrow as pa

from transforms.engines import open_warehouse
from transforms.settings import Settings

# When a row was loaded or exported differs from run to run, and from engine to engine.
RUN_COLUMNS = {"_loaded_at", "loaded_at", "batch", "exported_at", "run_at", "published_at"}


def _cell(value: object) -> str:
    if value is None:
        return "∅"
    if isinstance(value, bool):
        return str(value).lower()
    # A number is compared as a number: a sum of integers is a HUGEINT on DuckDB and numeric on
    # PostgreSQL, the same value either way.
    if isinstance(value, int | float | decimal.Decimal):
        number = float(value)
        if math.isnan(number):
            return "nan"
        return f"{round(number, 6):.6f}"  # cents and ratios, without the last bits of a float sum
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat() if value.tzinfo else value.isoformat()
    return str(value)


def table_rows(table: pa.Table) -> list[tuple[str, ...]]:
    names = [n for n in table.column_names if n not in RUN_COLUMNS]
    columns = [table.column(n).to_pylist() for n in names]
    return sorted(tuple(_cell(v) for v in row) for row in zip(*columns, strict=True)) if columns else []


def published_tables(settings: Settings, skip: set[str] = frozenset()) -> dict[str, tuple[list[str], list]]:
    """Every published table: (its column names, its rows as compared)."""
    with open_warehouse(settings).read() as con:
        tables = {}
        for name in con.published_tables():
            if name in skip:
                continue
            table = con.fetch_arrow(f"select * from pub.{name}")
            tables[name] = ([n for n in table.column_names if n not in RUN_COLUMNS], table_rows(table))
    return tables
