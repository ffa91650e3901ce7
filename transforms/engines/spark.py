"""The warehouse on Apache Spark (`spark:///PATH`): a local Spark session whose tables live under PATH
as Parquet folders, with segflow's own catalog beside them.

Every table version is a folder written once and never changed (`tables/<schema>/<table>/<id>`); a
table is a list of such folders (segments) and its schema. Two catalog files name the current
versions: `catalog/work.json` (what segflow writes: raw, stg, int, meta and the next published
tables, pub) and `catalog/published.json` (what readers see). A change is a new folder plus a new
catalog file renamed over the old one, so:
- a transaction (several statements) is one rename of work.json, and a crash before it leaves the
  catalog as it was; DELETE and ALTER write the table's new version beside the old one;
- publishing is one rename of published.json: the whole set of tables changes at once, and nothing
  is copied (the next tables are written once, where readers then find them);
- a reader reads the catalog once and keeps the versions it named; folders no catalog names are
  deleted `history.delete_replaced_after_minutes` after they were replaced, never under a reader.
Histories keep a segment per as-of date, so a build rewrites only the dates it builds.

No Hive metastore: its embedded Derby database admits one process at a time, and readers must never
wait on a build. For Spark SQL readers each publish also writes `catalog/published.sql`, the views of
database `segflow` over the versions just published (see published_views_sql). Landing files are read
and typed by DuckDB in process (the same reader, rejects and line numbers as the embedded warehouse)
and handed to Spark as Parquet.

`sc://HOST:PORT` runs the same on a Spark Connect server (any cluster): each segflow session is a
session of that server, and the folder is `warehouse.spark_path`, which the server's driver and
executors and the machine running segflow see at the same path (a shared mount): segflow keeps the
catalog files and writes the staged landing files there, Spark the tables.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import os
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

import pyarrow.parquet as pq
from py4j.protocol import Py4JError
from pyspark.errors import PySparkException
from pyspark.sql import SparkSession as SparkDriver
from sqlglot import exp

from transforms.engines.base import LOCK_WAIT_SECONDS, Session, Warehouse, another_writer
from transforms.engines.duckdb import scratch_session
from transforms.engines.spark_session import SparkSQLSession
from transforms.engines.spark_store import MissingTable, SparkSQLError, Store, struct
from transforms.errors import SegflowError
from transforms.failpoints import failpoint
from transforms.settings import Settings
from transforms.sql import literal
from transforms.table_docs import table_doc

LOG_CONFIG = Path(__file__).with_name("spark_log4j2.properties")


DATABASE_ERRORS: tuple[type[BaseException], ...] = (SparkSQLError, PySparkException, Py4JError)
OUT_OF_MEMORY_ERRORS: tuple[type[BaseException], ...] = ()
MISSING_RELATION_ERRORS: tuple[type[BaseException], ...] = (MissingTable,)

_DRIVERS: dict[str, SparkDriver] = {}
CONNECT_TIMEOUT_SECONDS = 10


def is_connect(url: str) -> bool:
    return urlparse(url).scheme == "sc"


def spark_root_from_url(url: str) -> Path:
    raw = url[len("spark://") :] if url.startswith("spark://") else urlparse(url).path
    raw = raw.split("?", 1)[0]
    if not raw.strip("/"):
        raise SegflowError(f"warehouse URL '{url}': name a folder, e.g. spark:///srv/segflow")
    return Path(raw).expanduser().resolve()


def spark_root(settings: Settings) -> Path:
    """The folder of the tables and catalog: the URL's path, or for Spark Connect warehouse.spark_path."""
    url = settings.warehouse_url
    if not is_connect(url):
        return spark_root_from_url(url)
    chosen = str(settings.get("warehouse.spark_path") or "").strip()
    if not chosen:
        raise SegflowError(
            f"warehouse URL '{connect_address(url)}' needs warehouse.spark_path in "
            f"{settings.config_dir / 'settings.yml'}: the folder where segflow keeps its tables, seen at "
            "the same path by the Spark Connect server and by this machine"
        )
    if not Path(chosen).is_absolute():
        raise SegflowError(
            f"{settings.config_dir / 'settings.yml'}: warehouse.spark_path '{chosen}' must be an absolute "
            "path (the Spark Connect server resolves it, not this folder)"
        )
    return Path(chosen)


def session_conf(settings: Settings) -> dict[str, str]:
    """The Spark settings of every segflow session, local or Spark Connect: SQL settings a session
    may change, then the brand's own (warehouse.spark_conf) over them."""
    return {
        "spark.sql.shuffle.partitions": str(settings.get("warehouse.spark_shuffle_partitions")),
        "spark.sql.parquet.compression.codec": "zstd",
        # A table of many segments is listed by the driver, not by a job per read.
        "spark.sql.sources.parallelPartitionDiscovery.threshold": "100000",
        **{str(name): str(value) for name, value in (settings.get("warehouse.spark_conf") or {}).items()},
    }


def connect_address(url: str) -> str:
    """The URL without its parameters (a token must not reach messages or logs)."""
    return f"sc://{urlparse(url).netloc}"


