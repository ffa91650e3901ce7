"""The engine boundary: everything that differs by warehouse engine lives in this package.

`open_warehouse(settings)` picks the engine from the warehouse URL; above this package, code speaks
only to the interface in `base.py` and catches the error kinds below, never a driver's own.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from transforms.engines import duckdb as duckdb_engine
from transforms.engines import postgres as postgres_engine
from transforms.engines import spark as spark_engine
from transforms.engines.base import Session, Warehouse
from transforms.errors import SegflowError
from transforms.settings import Settings

ENGINES = (duckdb_engine, postgres_engine, spark_engine)
DatabaseError = sum((engine.DATABASE_ERRORS for engine in ENGINES), ())
OutOfMemoryError = sum((engine.OUT_OF_MEMORY_ERRORS for engine in ENGINES), ())
MissingRelationError = sum((engine.MISSING_RELATION_ERRORS for engine in ENGINES), ())
URLS = "duckdb:///PATH, postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB, spark:///PATH or sc://HOST:PORT"

__all__ = [
    "DatabaseError",
    "MissingRelationError",
    "OutOfMemoryError",
    "Session",
    "Warehouse",
    "open_warehouse",
]


def open_warehouse(settings: Settings) -> Warehouse:
    url = settings.warehouse_url
    scheme = urlparse(url).scheme
    if not scheme:
        raise SegflowError(
            f"warehouse '{url}' is a path, not a URL: use duckdb:///{Path(url).expanduser().resolve()}"
        )
    if scheme == "duckdb":
        return duckdb_engine.DuckDBWarehouse(settings)
    if scheme in ("postgresql", "postgresql+psycopg", "postgres"):
        return postgres_engine.PostgresWarehouse(settings)
    if scheme in ("spark", "sc"):
        return spark_engine.SparkWarehouse(settings)
    raise SegflowError(f"warehouse URL '{url}': unknown engine '{scheme}'; use {URLS}")
