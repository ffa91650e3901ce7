"""Airflow glue for segflow: the assets DAGs exchange, the one-writer pool, settings, run dates.

DAG files import from here and stay thin; nothing here touches a database at import time.
"""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pendulum
from airflow.sdk import Asset

# Raw data landed in the warehouse (ingestion) -> the customer pipeline runs.
RAW_DATA = Asset("segflow://warehouse/raw")
# Tables published for readers (customer pipeline) -> scheduled pack exports run.
PUBLISHED = Asset("segflow://warehouse/published")
# DuckDB takes one writer: every task that writes goes through this one-slot pool.
WAREHOUSE_POOL = "segflow_warehouse"
# What every segflow DAG shares: pass as @dag(schedule=..., doc_md=__doc__, **DAG_DEFAULTS).
DAG_DEFAULTS = {
    "start_date": pendulum.datetime(2026, 1, 1, tz="Asia/Shanghai"),
    "catchup": False,
    "max_active_runs": 1,
    "default_args": {"owner": "data-engineering", "retries": 2, "retry_delay": timedelta(seconds=30)},
    "tags": ["segflow"],
}


def segflow_settings():
    """Settings from SEGFLOW_CONFIG / SEGFLOW_WAREHOUSE, read when a task runs, not when a DAG is parsed."""
    from transforms.settings import Settings

    return Settings.load()


def business_date(context: dict, settings) -> date:
    """The run's `--as-of` date: its logical date (else when it was triggered) in the business timezone."""
    moment = context.get("logical_date") or context["dag_run"].run_after
    return moment.astimezone(ZoneInfo(settings.timezone)).date()
