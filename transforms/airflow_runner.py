"""Run the project's DAGs through a real Airflow 3 in an isolated AIRFLOW_HOME (demo and tests).

`airflow dags test` needs a migrated metadata DB and serialized DAGs; this sets both up once per
home and keeps Airflow's verbose output in a log file, printing one line per DAG run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from transforms import PROJECT_ROOT
from transforms.errors import SegflowError


def airflow_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT / "plugins"), str(PROJECT_ROOT)]),
        }
    )
    env.update(extra or {})
    return env


def _airflow(args: list[str], env: dict[str, str], log: Path) -> subprocess.CompletedProcess:
    airflow = Path(sys.executable).with_name("airflow")
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(f"\n$ airflow {' '.join(args)}\n")
        handle.flush()
        return subprocess.run(
            [str(airflow), *args], env=env, stdout=handle, stderr=subprocess.STDOUT, check=False
        )


def prepare(home: Path, env: dict[str, str]) -> Path:
    """Migrate the metadata DB, serialize the DAGs and create the one-writer pool (idempotent)."""
    home.mkdir(parents=True, exist_ok=True)
    log = home / "segflow-airflow.log"
    for args in (
        ["db", "migrate"],
        ["dags", "reserialize"],
        ["pools", "set", "segflow_warehouse", "1", "DuckDB: one writer"],
    ):
        if _airflow(args, env, log).returncode != 0:
            raise SegflowError(f"`airflow {' '.join(args)}` failed; see {log}")
    return log


def dags_test(dag_id: str, logical_date: str, env: dict[str, str], log: Path) -> str:
    """Run one DAG for one logical date in-process (`airflow dags test`); return its final state."""
    _airflow(["dags", "test", dag_id, logical_date], env, log)
    airflow = Path(sys.executable).with_name("airflow")
    listing = subprocess.run(
        [str(airflow), "dags", "list-runs", dag_id, "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"^\[.*\]$", listing.stdout, re.MULTILINE)
    runs = json.loads(match.group(0)) if match else []
    wanted = [r for r in runs if str(r.get("logical_date", "")).startswith(logical_date)]
    wanted.sort(key=lambda r: r.get("run_after") or "")
    return wanted[-1]["state"] if wanted else "unknown"


def standalone(home: Path, env: dict[str, str]) -> None:
    """`airflow standalone` on 127.0.0.1 with the project's DAGs (replaces this process)."""
    prepare(home, env)
    env = {
        **env,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": env.get("AIRFLOW__API__PORT", "8080"),
    }
    airflow = Path(sys.executable).with_name("airflow")
    print(
        f"Airflow UI on http://127.0.0.1:{env['AIRFLOW__API__PORT']} (admin password: {home}/simple_auth_manager_passwords.json.generated)"
    )
    os.execve(str(airflow), [str(airflow), "standalone"], env)
