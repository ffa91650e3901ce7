"""
### segflow unpaid-order reminders

Every 10 minutes: orders still unpaid that crossed a reminder mark (10 minutes, 24 hours; see
settings `actions`) since the previous run, into `action_unpaid_reminders` for the operators.
"""

from __future__ import annotations

from airflow.sdk import dag, task
from airflow.timetables.trigger import CronTriggerTimetable
from segflow_airflow import DAG_DEFAULTS, WAREHOUSE_POOL, segflow_settings


@dag(
    schedule=CronTriggerTimetable("*/10 * * * *", timezone="Asia/Shanghai"),
    doc_md=__doc__,
    **DAG_DEFAULTS,
)
def segflow_unpaid_reminders():
    @task(pool=WAREHOUSE_POOL)
    def remind_unpaid_orders(**context) -> dict:
        from transforms.actions import unpaid_reminders

        at = context.get("logical_date") or context["dag_run"].run_after
        return {"at": at.isoformat(), "reminders": unpaid_reminders(segflow_settings(), at)}

    remind_unpaid_orders()


segflow_unpaid_reminders()
