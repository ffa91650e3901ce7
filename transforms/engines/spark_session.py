"""A session on a Spark warehouse: segflow's SQL (DuckDB dialect) run by Spark against the table
versions the catalog names, with the statements Spark's Parquet tables lack (transactions, DELETE,
ALTER, INSERT BY NAME) answered by writing new versions and catalog files (see spark.py)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame
from pyspark.sql import SparkSession as SparkDriver
from sqlglot import exp

from transforms.engines.base import Rows, Session
from transforms.engines.spark_sql import generate, hash_bucket_sql, parse
from transforms.engines.spark_store import MissingTable, SparkSQLError, Store, struct
from transforms.errors import SegflowError
from transforms.sql import literal

SCHEMAS = ("raw", "stg", "int", "pub", "meta")
# An insert appends a segment; a table with this many is rewritten as one.
MAX_SEGMENTS = 32


def _arrow_rows(table: pa.Table) -> list[tuple]:
    columns = [column.to_pylist() for column in table.columns]
    return list(zip(*columns, strict=True)) if columns else []


def _value(value: Any) -> exp.Expression:
    """A Python parameter as a SQL literal (in segflow's dialect)."""
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float | Decimal | np.integer | np.floating):
        return exp.Literal.number(value)
    if isinstance(value, datetime):
        kind = "timestamptz" if value.tzinfo else "timestamp"
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), exp.DataType.build(kind))
    if isinstance(value, date):
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.build("date"))
    if isinstance(value, list | tuple):
        return exp.Array(expressions=[_value(item) for item in value])
    return exp.Literal.string(str(value))


def _bind(statements: tuple[exp.Expression, ...], params: list) -> list[exp.Expression]:
    values = iter(params)
    return [
        statement.transform(
            lambda node: _value(next(values)) if isinstance(node, exp.Placeholder) else node, copy=True
        )
        for statement in statements
    ]


def _key(table: exp.Table) -> str:
    return f"{table.db}.{table.name}" if table.db else table.name


def _temporary(statement: exp.Create) -> bool:
    properties = statement.args.get("properties")
    return bool(properties) and any(
        isinstance(prop, exp.TemporaryProperty) for prop in properties.expressions
    )


