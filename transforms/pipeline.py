"""What the Airflow tasks call: small wrappers that return JSON-able summaries for the logs/XCom."""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path

from transforms import PROJECT_ROOT
from transforms.build import run_step
from transforms.ingest import ingest_landing, summarize
from transforms.settings import Settings


def landing_dir() -> Path:
    return Path(os.environ.get("SEGFLOW_LANDING") or PROJECT_ROOT / "data" / "landing")


def ingest_for_run(settings: Settings, as_of: date) -> dict:
    """Load landing files dated before the run's business date."""
    until = (as_of - timedelta(days=1)).isoformat()
    results = ingest_landing(settings, landing_dir(), until)
    return {"as_of": as_of.isoformat(), "until": until, **summarize(results)}


def run_step_for_run(settings: Settings, as_of: date, step: str) -> dict:
    result = run_step(settings, as_of, step)
    summary = {
        "as_of": as_of.isoformat(),
        "step": step,
        "models": {run.name: run.rows for run in result.runs},
        "seconds": round(sum(result.step_seconds.values()), 2),
    }
    removed = {run.relation: run.removed_snapshots for run in result.runs if run.removed_snapshots}
    if removed:  # history.keep_daily_days: the snapshot dates this run deleted, in the task log
        summary["removed_snapshots"] = removed
    if result.warnings:
        summary["warnings"] = result.warnings
    if step == "checks":
        summary["failed_checks"] = [c for c in result.checks if not c["success"]]
    return summary