def connect_session(settings: Settings) -> SparkDriver:
    """A new session of the Spark Connect server. Its reachability is checked first: the client
    retries a lost server for ten minutes (right for a job already running, not for a wrong address)."""
    url = settings.warehouse_url
    parsed = urlparse(url)
    host, port = parsed.hostname or "localhost", parsed.port or 15002
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_SECONDS).close()
    except OSError as exc:
        raise SegflowError(
            f"could not reach the Spark Connect server at {connect_address(url)} ({exc.strerror or exc}); "
            "is it started (start-connect-server.sh) and listening there?"
        ) from exc
    spark = SparkDriver.builder.remote(url).create()
    for name, value in session_conf(settings).items():
        try:
            spark.conf.set(name, value)
        except PySparkException as exc:
            spark.stop()
            raise SegflowError(
                f"{settings.config_dir / 'settings.yml'}: warehouse.spark_conf {name} cannot be set in a session of "
                f"{connect_address(url)} (a setting of the server: give it where the server starts)"
            ) from exc
    return spark


def _stop_at_exit(spark: SparkDriver) -> None:
    """Stopped before logging shuts down, and py4j quiet: its threads log their goodbye and their
    failed sends to the stopped JVM onto streams closed by then ("--- Logging error ---" at exit)."""
    logging.getLogger("py4j").setLevel(logging.CRITICAL)
    spark.stop()


