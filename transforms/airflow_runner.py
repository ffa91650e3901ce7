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


# What `segflow airflow` runs instead of `airflow standalone`: standalone's log servers listen on
# every address (no setting binds them), its components find `airflow` only on PATH, and stopping
# it left them running. The task logs are files under AIRFLOW_HOME that the API server reads itself.
COMPONENTS = {
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"


def serve(home: Path, env: dict[str, str], port: int = 8080) -> int:
    """The Airflow UI on 127.0.0.1:PORT with the project's DAGs, until Ctrl-C or SIGTERM.

    Every component runs in its own process group, so stopping takes its workers too; a component
    that dies stops the others and is named with its log.
    """
    import signal
    import time

    prepare(home, env)
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **env,
        "PATH": os.pathsep.join([bin_dir, env.get("PATH", "")]),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # One writer at a time (the segflow_warehouse pool); two workers are plenty on 2 cores.
        "AIRFLOW__CORE__PARALLELISM": env.get("AIRFLOW__CORE__PARALLELISM", "2"),
        "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
    }
    commands = {
        **COMPONENTS,
        "api-server": ["api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
    }
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    airflow = str(Path(bin_dir) / "airflow")
    processes: dict[str, subprocess.Popen] = {}
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for name, args in commands.items():
            with open(logs / f"{name}.log", "a", encoding="utf-8") as out:
                processes[name] = subprocess.Popen(
                    [airflow, *args], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
        passwords = home / "simple_auth_manager_passwords.json.generated"
        print(
            f"Airflow UI on http://127.0.0.1:{port} (user admin, password in {passwords} once the "
            f"API server is up); the DAGs start paused. Logs: {logs}. Ctrl-C stops everything.",
            flush=True,
        )
        while not stopping:
            dead = [name for name, process in processes.items() if process.poll() is not None]
            if dead:
                print(
                    f"segflow: airflow {dead[0]} exited with code {processes[dead[0]].returncode}; "
                    f"see {logs / (dead[0] + '.log')}",
                    file=sys.stderr,
                )
                return 1
            time.sleep(0.5)
        return 0
    finally:
        _stop_all(processes)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop_all(processes: dict[str, subprocess.Popen], grace_seconds: float = 20) -> None:
    """SIGTERM to every component's process group, then SIGKILL to what is left after the grace."""
    import signal
    import time

    def signal_groups(sig: int) -> None:
        for process in processes.values():
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                pass

    signal_groups(signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    for process in processes.values():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    signal_groups(signal.SIGKILL)  # the leaders' workers too, even where the leader has exited
    for process in processes.values():
        process.wait()
