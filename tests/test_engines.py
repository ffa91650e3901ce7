"""Every served engine gives the same answers: the constructs whose meaning differs between dialects,
one by one, and the whole pipeline on generated data (late, re-sent and superseding orders, refunds,
merged identities, junk identifiers) built as of two dates."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import cli, published_rows
from tests.dags.test_make_demo import assert_demo_published
from tests.published import RUN_COLUMNS, published_tables, table_rows
from transforms import PROJECT_ROOT
from transforms.build import build, run_step
from transforms.engines import open_warehouse
from transforms.errors import SegflowError
from transforms.ingest import ingest_landing, summarize
from transforms.settings import Settings
from transforms.sql import literal

pytestmark = pytest.mark.postgres

# The demo's load and builds (transforms/demo.py): what tests/conftest.py's spark_demo ran.
LOADED_UNTIL, D1, D2 = date(2026, 6, 30), date(2026, 6, 1), date(2026, 7, 1)
CONTRACT_TABLES = {
    "customer_features",
    "customer_monthly_spend",
    "customer_identifiers",
    "customer_tags",
    "customer_segments",
    "segment_summary",
    "customer_tag_history",
    "segment_migration",
    "channel_conversion",
    "funnel_summary",
    "cohort_retention",
    "tag_report",
    "ingest_quarantine",
    "dq_results",
}

# (SQL in segflow's dialect, the answer worked out by hand): each is a construct sqlglot would
# carry over to another dialect with a different meaning (see transforms/engines/postgres_sql.py).
CONSTRUCTS = [
    ("select round(cast(2.5 as double))", 3),
    ("select round(cast(-2.5 as double))", -3),
    ("select round(cast(0.125 as double), 2)", 0.13),
    ("select cast(round(cast(7.5 as double)) as integer)", 8),
    ("select date_diff('day', date '2024-01-31', date '2024-03-01')", 30),
    ("select date_diff('month', date '2024-01-31', date '2024-02-01')", 1),
    ("select date_diff('year', date '2023-12-31', date '2024-01-01')", 1),
    ("select percentile_cont(0.5) within group (order by x) from (values (1), (2), (3), (10)) as t(x)", 2.5),
    ("select extract(isodow from date '2024-01-07')", 7),
    ("select 7 // 2", 3),
    ("select 7 / 2", 3.5),
    ("select sha256('abc')", hashlib.sha256(b"abc").hexdigest()),
    ("select count(*) from (select 1 as x) where 1 = 1", 1),
]


@pytest.fixture(scope="module")
def engines(tmp_path_factory, postgres_server, spark_demo) -> dict[str, Settings]:
    """The warehouses the pipeline is compared on; Spark's is the demo's (tests/conftest.py)."""
    from tests.conftest import write_config

    folder = tmp_path_factory.mktemp("engines")
    config = write_config(folder / "config", {"warehouse": {"files_dir": str(folder / "files")}})
    return {
        "duckdb": Settings.load(config, f"duckdb:///{folder / 'wh' / 'segflow.duckdb'}"),
        "postgres": Settings.load(config, postgres_server()),
        "spark": spark_demo.settings,
    }


@pytest.fixture(scope="module")
def sessions(engines, tmp_path_factory) -> dict[str, Settings]:
    """For single statements: on Spark a warehouse of its own, since the demo's may be building."""
    folder = tmp_path_factory.mktemp("spark_statements")
    return {**engines, "spark": Settings.load(engines["spark"].config_dir, f"spark:///{folder}")}


@pytest.mark.parametrize(("sql", "expected"), CONSTRUCTS, ids=[sql for sql, _ in CONSTRUCTS])
def test_constructs_that_change_meaning_give_the_same_answer_on_every_engine(sessions, sql, expected):
    for engine, settings in sessions.items():
        with open_warehouse(settings).work() as con:
            value = con.scalar(sql)
        assert (float(value) if isinstance(expected, float) else value) == expected, engine


def test_holdout_buckets_are_the_same_on_every_engine(sessions):
    values = ["spring_sale:00388d50ff6eb5b2", "pack:abc", "会员日:1"]
    expected = [int.from_bytes(hashlib.md5(v.encode()).digest(), "little") % 10000 for v in values]
    for engine, settings in sessions.items():
        with open_warehouse(settings).work() as con:
            buckets = [con.scalar(f"select {con.hash_bucket(literal(v), 10000)}") for v in values]
        assert buckets == expected, engine