def driver(settings: Settings, root: Path) -> SparkDriver:
    """The process's Spark session (one JVM per process; settings read when it starts)."""
    if "local" in _DRIVERS:
        return _DRIVERS["local"]
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    java_options = f"-Dlog4j2.configurationFile={LOG_CONFIG} -Dderby.system.home={root / '.spark'}"
    builder = (
        SparkDriver.builder.appName("segflow")
        .master(str(settings.get("warehouse.spark_master")))
        .config("spark.driver.memory", str(settings.get("warehouse.spark_driver_memory")))
        .config("spark.driver.extraJavaOptions", java_options)
        .config("spark.sql.catalogImplementation", "in-memory")
        .config("spark.sql.warehouse.dir", str(root / ".spark" / "warehouse"))
        .config("spark.local.dir", str(root / ".spark" / "tmp"))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
    )
    for name, value in session_conf(settings).items():
        builder = builder.config(name, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    atexit.register(_stop_at_exit, spark)
    _DRIVERS["local"] = spark
    return spark


def view_comments(table: str, columns: list[str]) -> str:
    """The column list and COMMENT of a view, from the models' docs (what BI tools show); empty
    for an undocumented table."""
    doc = table_doc(table)
    if doc is None:
        return ""

    def text(value: str) -> str:
        return exp.Literal.string(value).sql(dialect="spark")

    listed = ", ".join(
        f"`{column}`" + (f" COMMENT {text(doc.column(column))}" if doc.column(column) else "")
        for column in columns
    )
    return f" ({listed}) COMMENT {text(doc.grain)}"


def published_views_sql(store: Store, tables: dict) -> str:
    """Spark SQL that makes database `segflow` name the published tables: one view per table over
    its version's Parquet folders. A reader runs it in any Spark session (`spark-sql -f`, or
    statement by statement); the views keep reading those versions until they are replaced and
    deleted, so a reader runs the file again after each publish."""
    statements = ["CREATE DATABASE IF NOT EXISTS segflow"]
    for key, entry in sorted(tables.items()):
        fields = struct(entry["schema"]).fields
        parts = []
        for segment in entry["segments"]:
            folder = Path(store.path(segment["path"]))
            files = sorted(folder.glob("*.parquet"))
            if not files:
                continue
            present = set(pq.read_schema(files[0]).names)  # a segment written before an added column
            columns = ", ".join(
                f"CAST({f'`{field.name}`' if field.name in present else 'NULL'} AS "
                f"{field.dataType.simpleString()}) AS `{field.name}`"
                for field in fields
            )
            parts.append(f"SELECT {columns} FROM parquet.`{folder}`")
        if not parts:
            columns = ", ".join(f"CAST(NULL AS {f.dataType.simpleString()}) AS `{f.name}`" for f in fields)
            parts.append(f"SELECT {columns} WHERE false")
        name = key.split(".", 1)[1]
        statements.append(
            f"CREATE OR REPLACE VIEW segflow.`{name}`{view_comments(name, [f.name for f in fields])} AS\n"
            + "\nUNION ALL\n".join(parts)
        )
    header = (
        "-- The tables segflow published (catalog/published.json) as database segflow, for Spark SQL:\n"
        "-- spark-sql -f published.sql, or each statement through spark.sql(). Run it again after each\n"
        "-- publish: replaced versions are deleted history.delete_replaced_after_minutes later.\n"
    )
    return header + ";\n\n".join(statements) + ";\n"


class SparkWarehouse(Warehouse):
    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.connect = is_connect(settings.warehouse_url)
        self.root = spark_root(settings)
        self.store = Store(self.root)

    @property
    def location(self) -> str:
        if self.connect:
            return f"Spark warehouse {self.root} on {connect_address(self.settings.warehouse_url)}"
        return f"Spark warehouse {self.root}"

    @property
    def readers(self) -> str:
        return f"Spark SQL: run {self.store.catalog_dir / 'published.sql'}, then read database segflow"

    @property
    def files_dir(self) -> Path:
        chosen = self.settings.get("warehouse.files_dir")
        return Path(chosen).expanduser().resolve() if chosen else self.root

    def _spark(self) -> SparkDriver:
        if self.connect:
            spark = connect_session(self.settings)
        else:
            spark = driver(self.settings, self.root).newSession()
        spark.conf.set("spark.sql.session.timeZone", self.settings.timezone)
        return spark

    def _release(self, session: SparkSQLSession) -> None:
        session.close()
        if self.connect:  # the server keeps a session's state until it is released
            session.spark.stop()

    @contextlib.contextmanager
    def work(self, doing: str = "segflow", outcome: str = "published nothing") -> Iterator[SparkSQLSession]:
        self.root.mkdir(parents=True, exist_ok=True)
        lock = open(self.root / ".writer.lock", "a+")  # noqa: SIM115 (held for the block)
        try:
            deadline = time.monotonic() + LOCK_WAIT_SECONDS
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError as exc:
                    if time.monotonic() > deadline:
                        raise another_writer(self.location) from exc
                    time.sleep(0.5)
            session = SparkSQLSession(
                self._spark(), self.store, self.store.read("work"), writable=True, reader=False
            )
            try:
                yield session
            finally:
                self._release(session)
        finally:
            lock.close()

    def staging(self, work: Session) -> contextlib.AbstractContextManager[Session]:
        """Files are typed in DuckDB in process; hand_over moves the result."""
        return scratch_session(self.settings, self.files_dir / ".duckdb_tmp")

    def hand_over(self, staging: Session, work: Session, tables: dict[str, str]) -> None:
        work.scratch.mkdir(parents=True, exist_ok=True)
        for table, sql in tables.items():
            path = work.scratch / f"{table}-{uuid.uuid4().hex[:8]}.parquet"
            staging.execute(f"copy ({sql}) to {literal(str(path))} (format parquet)")
            work.register_parquet(table, str(path))
            staging.execute(f"drop table if exists {table}")

    def take_back(self, work: Session, staging: Session, tables: list[str]) -> None:
        for table in tables:
            staging.load_temp_table(table, work.fetch_arrow(f"select * from {table}"))

    def append_rows(
        self, staging: Session, work: Session, relation: str, columns: list[str], sql: str
    ) -> None:
        self.hand_over(staging, work, {"staged_rows": sql})
        try:
            work.execute(
                f"insert into {relation} ({', '.join(columns)}) select {', '.join(columns)} from staged_rows"
            )
        finally:
            work.execute("drop table if exists staged_rows")

    def publish(self, session: Session, tables: list[str] | None = None) -> dict[str, str]:
        work_tables = {
            key.split(".", 1)[1]: entry
            for key, entry in session.catalog["tables"].items()
            if key.startswith("pub.") and entry["kind"] == "table" and "__" not in key
        }
        published = self.store.read("published")["tables"]
        if tables is None or not published:
            new = {f"pub.{name}": entry for name, entry in work_tables.items()}
            modes = {
                name: "appended" if any("keys" in seg for seg in entry["segments"]) else "built"
                for name, entry in work_tables.items()
            }
        else:
            new = dict(published)
            fresh = [table for table in tables if table in work_tables]
            for table in fresh:
                new[f"pub.{table}"] = work_tables[table]
            modes = {key.split(".", 1)[1]: "carried" for key in published}
            modes.update(dict.fromkeys(fresh, "built"))
        failpoint("publish:before_swap")
        self.store.write("published", {"tables": new, "published_at": datetime.now().isoformat()})
        failpoint("publish:after_swap")
        self.store.replace_file("published.sql", published_views_sql(self.store, new))
        minutes = float(self.settings.get("history.delete_replaced_after_minutes"))
        self.store.collect_garbage(minutes * 60)
        return dict(sorted(modes.items()))

    @contextlib.contextmanager
    def read(self) -> Iterator[SparkSQLSession]:
        catalog = self.store.read("published")
        if not catalog["tables"]:
            raise SegflowError(
                f"{self.location}: nothing published yet; run `segflow ingest` and `segflow build` first"
            )
        session = SparkSQLSession(self._spark(), self.store, catalog, writable=False, reader=True)
        try:
            yield session
        finally:
            self._release(session)

    @contextlib.contextmanager
    def read_loaded(self, doing: str) -> Iterator[SparkSQLSession]:
        published = self.store.read("published")
        if not published["tables"]:
            raise SegflowError(
                f"{self.location}: nothing published yet; run `segflow ingest` and `segflow build` first"
            )
        work = self.store.read("work")["tables"]
        tables = {key: entry for key, entry in work.items() if not key.startswith("pub.")}
        tables.update(published["tables"])
        session = SparkSQLSession(self._spark(), self.store, {"tables": tables}, writable=False, reader=False)
        try:
            yield session
        finally:
            self._release(session)
