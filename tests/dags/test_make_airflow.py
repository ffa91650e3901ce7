"""`make airflow` as a user runs it: the UI on 127.0.0.1 with our DAGs, and Ctrl-C stops everything."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str, token: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
        return json.loads(response.read())


def _token(base: str, home: Path) -> str:
    passwords = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())
    request = urllib.request.Request(
        f"{base}/auth/token",
        data=json.dumps({"username": "admin", "password": passwords["admin"]}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["access_token"]


@pytest.mark.slow
def test_make_airflow_serves_the_dags_on_loopback_and_ctrl_c_leaves_nothing(tmp_path):
    port, home = _free_port(), tmp_path / "airflow_home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["SEGFLOW_WAREHOUSE"] = f"duckdb:///{tmp_path / 'wh' / 'segflow.duckdb'}"
    make = subprocess.Popen(
        ["make", "--no-print-directory", "airflow", f"AIRFLOW_PORT={port}", f"AIRFLOW_HOME_DIR={home}"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own terminal-like process group, for the Ctrl-C below
    )
    base = f"http://127.0.0.1:{port}"
    seen: set[psutil.Process] = set()
    try:
        deadline, dags = time.monotonic() + 240, None
        while time.monotonic() < deadline and make.poll() is None:
            seen |= set(psutil.Process(make.pid).children(recursive=True))
            try:
                token = _token(base, home)
                dags = _get(f"{base}/api/v2/dags", token)
                if dags["total_entries"] >= 4:
                    break
            except (OSError, KeyError, ValueError):
                pass
            time.sleep(2)
        assert make.poll() is None, make.stdout.read()
        assert dags and sorted(d["dag_id"] for d in dags["dags"]) == [
            "segflow_customers",
            "segflow_ingest",
            "segflow_pack_exports",
            "segflow_unpaid_reminders",
        ]
        assert all(d["is_paused"] for d in dags["dags"])
        assert _get(f"{base}/api/v2/importErrors", token)["total_entries"] == 0
        seen |= set(psutil.Process(make.pid).children(recursive=True))
        listening = {
            (c.laddr.ip, c.laddr.port)
            for c in psutil.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.pid in {p.pid for p in seen}
        }
        assert listening and all(ip in ("127.0.0.1", "::1") for ip, _ in listening), listening
    finally:
        os.killpg(make.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
        make.wait(timeout=60)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(p.is_running() and p.status() != "zombie" for p in seen):
        time.sleep(0.5)
    left = [p.pid for p in seen if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"processes left after Ctrl-C: {left}"
