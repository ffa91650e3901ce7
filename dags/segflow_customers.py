"""
### segflow customer pipeline

staging > identity > features > segments > tags > insights > checks > publish, as of the run's
business date (facts before its 00:00 count). Runs daily and whenever new raw data lands. A
data-quality error stops the run before publish: readers keep the previous tables.
"""

from __future__ import annotations

from airflow.sdk import dag, task
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable
from segflow_airflow import (
    DAG_DEFAULTS,
    PUBLISHED,
    RAW_DATA,
    WAREHOUSE_POOL,
    business_date,
    segflow_settings,
)

from transforms.steps import STEPS  # a leaf module: light enough to import while parsing


@dag(
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 2 * * *", timezone="Asia/Shanghai"), assets=[RAW_DATA]
    ),
    doc_md=__doc__,
    **DAG_DEFAULTS,
)
def segflow_customers():
    @task(pool=WAREHOUSE_POOL)
    def run_step(step: str, **context) -> dict:
        from transforms.pipeline import run_step_for_run

        settings = segflow_settings()
        return run_step_for_run(settings, business_date(context, settings), step)

    previous = None
    for step in STEPS:
        outlets = [PUBLISHED] if step == "publish" else []
        current = run_step.override(task_id=step, outlets=outlets)(step)
        if previous is not None:
            previous >> current
        previous = current


segflow_customers()
