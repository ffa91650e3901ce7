"""`segflow demo` (what `make demo` runs): sample data through the real Airflow DAGs, end to end."""

from __future__ import annotations

import time
from datetime import date, timedelta
from pathlib import Path

from transforms import PROJECT_ROOT
from transforms.airflow_runner import airflow_env, dags_test, prepare
from transforms.console import print_table
from transforms.engines import open_warehouse
from transforms.errors import SegflowError
from transforms.generate import generate
from transforms.quality import data_docs_dir
from transforms.settings import Settings

LAST_DAY = date(2026, 6, 30)


def run_demo(settings: Settings, orders: int = 20_000, folder: Path = PROJECT_ROOT) -> int:
    """Landing files, Airflow's home and the report go under `folder` (the project by default)."""
    landing = folder / "data" / "landing"
    home = folder / "airflow_home"
    started = time.perf_counter()
    print(f"1/5 generating {orders:,} sample orders into {landing}")
    generate(landing, orders=orders, last_day=LAST_DAY)
    env = airflow_env(
        home,
        {
            "SEGFLOW_LANDING": str(landing),
            "SEGFLOW_WAREHOUSE": settings.warehouse_url,
            "SEGFLOW_CONFIG": str(settings.config_dir),
        },
    )
    print(f"2/5 preparing Airflow in {home} (metadata DB, DAGs, pool)")
    log = prepare(home, env)
    run_date = (LAST_DAY + timedelta(days=1)).isoformat()
    runs = [
        ("segflow_ingest", run_date),
        ("segflow_customers", (LAST_DAY + timedelta(days=1) - timedelta(days=30)).isoformat()),
        ("segflow_customers", run_date),
    ]
    print("3/5 running the DAGs through Airflow (airflow dags test)")
    for dag_id, logical_date in runs:
        state = dags_test(dag_id, logical_date, env, log)
        print(f"    {dag_id:<20} {logical_date}  {state}")
        if state != "success":
            raise SegflowError(f"DAG {dag_id} for {logical_date} ended {state}; see {log}")
    _print_loaded(settings)
    _print_wave_plans(settings)
    print("4/5 report")
    report_path = _write_report(settings, folder / "reports" / "segflow_report.html")
    print(f"5/5 done in {time.perf_counter() - started:.0f} s")
    warehouse = open_warehouse(settings)
    print(f"    warehouse: {warehouse.location} ({warehouse.readers})")
    if report_path:
        print(f"    report: {report_path}")
    docs = data_docs_dir(settings) / "index.html"
    if docs.exists():
        print(f"    data-quality docs (Great Expectations): {docs}")
    print(f"    Airflow log: {log}")
    return 0


def _print_loaded(settings: Settings) -> None:
    with open_warehouse(settings).read() as con:
        loaded = con.fetch_dicts(  # One quarantine row per field at fault: a line can fail on several fields.
            "select kind, count(distinct file) as files, count(distinct (file, line)) as quarantined_rows, "
            "count(*) as problems from ingest_quarantine group by kind order by kind",
        )
        summary = con.fetch_dicts(
            "select model, segment_label, customers, round(customer_share, 3) as customer_share, "
            "round(revenue_share, 3) as revenue_share from segment_summary where model = 'value_frequency' "
            "order by customers desc",
        )
        cross_sell = con.fetch_dicts(
            "select item, count(*) as buyers, count(content) as send_content_first, "
            "min(next_related) as example_next_related from action_cross_sell group by item order by item",
        )
    with open_warehouse(settings).work() as con:
        files = con.fetch_dicts(
            "select kind, count(*) as files, sum(rows_read) as rows_read, sum(rows_loaded) as rows_loaded, "
            "sum(rows_quarantined) as rows_quarantined from meta.ingest_files group by kind order by kind",
        )
    print("\n    loaded:")
    print_table(files)
    if loaded:
        print("\n    quarantined (table ingest_quarantine):")
        print_table(loaded)
    print("\n    value x frequency quadrants (segment_summary):")
    print_table(summary)
    print("\n    cross-sell after a durable purchase (action_cross_sell):")
    print_table(cross_sell)
    print()


def _print_wave_plans(settings: Settings) -> None:
    from transforms.campaigns import load_waves, plan_wave, print_plan

    for wave in load_waves(settings):
        print(f"    segflow pack plan {wave}:")
        print_plan(plan_wave(settings, wave))
        print()


def _write_report(settings: Settings, path: Path):
    try:
        from transforms.report import write_report
    except ImportError:
        return None
    write_report(settings, path)
    return path
