"""The DAGs run through a real Airflow 3 (airflow dags test in an isolated AIRFLOW_HOME)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.conftest import published_rows, write_config
from transforms.airflow_runner import airflow_env, dags_test, prepare
from transforms.build import build
from transforms.engines import open_warehouse
from transforms.generate import generate
from transforms.ingest import ingest_landing
from transforms.settings import Settings

LAST_DAY = date(2026, 6, 20)
# Two days: the second carries the first one's histories over, as every later day would.
BACKFILL = [date(2026, 6, 20), date(2026, 6, 21)]


def table_rows(settings: Settings, table: str) -> list[tuple]:
    return sorted(published_rows(settings, f"select * from {table}"), key=repr)


@pytest.mark.slow
def test_ingest_and_customer_pipeline_through_airflow_and_backfill_equals_sequential_runs(tmp_path):
    landing = tmp_path / "landing"
    generate(landing, orders=3_000, days=45, last_day=LAST_DAY, seed=5)
    config = write_config(tmp_path / "config")
    airflow_settings = Settings.load(config, f"duckdb:///{tmp_path / 'airflow_wh' / 'segflow.duckdb'}")
    env = airflow_env(
        tmp_path / "airflow_home",
        {
            "SEGFLOW_LANDING": str(landing),
            "SEGFLOW_WAREHOUSE": airflow_settings.warehouse_url,
            "SEGFLOW_CONFIG": str(config),
        },
    )
    log = prepare(tmp_path / "airflow_home", env)

    ingest_run = (LAST_DAY + timedelta(days=1)).isoformat()
    assert dags_test("segflow_ingest", ingest_run, env, log) == "success"
    # A second run of the same interval loads nothing twice.
    assert dags_test("segflow_ingest", ingest_run, env, log) == "success"
    for day in BACKFILL:
        assert dags_test("segflow_customers", day.isoformat(), env, log) == "success", log.read_text()[-3000:]

    sequential = Settings.load(config, f"duckdb:///{tmp_path / 'cli_wh' / 'segflow.duckdb'}")
    ingest_landing(sequential, landing)
    for day in BACKFILL:
        build(sequential, day)

    for table in (
        "customer_features_history",
        "customer_segments_history",
        "segment_summary_history",
        "segment_migration",
        "customer_tag_history",
        "customer_tags",
        "dq_results",
    ):
        assert table_rows(airflow_settings, table) == table_rows(sequential, table), table
    with open_warehouse(airflow_settings).work() as con:
        assert (
            con.execute("select count(*), count(distinct _file || ':' || _line) from raw.orders").fetchall()[
                0
            ][0]
            > 0
        )
        total, distinct = con.execute(
            "select count(*), count(distinct _file || ':' || _line) from raw.orders"
        ).fetchall()[0]
        assert total == distinct
