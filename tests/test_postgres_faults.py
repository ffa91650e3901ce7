"""Faults on PostgreSQL: killed builds and ingests, readers in a loop and a long BI query during
publishes, on a real throwaway server."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from tests.conftest import (
    BI_READER,
    assert_an_error_blocks_publish_and_a_warning_does_not,
    cli,
    kill_builds_then_retry,
    killed_publish_hands_its_date_to_the_next_build,
    published_rows,
    work_rows,
    write_config,
)
from tests.published import published_tables
from transforms.build import build
from transforms.engines import open_warehouse
from transforms.generate import generate
from transforms.ingest import ingest_landing
from transforms.quality import data_docs_dir
from transforms.settings import Settings

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

D1, D2 = date(2026, 6, 1), date(2026, 6, 15)


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pg_faults_landing")
    generate(folder, orders=3_000, days=60, last_day=date(2026, 6, 20), seed=5)
    return folder


@pytest.fixture(scope="module")
def built_at_d1(tmp_path_factory, postgres_server, landing) -> str:
    """A warehouse loaded and built as of D1, once: each test gets a copy of its database."""
    folder = tmp_path_factory.mktemp("pg_d1")
    config = write_config(folder / "config", {"warehouse": {"files_dir": str(folder / "files")}})
    settings = Settings.load(config, postgres_server())
    ingest_landing(settings, landing)
    build(settings, D1)
    return settings.warehouse_url


@pytest.fixture(scope="module")
def clean_at_d2(tmp_path_factory, postgres_server, built_at_d1):
    """The published tables of an undisturbed warehouse built as of D1 then D2."""
    folder = tmp_path_factory.mktemp("pg_clean")
    config = write_config(folder / "config", {"warehouse": {"files_dir": str(folder / "files")}})
    settings = Settings.load(config, postgres_server(copy_of=built_at_d1))
    build(settings, D2)
    return published_tables(settings)


@pytest.fixture
def warehouse_at_d1(tmp_path, postgres_server, built_at_d1):
    config = write_config(tmp_path / "config", {"warehouse": {"files_dir": str(tmp_path / "files")}})
    return Settings.load(config, postgres_server(copy_of=built_at_d1))


def test_killed_builds_leave_the_published_tables_whole_and_the_retry_is_exact(warehouse_at_d1, clean_at_d2):
    kill_builds_then_retry(warehouse_at_d1, D2)
    assert published_tables(warehouse_at_d1) == clean_at_d2


def test_killed_right_after_the_swap_readers_see_the_new_tables_and_the_retry_changes_nothing(
    warehouse_at_d1, clean_at_d2
):
    killed = cli(warehouse_at_d1, "build", "--as-of", D2.isoformat(), failpoint="publish:after_swap")
    assert killed.returncode == 137, killed.stderr
    assert published_tables(warehouse_at_d1) == clean_at_d2
    assert cli(warehouse_at_d1, "build", "--as-of", D2.isoformat()).returncode == 0
    assert published_tables(warehouse_at_d1) == clean_at_d2
    # The schemas replaced by publishes are gone once no reader holds them.
    leftovers = work_rows(
        warehouse_at_d1, "select nspname from pg_namespace where nspname like 'segflow\\_\\_%' order by 1"
    )
    assert leftovers == []


def test_publish_moves_the_tables_and_each_history_date_is_written_once(warehouse_at_d1):
    """A publish moves the built tables into the published schema (no copy) and leaves views of them
    for the next commands; a history table is a view over one part table per as-of date, written
    when that date is built and never again. A publish killed before its swap hands its date to the
    next one."""
    d3, d4 = date(2026, 6, 16), date(2026, 6, 18)
    parts = (
        "select p.key_value, c.relfilenode from segflow_history.parts as p "
        "join pg_class as c on c.oid = to_regclass('segflow_history.' || p.part) "
        "where p.table_name = 'customer_features_history' order by 1"
    )
    build(warehouse_at_d1, D2)
    written_by_d2 = work_rows(warehouse_at_d1, parts)
    assert [key for key, _ in written_by_d2] == [D1.isoformat(), D2.isoformat()]
    killed_publish_hands_its_date_to_the_next_build(warehouse_at_d1, [D1, D2], d3, d4)
    assert work_rows(warehouse_at_d1, parts)[:2] == written_by_d2  # never rewritten
    kinds = dict(
        work_rows(
            warehouse_at_d1,
            "select table_schema || '.' || table_name, table_type from information_schema.tables "
            "where table_name in ('customer_features', 'customer_features_history') "
            "and table_schema in ('pub', 'segflow')",
        )
    )
    assert kinds == {
        "pub.customer_features": "VIEW",
        "segflow.customer_features": "BASE TABLE",
        "pub.customer_features_history": "VIEW",
        "segflow.customer_features_history": "VIEW",
    }
    # Parts no view lists any more are dropped once the publish that replaced their view is done.
    listed = work_rows(warehouse_at_d1, "select count(*) from segflow_history.parts")[0][0]
    build(warehouse_at_d1, d4)
    stored = work_rows(
        warehouse_at_d1,
        "select count(*) from pg_tables where schemaname = 'segflow_history' and tablename like 'part\\_%'",
    )[0][0]
    assert stored == listed
    for table in ("customer_features", "customer_tags_history", "dq_results"):
        differing = work_rows(
            warehouse_at_d1,
            f"select (select count(*) from (select * from pub.{table} except all select * from segflow.{table}) as a),"
            f" (select count(*) from (select * from segflow.{table} except all select * from pub.{table}) as b)",
        )
        assert differing == [(0, 0)], table


def test_killed_ingest_loads_nothing_and_the_retry_loads_each_row_once(make_pg_settings, landing):
    settings = make_pg_settings()
    orders = str(landing / "orders")
    killed = cli(settings, "ingest", orders, "--kind", "orders", failpoint="ingest:before_commit")
    assert killed.returncode == 137, killed.stderr
    assert work_rows(settings, "select count(*) from raw.orders") == [(0,)]
    assert work_rows(settings, "select count(*) from meta.ingest_files") == [(0,)]
    assert cli(settings, "ingest", orders, "--kind", "orders").returncode == 0
    again = cli(settings, "ingest", orders, "--kind", "orders", "--json")
    assert json.loads(again.stdout)["rows_loaded"] == 0
    loaded = work_rows(settings, "select count(*), count(distinct _file || ':' || _line) from raw.orders")
    assert loaded[0][0] == loaded[0][1] > 0


# A long BI query on the published customer_features, started before a build publishes.
LONG_QUERY = r"""
import sys
import psycopg
con = psycopg.connect(sys.argv[1], autocommit=True)
print(con.execute(
    "select count(*) from segflow.customer_features, (select pg_sleep(%s)) as wait" % sys.argv[2]
).fetchone()[0])
"""


def _driver_url(settings) -> str:
    return settings.warehouse_url.replace("postgresql+psycopg://", "postgresql://")


def test_readers_never_error_wait_or_see_a_partial_table_and_a_long_query_holds_up_nobody(
    warehouse_at_d1, landing
):
    url = _driver_url(warehouse_at_d1)
    reader = subprocess.Popen(
        [sys.executable, BI_READER, "postgres", url, "30"], stdout=subprocess.PIPE, text=True
    )
    long_query = subprocess.Popen(
        [sys.executable, "-c", LONG_QUERY, url, "25"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(2)
    build(warehouse_at_d1, D2)
    # The publish did not wait for the long query, which still reads the tables it started on.
    assert long_query.poll() is None
    build(warehouse_at_d1, date(2026, 6, 16))
    out, _ = reader.communicate(timeout=120)
    stats = json.loads(out)
    assert stats["errors"] == 0, stats["messages"]
    assert stats["inconsistent"] == 0
    assert stats["reads"] > 20 and stats["slowest"] < 10.0, stats
    finished, failed = long_query.communicate(timeout=120)
    assert long_query.returncode == 0, failed
    assert int(finished) > 0
    # Its schema was dropped once it finished, by the next publish.
    build(warehouse_at_d1, D2)
    leftovers = work_rows(
        warehouse_at_d1, "select count(*) from pg_namespace where nspname like 'segflow\\_\\_%'"
    )
    assert leftovers == [(0,)]


def test_a_data_quality_error_found_by_ges_sql_engine_stops_publish_and_a_warning_does_not(warehouse_at_d1):
    with open_warehouse(warehouse_at_d1).work() as con:
        # GE gets the query to run in the warehouse, in PostgreSQL's dialect.
        sql = "select total_spend from pub.customer_features where total_spend > 0"
        with con.dq_sql_source() as source:
            assert source["connection_string"].startswith("postgresql+psycopg://")
        assert "total_spend > 0" in con.dq_sql("pub.customer_features", sql)
    big_spenders = work_rows(
        warehouse_at_d1, "select count(*) from pub.customer_features where total_spend > 1000"
    )
    assert big_spenders[0][0] > 0
    expectation = {"type": "between", "table": "pub.customer_features", "column": "total_spend", "max": 1000}
    assert_an_error_blocks_publish_and_a_warning_does_not(warehouse_at_d1, expectation, D1, D2)
    customers = published_rows(
        warehouse_at_d1, "select count(*) from customer_features where total_spend is not null"
    )
    over = published_rows(warehouse_at_d1, "select count(*) from customer_features where total_spend > 1000")
    assert published_rows(
        warehouse_at_d1, "select success, observed from dq_results where suite = 'brand'"
    ) == [(False, f"{over[0][0]} of {customers[0][0]} rows unexpected")]
    pages = sorted(
        (data_docs_dir(warehouse_at_d1) / "validations" / "brand" / D2.isoformat()).glob("*/segflow.html")
    )
    assert len(pages) == 2 and all("Failed" in page.read_text(encoding="utf-8") for page in pages)


def test_reader_roles_can_read_every_publish_and_nothing_else(make_pg_settings):
    from tests.conftest import load_feature_fixture

    settings = make_pg_settings({"warehouse": {"reader_roles": ["bi_reader"]}})
    with open_warehouse(settings).work() as con:
        con.execute("drop role if exists bi_reader")
        con.execute("create role bi_reader login")
    load_feature_fixture(settings)
    as_bi = _driver_url(settings).replace("//segflow@", "//bi_reader@")
    import psycopg

    for as_of in (date(2026, 3, 10), date(2026, 3, 11)):
        build(settings, as_of, run_checks=False)
        with psycopg.connect(as_bi, autocommit=True) as con:
            assert con.execute("select count(*) from segflow.customer_features").fetchone()[0] > 0
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                con.execute("select count(*) from pub.customer_features")