def test_a_semi_join_is_refused_where_it_would_change_meaning(engines):
    with open_warehouse(engines["postgres"]).work() as con, pytest.raises(SegflowError, match="anti join"):
        con.execute("select 1 from (select 1 as a) as x anti join (select 2 as a) as y using (a)")


def run_step_in_a_process(settings: Settings, as_of: date, step: str, failpoint: str) -> None:
    """One step as an Airflow task runs it (transforms.pipeline), in a process killed at `failpoint`."""
    env = {**os.environ, "SEGFLOW_FAILPOINT": failpoint}
    code = (
        "import datetime; from transforms.settings import Settings; "
        f"from transforms.pipeline import run_step_for_run; run_step_for_run(Settings.load("
        f"{str(settings.config_dir)!r}, {settings.warehouse_url!r}), datetime.date.fromisoformat("
        f"{as_of.isoformat()!r}), {step!r})"
    )
    killed = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert killed.returncode == 137, killed.stderr[-2000:]


@pytest.fixture(scope="module")
def built(engines, spark_demo) -> dict:
    """Each engine's published tables as of D1 and then D2 (D2 only on Spark: its D1 tables were
    replaced during the demo; their history rows are compared), from the demo's landing files and
    in the demo's order: one load, then a build as of each date.

    On Spark (whose fault tests these are; DuckDB and PostgreSQL have suites of their own) the D2
    publish is run again in a process killed mid-publish, after every table is written: readers
    still see the tables whole, and the retry's tables are compared with the other engines'."""
    landing = spark_demo.landing()  # DuckDB and PostgreSQL build while the demo runs on Spark
    tables = {}
    for engine in ("duckdb", "postgres"):
        settings = engines[engine]
        ingest_landing(settings, landing, until_date=LOADED_UNTIL.isoformat())
        build(settings, D1)
        first = published_tables(settings)
        build(settings, D2)
        tables[engine] = (first, published_tables(settings))
    spark_demo.finished()
    spark = engines["spark"]
    # Exactly once per file: a second load of the same folder adds nothing.
    reloaded = ingest_landing(spark, landing, until_date=LOADED_UNTIL.isoformat())
    assert reloaded and {result.status for result in reloaded} == {"skipped"}, summarize(reloaded)
    by_the_demo = published_tables(spark)
    run_step_in_a_process(spark, D2, "publish", failpoint="publish:before_swap")
    assert published_tables(spark) == by_the_demo
    run_step(spark, D2, "publish")  # the task's retry
    tables["spark"] = (None, published_tables(spark))
    assert tables["spark"][1] == by_the_demo
    return tables


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["postgres", "spark"])
def test_the_same_data_builds_the_same_published_tables_on_every_engine(built, engine):
    for as_of, duck, other in zip((D1, D2), built["duckdb"], built[engine], strict=True):
        if other is None:
            continue  # Spark's D1 tables: replaced during the demo
        assert CONTRACT_TABLES <= set(duck)
        assert sorted(duck) == sorted(other), as_of
        for table in duck:
            assert duck[table][0] == other[table][0], f"{table} columns as of {as_of}"
            if as_of == D2 and table in CONTRACT_TABLES:
                assert duck[table][1], f"{table} is empty: the comparison would prove nothing"
            differing = sorted(set(duck[table][1]) ^ set(other[table][1]))[:3]
            assert duck[table][1] == other[table][1], f"{table} as of {as_of} differs: {differing}"


