"""Great Expectations' SQL engine on DuckDB: the DB-API connection duckdb-engine gets."""

from __future__ import annotations

import atexit
import sys

import duckdb
import duckdb_engine


@atexit.register
def _free_duckdb_type_constants() -> None:
    """With duckdb-engine imported, DuckDB 2.0's module-level type constants (duckdb.sqltypes and
    its aliases) outlive the DuckDB extension at interpreter exit, which then prints dozens of
    "nanobind: leaked instance" lines on stderr after every command's own output. Freeing them
    before the interpreter tears modules down keeps stderr to what the command said."""
    for name, module in list(sys.modules.items()):
        if module is not None and name.split(".")[0] in ("duckdb", "_duckdb"):
            for attribute, value in list(vars(module).items()):
                if isinstance(value, duckdb.sqltypes.DuckDBPyType):
                    delattr(module, attribute)


def ge_connection(holder: list[duckdb.DuckDBPyConnection]):
    """A DB-API connection for Great Expectations' SQL engine (through duckdb-engine) over the cursor
    in `holder`, a cursor of a session's connection.

    - GE reads a query's rows after closing the connection it ran it on, and DuckDB drops a result
      when its connection closes or runs anything else (even the rollback SQLAlchemy sends on
      close): this connection ignores both.
    - GE and SQLAlchemy keep objects of a query (engines, results, cached result processors keyed
      by the DB-API type code) for the life of the process, and a DuckDB object still alive at exit
      is reported as leaked: these wrappers reach the cursor only through `holder`, which the
      session empties, and describe types by name.
    """

    class Cursor(duckdb_engine.CursorWrapper):
        def __init__(self, connection) -> None:
            self._CursorWrapper__connection_wrapper = connection

        @property
        def _CursorWrapper__c(self):
            return holder[0]

        @property
        def description(self):
            described = holder[0].description
            return (
                None if described is None else [(name, str(code), *rest) for name, code, *rest in described]
            )

    class Connection(duckdb_engine.ConnectionWrapper):
        def __init__(self) -> None:
            self.notices = []

        @property
        def _ConnectionWrapper__c(self):
            return holder[0]

        def cursor(self) -> Cursor:
            return Cursor(self)

        def close(self) -> None:
            pass

        def rollback(self) -> None:
            pass

    return Connection()
