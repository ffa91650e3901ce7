"""
### segflow pack exports

After every publish, exports each audience pack marked `schedule: daily` in packs.yml: the members
file, its manifest and a row in `audience_pack_exports`. Suppressed and held-out customers are
never written to the file.
"""

from __future__ import annotations

from airflow.sdk import dag, task
from segflow_airflow import DAG_DEFAULTS, PUBLISHED, WAREHOUSE_POOL, segflow_settings


@dag(
    schedule=[PUBLISHED],
    doc_md=__doc__,
    **DAG_DEFAULTS,
)
def segflow_pack_exports():
    @task(pool=WAREHOUSE_POOL)
    def export_scheduled_packs() -> list[dict]:
        from transforms.packs import export, scheduled_packs

        settings = segflow_settings()
        results = [export(settings, pack) for pack in scheduled_packs(settings)]
        # Counts only: identifiers never reach the logs.
        return [{"export_id": r.export_id, "members": r.members, "holdout": r.holdout} for r in results]

    export_scheduled_packs()


segflow_pack_exports()
