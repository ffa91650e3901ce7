"""Types between PostgreSQL, Arrow and DuckDB, for the PostgreSQL engine (postgres.py)."""

from __future__ import annotations

import decimal

import psycopg
import psycopg.adapt
import pyarrow as pa

DUCKDB_TYPES = {
    "VARCHAR": "text",
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "SMALLINT": "smallint",
    "HUGEINT": "numeric",
    "DOUBLE": "double precision",
    "FLOAT": "real",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
}

POSTGRES_TYPES_IN_DUCKDB = {
    "text": "VARCHAR",
    "character varying": "VARCHAR",
    "bigint": "BIGINT",
    "integer": "INTEGER",
    "smallint": "SMALLINT",
    "double precision": "DOUBLE",
    "real": "FLOAT",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp without time zone": "TIMESTAMP",
    "timestamp with time zone": "TIMESTAMP WITH TIME ZONE",
}

# PostgreSQL type oids -> Arrow types, for results; anything else arrives as text.
ARROW_TYPES = {
    16: pa.bool_(),
    20: pa.int64(),
    21: pa.int16(),
    23: pa.int32(),
    25: pa.string(),
    1043: pa.string(),
    700: pa.float32(),
    701: pa.float64(),
    1082: pa.date32(),
    1114: pa.timestamp("us"),
}


def arrow_type(column: psycopg.Column, timezone: str) -> pa.DataType | None:
    """None: let Arrow infer it from the values (numeric without a declared precision)."""
    if column.type_code == 1700:
        precision, scale = column.precision, column.scale
        return pa.decimal128(precision, scale or 0) if precision else None
    if column.type_code == 1184:
        return pa.timestamp("us", tz=timezone)
    return ARROW_TYPES.get(column.type_code, pa.string())


def sql_type(arrow_type: pa.DataType) -> str:
    """The column type a loaded Arrow column gets."""
    if pa.types.is_dictionary(arrow_type):
        return sql_type(arrow_type.value_type)
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_integer(arrow_type):
        return (
            "bigint" if arrow_type.bit_width > 32 or pa.types.is_unsigned_integer(arrow_type) else "integer"
        )
    if pa.types.is_floating(arrow_type):
        return "double precision"
    if pa.types.is_decimal(arrow_type):
        return f"numeric({arrow_type.precision}, {arrow_type.scale})"
    if pa.types.is_date(arrow_type):
        return "date"
    if pa.types.is_timestamp(arrow_type):
        return "timestamptz" if arrow_type.tz else "timestamp"
    return "text"


class NumericLoader(psycopg.adapt.Loader):
    """numeric values as DuckDB's drivers return the same results: a whole number without decimal
    places (a sum or count of integers, a bigint in DuckDB) as int, others as Decimal."""

    def load(self, data) -> int | decimal.Decimal:
        text = bytes(data).decode()
        if "." in text or not text.lstrip("-").isdigit():
            return decimal.Decimal(text)
        return int(text)


def sql_type_of_duckdb(duckdb_type: str) -> str:
    """The PostgreSQL column type for a DuckDB one (what ingest's typing produces)."""
    upper = duckdb_type.upper()
    if upper.startswith("DECIMAL"):
        return upper.replace("DECIMAL", "numeric")
    return DUCKDB_TYPES.get(upper, "text")


def sql_type_for_duckdb(postgres_type: str) -> str:
    """The DuckDB column type for a PostgreSQL one (as format_type names it), for rows taken back
    into ingest's DuckDB staging session."""
    if postgres_type.startswith("numeric("):
        return postgres_type.replace("numeric", "DECIMAL")
    return POSTGRES_TYPES_IN_DUCKDB.get(postgres_type, "VARCHAR")


def copyable(column: pa.Array) -> pa.Array:
    """A column Arrow's CSV writer can write: dictionaries decoded to their values."""
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    return column


def unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return unique
