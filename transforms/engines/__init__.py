"""The engine boundary: everything that differs by warehouse engine lives in this package.

`open_warehouse(settings)` picks the engine from the warehouse URL; above this package, code speaks
only to the interface in `base.py` and catches the error kinds below, never a driver's own.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from transforms.engines import duckdb as duckdb_engine
from transforms.engines import postgres as postgres_engine
from transforms.engines.base import Session, Warehouse
from transforms.errors import SegflowError
from transforms.settings import Settings

DatabaseError = duckdb_engine.DATABASE_ERRORS + postgres_engine.DATABASE_ERRORS
OutOfMemoryError = duckdb_engine.OUT_OF_MEMORY_ERRORS + postgres_engine.OUT_OF_MEMORY_ERRORS
MissingRelationError = duckdb_engine.MISSING_RELATION_ERRORS + postgres_engine.MISSING_RELATION_ERRORS
NOT_YET_SERVED = {"spark": "Apache Spark", "sc": "Spark Connect"}
URLS = "duckdb:///PATH or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB"

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
    engine = NOT_YET_SERVED.get(scheme.split("+")[0])
    if engine:
        raise SegflowError(f"warehouse URL '{url}': {engine} is not served by this version yet; use {URLS}")
    raise SegflowError(f"warehouse URL '{url}': unknown engine '{scheme}'; use {URLS}")