@pytest.fixture(scope="module")
def spark_connect(tmp_path_factory) -> Iterator[str]:
    """A Spark Connect server for this file's tests, started and stopped as a user does (`make
    spark-connect-up` / `spark-connect-down`); yields its warehouse URL. Not kept for the session:
    an idle server's JVM still takes a tenth of a core, which the other test files want."""
    folder = tmp_path_factory.mktemp("spark_connect")
    make = ["make", "--no-print-directory", f"SPARK_CONNECT_DIR={folder}"]
    up = subprocess.run([*make, "spark-connect-up"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert up.returncode == 0, up.stdout + up.stderr
    (url,) = re.findall(r"^SEGFLOW_WAREHOUSE=(sc://127\.0\.0\.1:\d+)$", up.stdout, re.MULTILINE)
    try:
        yield url
    finally:
        down = subprocess.run([*make, "spark-connect-down"], cwd=PROJECT_ROOT, capture_output=True, text=True)
        assert down.returncode == 0, down.stdout + down.stderr
        assert not (folder / "pid").exists()


def in_process(settings: Settings, *args: str) -> str:
    """A segflow command run by this process's CLI entry point; its standard output. The environment
    is put back afterwards: pyspark marks a process that opened a Spark Connect session as one
    (SPARK_CONNECT_MODE_ENABLED), after which this process's local sessions would refuse to work."""
    from transforms.cli import main

    environment = dict(os.environ)
    try:
        with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(io.StringIO()) as out:
            patch.setenv("SEGFLOW_WAREHOUSE", settings.warehouse_url)
            patch.setenv("SEGFLOW_CONFIG", str(settings.config_dir))
            assert main(list(args)) == 0, args
    finally:
        os.environ.clear()
        os.environ.update(environment)
    return out.getvalue()


@pytest.fixture(scope="module")
def spark_connect_settings(engines, spark_connect, tmp_path_factory) -> Settings:
    """The demo's Spark warehouse through a Spark Connect server (as on a cluster): the same folder
    as warehouse.spark_path."""
    from tests.conftest import SPARK_TEST_SETTINGS, write_config
    from transforms.engines.spark import spark_root_from_url

    root = spark_root_from_url(engines["spark"].warehouse_url)
    overrides = {"warehouse": {**SPARK_TEST_SETTINGS["warehouse"], "spark_path": str(root)}}
    config = write_config(tmp_path_factory.mktemp("spark_connect_config"), overrides)
    return Settings.load(config, spark_connect)


@pytest.mark.slow
def test_every_command_gives_the_same_output_on_every_engine(
    engines, built, spark_connect_settings, tmp_path
):
    """What a user types, through the CLI, on each engine: the same files and the same answers. Spark's
    commands reach the demo's warehouse through a Spark Connect server, as on a cluster (a local
    session's commands run in the demo and the tests above), from this process's CLI entry point:
    thirteen processes, each importing Great Expectations and opening a Connect session, cost
    minutes here; the refusals below run `segflow` as a process."""
    outputs = {}
    # whois on the customer with the most identifiers, asked by its earliest one: a long path.
    (asked,) = published_rows(
        engines["duckdb"],
        "select id_value from customer_identifiers where customer_key = (select customer_key from "
        "customer_identifiers group by customer_key order by count(*) desc, customer_key limit 1) "
        "order by first_seen_at, id_type, id_value limit 1",
    )
    for engine, settings in {**engines, "spark": spark_connect_settings}.items():
        out = tmp_path / engine

        def run(*args: str, _settings=settings, _engine=engine) -> str:
            if _engine == "spark":
                return in_process(_settings, "--json", *args)
            done = cli(_settings, "--json", *args)
            assert done.returncode == 0, (_engine, args, done.stderr[-2000:])
            return done.stdout

        check = json.loads(run("check", "--as-of", D2.isoformat()))
        exported = json.loads(run("pack", "export", "churned_winback", "--out", str(out)))
        hashed = json.loads(run("pack", "export", "churned_winback", "--out", str(out), "--hash"))
        outputs[engine] = {
            "check": sorted(
                (c["suite"], c["expectation"], c["success"], c["observed"]) for c in check["checks"]
            ),
            "tags report": json.loads(run("tags", "report")),
            "preview": json.loads(run("pack", "preview", "churned_winback")),
            "export": Path(exported["file"]).read_bytes(),
            "export --hash": Path(hashed["file"]).read_bytes(),
            "counts": [(e["members"], e["suppressed"], e["holdout"]) for e in (exported, hashed)],
            "lift": json.loads(
                run("pack", "lift", "churned_winback", "--export", exported["export_id"], "--days", "7")
            ),
            "reminders": json.loads(
                run("actions", "unpaid-reminders", "--at", f"{D2.isoformat()}T10:00:00+08:00")
            ),
            "whois": json.loads(run("whois", asked[0], "--reveal")),
            "dump": pq.read_table(
                json.loads(run("dump", "segment_summary", "--out", str(out / "summary.parquet")))["file"]
            ),
        }
        run("report", "--out", str(out / "report.html"))
        outputs[engine]["report"] = (out / "report.html").stat().st_size > 10_000
        outputs[engine]["dump"] = table_rows(outputs[engine]["dump"])
    assert outputs["duckdb"]["counts"][0][0] > 0
    assert len(outputs["duckdb"]["whois"]["identifiers"]) > 1 and outputs["duckdb"]["whois"]["records"] > 1
    for engine in ("postgres", "spark"):
        for key in outputs["duckdb"]:
            assert outputs["duckdb"][key] == outputs[engine][key], (engine, key)


@pytest.mark.slow
def test_published_tables_carry_the_same_comments_for_bi_tools(engines, built):
    comments = {}
    with open_warehouse(engines["duckdb"]).read() as con:
        comments["duckdb"] = con.execute(
            "select table_name, comment from duckdb_tables() where database_name = 'pub' and schema_name = 'main' "
            "union all select view_name, comment from duckdb_views() where database_name = 'pub' "
            "and schema_name = 'main' order by 1"
        ).fetchall()
    with open_warehouse(engines["postgres"]).read() as con:
        comments["postgres"] = con.con.execute(
            "select c.relname, obj_description(c.oid) from pg_class as c join pg_namespace as n "
            "on n.oid = c.relnamespace where n.nspname = 'segflow' and c.relkind in ('r', 'v') order by 1"
        ).fetchall()
    assert dict(comments["duckdb"])["customer_features"] == "one row per customer_key"
    assert comments["duckdb"] == comments["postgres"]


def test_spark_sql_readers_find_the_published_tables_in_database_segflow(engines, built):
    """What a Spark user runs: catalog/published.sql in a session of their own, then segflow.<table>."""
    from transforms.engines.spark import driver, spark_root_from_url

    settings = engines["spark"]
    root = spark_root_from_url(settings.warehouse_url)
    spark = driver(settings, root).newSession()
    script = (root / "catalog" / "published.sql").read_text(encoding="utf-8")
    for statement in script.split(";\n"):
        if statement.strip():
            spark.sql(statement)
    published = built["spark"][1]
    assert CONTRACT_TABLES <= set(published)
    for name, (columns, rows) in published.items():
        table = spark.sql(f"select * from segflow.{name}").toArrow()
        assert [c for c in table.column_names if c not in RUN_COLUMNS] == columns, name
        assert table_rows(table) == rows, name
    # segflow's own readers take the same names.
    assert published_rows(settings, "select count(*) from segflow.customer_features") == [
        (len(published["customer_features"][1]),)
    ]
    # BI tools show the same table and column comments as on DuckDB.
    with open_warehouse(engines["duckdb"]).read() as con:
        duckdb_comments = con.execute(
            "select table_name, column_name, comment from duckdb_columns() where database_name = 'pub' "
            "and schema_name = 'main' union all select table_name, null, comment from duckdb_tables() "
            "where database_name = 'pub' and schema_name = 'main' union all select view_name, null, comment "
            "from duckdb_views() where database_name = 'pub' and schema_name = 'main'"
        ).fetchall()
    spark_comments = [
        (name, column.name, column.description or None)
        for name in published
        for column in spark.catalog.listColumns(f"segflow.{name}")
    ] + [(name, None, spark.catalog.getTable(f"segflow.{name}").description) for name in published]

    def in_order(comments):
        return sorted(((t, c or "", text) for t, c, text in comments if c not in RUN_COLUMNS), key=repr)

    expected = in_order(row for row in duckdb_comments if row[0] in published)
    assert ("customer_features", "", "one row per customer_key") in expected
    assert in_order(spark_comments) == expected


@pytest.mark.slow
def test_make_demo_spark_runs_the_demo_on_a_local_spark_session(spark_demo):
    # The run itself is the session's spark_demo fixture (tests/conftest.py), as a user types it; last
    # in this file, so that DuckDB and PostgreSQL build while it runs.
    root, done = spark_demo.folder / "spark", spark_demo.finished()
    assert f"SEGFLOW_WAREHOUSE=spark://{root}" in done.stdout
    assert_demo_published(spark_demo.settings, spark_demo.folder, done.stdout)
    assert (root / "catalog" / "published.json").exists()


def test_a_server_setting_under_spark_conf_is_refused_in_one_line(spark_connect, tmp_path):
    """A Spark Connect session takes only the settings a session may change; the rest belong to the
    server (its master, memory), and saying so beats a Spark stack trace."""
    from tests.conftest import write_config

    overrides = {
        "warehouse": {"spark_path": str(tmp_path / "shared"), "spark_conf": {"spark.driver.memory": "8g"}}
    }
    settings = Settings.load(write_config(tmp_path / "config", overrides), spark_connect)
    done = cli(settings, "build", "--as-of", D2.isoformat())
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"segflow: {settings.config_dir / 'settings.yml'}: warehouse.spark_conf spark.driver.memory cannot be set "
        f"in a session of {spark_connect} (a setting of the server: give it where the server starts)"
    ]