class SparkSQLSession(Session):
    graph_in_engine = True

    def __init__(self, spark: SparkDriver, store: Store, catalog: dict, writable: bool, reader: bool):
        self.spark = spark
        self.store = store
        self.catalog = catalog
        self.writable = writable
        # A reader names published tables bare, as BI tools do, or as pub.<table>.
        self.reader = reader
        self.temps: dict[str, str | None] = {}  # temp relation -> its scratch folder, if any
        self._views: set[str] = set()
        self._snapshot: dict | None = None
        self.scratch = store.scratch_dir / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"

    # -- the catalog ---------------------------------------------------------------------------
    def _entry(self, key: str) -> dict | None:
        return self.catalog["tables"].get(key)

    def _commit(self) -> None:
        if self._snapshot is None and self.writable:
            self.store.write("work", self.catalog)

    def _set(self, key: str, entry: dict | None) -> None:
        if not self.writable:
            raise SparkSQLError(f"{key}: this session only reads")
        if entry is None:
            self.catalog["tables"].pop(key, None)
        else:
            self.catalog["tables"][key] = entry
        self._commit()

    def _table_frame(self, key: str) -> DataFrame:
        entry = self._entry(key)
        if entry is None:
            raise MissingTable(f"Table with name {key} does not exist")
        if entry["kind"] == "view":
            return self.spark.sql(self._resolved(parse(entry["sql"])[0]))
        schema = struct(entry["schema"])
        paths = [self.store.path(segment["path"]) for segment in entry["segments"]]
        if not paths:
            return self.spark.createDataFrame([], schema)
        return self.spark.read.schema(schema).parquet(*paths)

    def _view_name(self, key: str) -> str:
        """A temp view of the catalog's current version of `key` (one per version)."""
        entry = self._entry(key)
        if entry is None:
            raise MissingTable(f"Table with name {key} does not exist")
        digest = hashlib.md5(json.dumps(entry, sort_keys=True).encode()).hexdigest()[:12]
        name = f"sf__{key.replace('.', '__')}__{digest}"
        if name not in self._views:
            self._table_frame(key).createOrReplaceTempView(name)
            self._views.add(name)
        return name

    def _resolved(self, statement: exp.Expression) -> str:
        """Spark SQL for a query, each catalog table named by the temp view of its version."""
        ctes = {cte.alias for cte in statement.find_all(exp.CTE)}

        def resolve(node: exp.Expression) -> exp.Expression:
            if not isinstance(node, exp.Table) or not isinstance(node.this, exp.Identifier):
                return node
            key = self._catalog_key(node, ctes)
            if key is None:
                return node
            alias = node.args.get("alias") or exp.TableAlias(this=exp.to_identifier(node.name))
            return exp.Table(this=exp.to_identifier(self._view_name(key)), alias=alias.copy())

        return generate(statement.transform(resolve, copy=True))

    def _catalog_key(self, table: exp.Table, ctes: set[str]) -> str | None:
        if table.catalog:
            return None
        if table.db in SCHEMAS:
            return f"{table.db}.{table.name}"
        if table.db == "segflow" and self.reader:  # the published database, as Spark SQL readers name it
            return f"pub.{table.name}"
        if not table.db and self.reader and table.name not in ctes and table.name not in self.temps:
            if f"pub.{table.name}" in self.catalog["tables"]:
                return f"pub.{table.name}"
        return None

    def frame(self, sql: str, params: list | None = None) -> DataFrame:
        statements = parse(sql)
        statement = _bind(statements, params)[-1] if params else statements[-1]
        return self.spark.sql(self._resolved(statement))

    # -- running SQL ---------------------------------------------------------------------------
    def execute(self, sql: str, params: list | None = None):
        statements = _bind(parse(sql), params) if params else parse(sql)
        result = None
        for statement in statements:
            try:
                result = self._run(statement)
            except AnalysisException as exc:
                if "TABLE_OR_VIEW_NOT_FOUND" in str(exc):
                    raise MissingTable(str(exc).splitlines()[0]) from exc
                raise
        return result

    def _run(self, statement: exp.Expression):
        if isinstance(statement, exp.Transaction):
            self._snapshot = json.loads(json.dumps(self.catalog))
            return None
        if isinstance(statement, exp.Commit):
            self._snapshot = None
            self._commit()
            return None
        if isinstance(statement, exp.Rollback):
            if self._snapshot is not None:
                self.catalog = self._snapshot
            self._snapshot = None
            return None
        if isinstance(statement, exp.Column | exp.Command | exp.Comment | exp.Set):
            return None  # checkpoint, comments (BI tools read the models' docs), settings
        if isinstance(statement, exp.Describe):
            frame = self._relation_frame(statement.this)
            return Rows([(f.name, f.dataType.simpleString()) for f in frame.schema.fields], ["name", "type"])
        if isinstance(statement, exp.Create):
            return self._create(statement)
        if isinstance(statement, exp.Drop):
            return self._drop(statement)
        if isinstance(statement, exp.Alter):
            return self._alter(statement)
        if isinstance(statement, exp.Insert):
            return self._insert(statement)
        if isinstance(statement, exp.Delete):
            return self._delete(statement)
        if isinstance(statement, exp.Update):
            raise SparkSQLError("UPDATE has no Spark form here; build the column with a join instead")
        frame = self.spark.sql(self._resolved(statement))
        return Rows(_arrow_rows(self._arrow(frame)), frame.columns)

    def _relation_frame(self, table: exp.Expression) -> DataFrame:
        if isinstance(table, exp.Schema):
            table = table.this
        key = _key(table)
        if key in self.temps:
            return self.spark.table(key)
        found = self._catalog_key(table, set()) if isinstance(table, exp.Table) else None
        return self._table_frame(found or key)

    def _write(self, frame: DataFrame, schema: str, name: str) -> str:
        folder = self.store.new_folder(schema, name)
        frame.write.parquet(self.store.path(folder))
        return folder

    def _create(self, statement: exp.Create):
        target = statement.this.this if isinstance(statement.this, exp.Schema) else statement.this
        key = _key(target)
        kind = statement.args.get("kind", "TABLE").upper()
        temporary = _temporary(statement) or not target.db
        if not temporary and self._entry(key) is not None and not statement.args.get("replace"):
            if statement.args.get("exists"):
                return None
            raise SparkSQLError(f"Table with name {key} already exists")
        if statement.expression is not None:
            frame = self.spark.sql(self._resolved(statement.expression))
        else:
            columns = ", ".join(
                f"cast(null as {column.args['kind'].sql(dialect='spark')}) as `{column.name}`"
                for column in statement.this.expressions
            )
            frame = self.spark.sql(f"select {columns} where false")
        if temporary:
            if kind == "VIEW":
                frame.createOrReplaceTempView(key)
                self.temps[key] = None
                return None
            folder = self.scratch / f"{key}-{uuid.uuid4().hex[:8]}"
            frame.write.parquet(str(folder))
            self.spark.read.parquet(str(folder)).createOrReplaceTempView(key)
            self.temps[key] = str(folder)
            return None
        if kind == "VIEW":
            self._set(key, {"kind": "view", "sql": statement.expression.sql(dialect="duckdb")})
            return None
        folder = self._write(frame, target.db, target.name)
        self._set(key, {"kind": "table", "schema": frame.schema.json(), "segments": [{"path": folder}]})
        return None

    def _drop(self, statement: exp.Drop):
        for table in statement.args.get("tables") or [statement.this]:
            key = _key(table)
            if key in self.temps:
                self.spark.catalog.dropTempView(key)
                folder = self.temps.pop(key)
                if folder:
                    shutil.rmtree(folder, ignore_errors=True)
            elif self._entry(key) is not None:
                self._set(key, None)
            elif not statement.args.get("exists"):
                raise MissingTable(f"Table with name {key} does not exist")
        return None

    def _alter(self, statement: exp.Alter):
        key = _key(statement.this)
        entry = self._entry(key)
        if entry is None:
            raise MissingTable(f"Table with name {key} does not exist")
        for action in statement.args.get("actions") or []:
            if isinstance(action, exp.AlterRename):
                if not self.writable:
                    raise SparkSQLError(f"{key}: this session only reads")
                new_key = f"{statement.this.db}.{action.this.name}"
                self.catalog["tables"][new_key] = self.catalog["tables"].pop(key)
                self._commit()
                key = new_key
            elif isinstance(action, exp.ColumnDef):
                fields = json.loads(entry["schema"])
                if any(field["name"].lower() == action.name.lower() for field in fields["fields"]):
                    if action.args.get("exists"):
                        continue
                    raise SparkSQLError(f"{key} has a column {action.name} already")
                spark_type = action.args["kind"].sql(dialect="spark")
                added = self.spark.sql(f"select cast(null as {spark_type}) as `{action.name}`").schema
                fields["fields"].append(json.loads(added.json())["fields"][0])
                entry = {**entry, "schema": json.dumps(fields)}
                self._set(key, entry)
            else:
                raise SparkSQLError(f"ALTER {action.sql()} has no Spark form here")
        return None

    def _aligned(self, frame: DataFrame, entry: dict, names: list[str] | None, by_name: bool) -> DataFrame:
        """The inserted rows as the table's columns, in its order and types."""
        schema = struct(entry["schema"])
        if by_name:
            given = {name.lower(): name for name in frame.columns}
        else:
            targets = names or [field.name for field in schema.fields]
            frame = frame.toDF(*targets[: len(frame.columns)])
            given = {name.lower(): name for name in frame.columns}
        columns = []
        for field in schema.fields:
            source = given.get(field.name.lower())
            value = f"`{source}`" if source else "null"
            columns.append(f"cast({value} as {field.dataType.simpleString()}) as `{field.name}`")
        view = f"sf__insert_{uuid.uuid4().hex[:8]}"
        frame.createOrReplaceTempView(view)
        return self.spark.sql(f"select {', '.join(columns)} from {view}")

    def _insert(self, statement: exp.Insert):
        target = statement.this.this if isinstance(statement.this, exp.Schema) else statement.this
        names = (
            [column.name for column in statement.this.expressions]
            if isinstance(statement.this, exp.Schema)
            else None
        )
        key = self._catalog_key(target, set()) or _key(target)
        frame = self.spark.sql(self._resolved(statement.expression))
        if key in self.temps:
            raise SparkSQLError(f"{key} is temporary: build it with create temp table ... as")
        entry = self._entry(key)
        if entry is None:
            raise MissingTable(f"Table with name {key} does not exist")
        rows = self._aligned(frame, entry, names, bool(statement.args.get("by_name")))
        if len(entry["segments"]) >= MAX_SEGMENTS:
            # Compacted into one version: reads list one folder again.
            rows = self._table_frame(key).unionByName(rows)
            self._set(key, {**entry, "segments": [{"path": self._write(rows, target.db, target.name)}]})
            return None
        folder = self._write(rows, target.db, target.name)
        self._set(key, {**entry, "segments": [*entry["segments"], {"path": folder}]})
        return None

    def _delete(self, statement: exp.Delete):
        target = statement.this
        key = _key(target)
        entry = self._entry(key)
        if entry is None:
            raise MissingTable(f"Table with name {key} does not exist")
        where = statement.args.get("where")
        if where is None:
            kept = self._table_frame(key).limit(0)
        else:
            keep = (
                exp.select("*")
                .from_(target.copy())
                .where(exp.not_(exp.func("coalesce", exp.Paren(this=where.this.copy()), exp.false())))
            )
            kept = self.spark.sql(self._resolved(keep))
        folder = self._write(kept, target.db, target.name)
        self._set(key, {**entry, "segments": [{"path": folder}]})
        return None

    # -- results -------------------------------------------------------------------------------
    def fetch_arrow(self, sql: str, params: list | None = None) -> pa.Table:
        return self._arrow(self.frame(sql, params))

    def _arrow(self, frame: DataFrame) -> pa.Table:
        """A result as Arrow, its times in the session's time zone (Spark hands them over in UTC;
        the other engines, and what segflow prints, use the business time zone)."""
        table = frame.toArrow()
        timezone = self.spark.conf.get("spark.sql.session.timeZone")
        fields = [
            field.with_type(pa.timestamp(field.type.unit, tz=timezone))
            if pa.types.is_timestamp(field.type) and field.type.tz
            else field
            for field in table.schema
        ]
        return table.cast(pa.schema(fields, metadata=table.schema.metadata))

    def fetch_numpy(self, sql: str) -> dict[str, np.ndarray]:
        table = self.fetch_arrow(sql)
        return {name: table.column(name).to_numpy() for name in table.column_names}

    def fetch_batches(self, sql: str, rows: int) -> Iterator[pa.RecordBatch]:
        return iter(self.fetch_arrow(sql).to_batches(rows))

    @contextlib.contextmanager
    def registered(self, name: str, data: Any) -> Iterator[None]:
        if isinstance(data, pa.Table):
            data = data.to_pandas()
        if not isinstance(data, pd.DataFrame):
            data = pa.Table.from_batches(list(data)).to_pandas()
        self.spark.createDataFrame(data).createOrReplaceTempView(name)
        self.temps[name] = None
        try:
            yield
        finally:
            self.spark.catalog.dropTempView(name)
            self.temps.pop(name, None)

    def register_parquet(self, name: str, path: str) -> None:
        self.spark.read.parquet(path).createOrReplaceTempView(name)
        self.temps[name] = path

    def scan_files(self, name: str, paths: list[str], file_format: str) -> pa.Table | None:
        raise SegflowError("Spark sessions do not read landing files: ingest stages them in DuckDB")

    def drop_scan(self, name: str) -> None:
        return None

    # -- catalog -------------------------------------------------------------------------------
    def columns(self, relation: str) -> list[str]:
        table = exp.to_table(relation)
        return self._relation_frame(table).columns

    def row_count(self, relation: str) -> int:
        """From the Parquet footers of the table's files, without a Spark job."""
        if relation in self.temps and self.temps[relation]:
            folders = [self.temps[relation]]
        elif relation in self.temps or self._entry(relation) is None:
            return super().row_count(relation)
        else:
            folders = [self.store.path(segment["path"]) for segment in self._entry(relation)["segments"]]
        return sum(
            pq.ParquetFile(file).metadata.num_rows
            for folder in folders
            for file in Path(folder).glob("*.parquet")
        )

    def relation_kind(self, schema: str, name: str) -> str | None:
        entry = self._entry(f"{schema}.{name}")
        if entry is None:
            return None
        return "VIEW" if entry["kind"] == "view" else "BASE TABLE"

    def temp_table_exists(self, name: str) -> bool:
        return name in self.temps

    def published_tables(self) -> list[str]:
        return sorted(key.split(".", 1)[1] for key in self.catalog["tables"] if key.startswith("pub."))

    def hash_bucket(self, value_sql: str, buckets: int) -> str:
        return hash_bucket_sql(value_sql, buckets)

    def replace_keyed_rows(self, relation, key, select, run_key, expire) -> list[str]:
        """A history keeps a segment per key (as-of date): a run writes its keys' rows once and drops
        the segments of the keys it replaces or expires, whatever the length of the history."""
        schema, name = relation.split(".", 1)
        frame = self.spark.sql(self._resolved(parse(select)[-1]))
        folder = self._write(frame, schema, name)
        written = self.spark.read.parquet(self.store.path(folder))
        batch_keys = sorted(
            row[0] for row in written.selectExpr(f"cast(`{key}` as string)").distinct().collect()
        )
        replaced = set(batch_keys)
        if run_key:
            replaced.add(self.spark.sql(f"select cast({run_key} as string)").collect()[0][0])
        segment = {"path": folder, "keys": batch_keys}
        entry = self._entry(relation)
        if entry is None:
            self._set(relation, {"kind": "table", "schema": written.schema.json(), "segments": [segment]})
            return []
        fields = json.loads(entry["schema"])
        present = {field["name"] for field in fields["fields"]}
        fields["fields"] += [
            json.loads(field.json()) for field in written.schema.fields if field.name not in present
        ]
        segments = [self._keyed(relation, entry, seg, key) for seg in entry["segments"]]
        keys = sorted({k for seg in segments for k in seg["keys"] if k not in replaced} | replaced)
        expired = expire(keys)
        dropped = replaced | set(expired)
        kept = []
        for seg in segments:
            remaining = [k for k in seg["keys"] if k not in dropped]
            if len(remaining) == len(seg["keys"]):
                kept.append(seg)
            elif remaining:
                kept.append(self._rewrite_segment(relation, entry, seg, key, remaining))
        self._set(relation, {**entry, "schema": json.dumps(fields), "segments": [*kept, segment]})
        return [k for k in expired if k not in replaced]

    def _keyed(self, relation: str, entry: dict, segment: dict, key: str) -> dict:
        if "keys" in segment:
            return segment
        frame = self.spark.read.schema(struct(entry["schema"])).parquet(self.store.path(segment["path"]))
        keys = sorted(row[0] for row in frame.selectExpr(f"cast(`{key}` as string)").distinct().collect())
        return {**segment, "keys": keys}

    def _rewrite_segment(self, relation: str, entry: dict, segment: dict, key: str, keys: list[str]) -> dict:
        schema, name = relation.split(".", 1)
        frame = self.spark.read.schema(struct(entry["schema"])).parquet(self.store.path(segment["path"]))
        wanted = ", ".join(literal(k) for k in keys)
        folder = self._write(frame.where(f"cast(`{key}` as string) in ({wanted})"), schema, name)
        return {"path": folder, "keys": keys}

    # -- data quality --------------------------------------------------------------------------
    @contextlib.contextmanager
    def dq_sql_source(self) -> Iterator[dict]:
        """GE's Spark DataFrame engine: each table's checks validate a DataFrame of this session."""
        yield {"type": "spark"}

    def dq_batch(self, source, name: str, table: str, sql: str):
        asset = source.add_dataframe_asset(name)
        return asset.add_batch_definition_whole_dataframe("all").get_batch(
            batch_parameters={"dataframe": self.frame(sql)}
        )

    def close(self) -> None:
        for view in [*self._views, *self.temps]:
            self.spark.catalog.dropTempView(view)
        shutil.rmtree(self.scratch, ignore_errors=True)
