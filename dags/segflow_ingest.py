"""
### segflow ingestion

Loads the landing files (`$SEGFLOW_LANDING/<kind>/<kind>_<YYYY-MM-DD>.*`) dated before the run's
business date into the warehouse. Files already loaded (same SHA-256) are skipped, so retries and
reruns load nothing twice. Emits the raw-data asset that starts the customer pipeline.
"""

from __future__ import annotations

from airflow.sdk import dag, task
from airflow.timetables.trigger import CronTriggerTimetable
from segflow_airflow import DAG_DEFAULTS, RAW_DATA, WAREHOUSE_POOL, business_date, segflow_settings


@dag(
    schedule=CronTriggerTimetable("30 0 * * *", timezone="Asia/Shanghai"),
    doc_md=__doc__,
    **DAG_DEFAULTS,
)
def segflow_ingest():
    @task(pool=WAREHOUSE_POOL, outlets=[RAW_DATA])
    def ingest_landing_files(**context) -> dict:
        from transforms.pipeline import ingest_for_run

        settings = segflow_settings()
        return ingest_for_run(settings, business_date(context, settings))

    ingest_landing_files()


segflow_ingest()
