"""Every DAG file imports, carries the approved tags, retries, and writes through the one-slot pool."""

from __future__ import annotations

import pytest
from airflow.dag_processing.dagbag import DagBag

from tests.dags.conftest import PROJECT_ROOT

EXPECTED_DAGS = {"segflow_ingest", "segflow_customers", "segflow_pack_exports", "segflow_unpaid_reminders"}


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=str(PROJECT_ROOT / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_the_project_dags_are_there(dagbag):
    assert set(dagbag.dags) == EXPECTED_DAGS


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAGS))
def test_tags_retries_and_pool(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert "segflow" in dag.tags
    assert dag.max_active_runs == 1 and dag.doc_md
    for task in dag.tasks:
        assert task.retries >= 2, task.task_id
        assert task.pool == "segflow_warehouse", task.task_id


def test_customer_pipeline_order(dagbag):
    dag = dagbag.dags["segflow_customers"]
    order = ["staging", "identity", "features", "segments", "tags", "insights", "checks", "publish"]
    for upstream, downstream in zip(order, order[1:], strict=False):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}
