"""The pack export DAG through a real Airflow: members reach the webhook, and no log holds a phone."""

from __future__ import annotations

import threading
from datetime import date
from http.server import ThreadingHTTPServer

import pytest
import yaml

from tests.conftest import load_feature_fixture, write_config
from tests.webhook_receiver import SECRET, Receiver, readme_verifier
from transforms.airflow_runner import airflow_env, dags_test, prepare
from transforms.build import build
from transforms.settings import Settings

PHONES = ("13900000001", "13900000002", "13900000003")


@pytest.mark.slow
def test_export_dag_delivers_members_and_logs_no_identifier(tmp_path):
    config = write_config(tmp_path / "config", {"identity": {"max_links_per_identifier": 3}})
    settings = Settings.load(config, f"duckdb:///{tmp_path / 'wh' / 'segflow.duckdb'}")
    load_feature_fixture(settings)
    build(settings, date(2026, 3, 10), run_checks=False)

    Receiver.secret, Receiver.token, Receiver.fail_first = SECRET.encode(), None, 0
    Receiver.requests, Receiver.applied, Receiver.verifier = [], {}, readme_verifier()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    packs = {
        "buyers": {
            "where": "order_count >= 1",
            "contact_fields": ["phone", "unionid"],
            "schedule": "daily",
            "destination": {
                "type": "webhook",
                "url": f"http://127.0.0.1:{server.server_port}/members",
                "secret_env": "SEGFLOW_WEBHOOK_SECRET",
            },
        }
    }
    (config / "packs.yml").write_text(yaml.safe_dump({"packs": packs}), encoding="utf-8")
    home = tmp_path / "airflow_home"
    env = airflow_env(
        home,
        {
            "SEGFLOW_WAREHOUSE": settings.warehouse_url,
            "SEGFLOW_CONFIG": str(config),
            "SEGFLOW_WEBHOOK_SECRET": SECRET,
        },
    )
    try:
        log = prepare(home, env)
        assert dags_test("segflow_pack_exports", "2026-03-10", env, log) == "success", log.read_text()[-3000:]
    finally:
        server.shutdown()
    sent = [m["phone"] for batch in Receiver.applied.values() for m in batch]
    assert set(PHONES[:2]) <= set(sent)  # the phones did travel, to the receiver only
    # `airflow dags test` writes the task's log into the run's log; the metadata DB holds the XComs.
    task_log = log.read_text(encoding="utf-8")
    assert "Returned value was: [{'export_id': 'buyers-2026-03-10-1'" in task_log
    logs = [p for p in home.rglob("*") if p.is_file()]
    for path in logs:
        content = path.read_bytes()
        for value in (*PHONES, SECRET):
            assert value.encode() not in content, f"{value} in {path}"
