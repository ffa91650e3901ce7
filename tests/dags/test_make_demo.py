"""`make demo` and `make demo-postgres` as a user runs them: sample data through Airflow into the warehouse, with a
report, on a folder of the test's own (DEMO_DIR) and fewer orders. `make demo-spark`: tests/test_engines.py, whose
engine comparison reuses its warehouse."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import write_config
from transforms import PROJECT_ROOT
from transforms.engines import local_postgres, open_warehouse
from transforms.settings import Settings

pytestmark = pytest.mark.slow


def _make(target: str, folder: Path, env: dict, **variables: str) -> subprocess.CompletedProcess:
    assignments = [
        f"{key}={value}" for key, value in {"DEMO_ORDERS": "1500", "DEMO_DIR": folder, **variables}.items()
    ]
    return subprocess.run(
        ["make", "--no-print-directory", target, *assignments],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def assert_demo_published(settings: Settings, folder: Path, output: str) -> None:
    assert "5/5 done" in output, output[-3000:]
    assert (folder / "reports" / "segflow_report.html").exists()
    with open_warehouse(settings).read() as con:
        customers = con.scalar("select count(*) from customer_features")
        segmented = con.scalar("select count(distinct customer_key) from customer_segments")
        cross_sell = con.scalar("select count(*) from action_cross_sell")
        affinities = con.scalar("select count(*) from category_affinity where buyers_of_both >= 5")
    assert customers > 100 and segmented == customers
    assert cross_sell > 0 and "cross-sell after a durable purchase (action_cross_sell)" in output
    assert affinities > 0  # the report shows the top pairs


def test_make_demo(tmp_path):
    url = f"duckdb:///{tmp_path / 'warehouse' / 'segflow.duckdb'}"
    done = _make("demo", tmp_path, {**os.environ, "SEGFLOW_WAREHOUSE": url})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert_demo_published(Settings.load(warehouse_url=url), tmp_path, done.stdout)


@pytest.mark.postgres
def test_make_demo_postgres_starts_a_local_server_runs_the_demo_and_stops_it(postgres_server):
    # A folder the postgres user can enter (the server runs as that user when we are root).
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="segflow-demo-pg-"))
    os.chmod(folder, 0o755)
    config = write_config(folder / "config", {"warehouse": {"files_dir": str(folder / "files")}})
    env = {key: value for key, value in os.environ.items() if key != "SEGFLOW_WAREHOUSE"}
    env["SEGFLOW_CONFIG"] = str(config)
    done = _make("demo-postgres", folder, env, PG_DIR=folder / "pg")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "PostgreSQL: postgresql+psycopg://segflow@127.0.0.1:" in done.stdout
    data = folder / "pg" / "data"
    assert not (data / "postmaster.pid").exists()  # stopped when the demo ended
    url = local_postgres.start(folder / "pg")  # what `make postgres-up` does
    try:
        assert url in done.stdout  # the same URL as during the demo
        assert_demo_published(Settings.load(config, url), folder, done.stdout)
        assert (folder / "files" / "data_docs" / "index.html").exists()
    finally:
        local_postgres.stop(folder / "pg")
