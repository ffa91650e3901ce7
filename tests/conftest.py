"""Shared fixtures: a throwaway warehouse and config folder per test."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from transforms import PROJECT_ROOT
from transforms.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"
# A BI tool reading in a loop during builds, run as its own process (tests/bi_reader.py).
BI_READER = str(Path(__file__).parent / "bi_reader.py")


# Spark at the size of these tests: two local cores, and no code generation (it compiles each query
# for longer than the query runs on a few thousand rows).
SPARK_TEST_SETTINGS = {
    "warehouse": {
        "spark_master": "local[2]",
        "spark_shuffle_partitions": 2,
        "spark_conf": {
            "spark.sql.codegen.wholeStage": "false",
            "spark.sql.codegen.factoryMode": "NO_CODEGEN",
        },
    }
}


# `make demo-spark` run once per session, in the background from the first test that asks: the demo
# test asserts what a user sees, the engine comparison and the Spark fault tests reuse its warehouse
# (a Spark build costs minutes whatever its size, and DuckDB and PostgreSQL build meanwhile).
SPARK_DEMO_ORDERS = 1500


@dataclass
class SparkDemo:
    folder: Path  # DEMO_DIR: landing files under data/landing, the report under reports/
    settings: Settings
    process: subprocess.Popen
    _done: subprocess.CompletedProcess | None = None

    def landing(self) -> Path:
        """The demo's landing folder, once the demo has generated it (its step 2 has begun)."""
        deadline = time.monotonic() + 600
        while "2/5 " not in (self.folder / "demo.out").read_text(encoding="utf-8"):
            if self.process.poll() is not None:
                self.finished()  # it ended early: its output says why
            assert time.monotonic() < deadline, "the Spark demo generated no landing files in 10 minutes"
            time.sleep(0.5)
        return self.folder / "data" / "landing"

    def finished(self) -> subprocess.CompletedProcess:
        """The demo's run once it ended (it must have succeeded)."""
        if self._done is None:
            returncode = self.process.wait(timeout=1800)
            self._done = subprocess.CompletedProcess(
                self.process.args,
                returncode,
                (self.folder / "demo.out").read_text(encoding="utf-8"),
                (self.folder / "demo.err").read_text(encoding="utf-8"),
            )
        assert self._done.returncode == 0, self._done.stdout[-3000:] + self._done.stderr[-3000:]
        return self._done


@pytest.fixture(scope="session")
def spark_demo(tmp_path_factory) -> Iterator[SparkDemo]:
    folder = tmp_path_factory.mktemp("spark_demo")
    config = write_config(folder / "config", SPARK_TEST_SETTINGS)
    env = {key: value for key, value in os.environ.items() if key != "SEGFLOW_WAREHOUSE"}
    env["SEGFLOW_CONFIG"] = str(config)
    env["PYTHONUNBUFFERED"] = "1"  # its progress lines reach demo.out as they are printed
    command = [
        "make",
        "--no-print-directory",
        "demo-spark",
        f"DEMO_ORDERS={SPARK_DEMO_ORDERS}",
        f"DEMO_DIR={folder}",
        f"SPARK_DIR={folder / 'spark'}",
    ]
    with open(folder / "demo.out", "w") as out, open(folder / "demo.err", "w") as err:
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=err, text=True, start_new_session=True
        )
    demo = SparkDemo(folder, Settings.load(config, f"spark:///{folder / 'spark'}"), process)
    try:
        yield demo
    finally:
        if process.poll() is None:  # the session ended early: the demo and what it started go too
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def write_config(folder: Path, settings_overrides: dict | None = None) -> Path:
    """A brand's own config folder: the shipped YAML files plus settings overrides."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("tags.yml", "segments.yml", "packs.yml"):
        shipped = PROJECT_ROOT / "config" / name
        if shipped.exists():
            shutil.copy(shipped, folder / name)
    (folder / "settings.yml").write_text(
        yaml.safe_dump(settings_overrides or {}, allow_unicode=True), encoding="utf-8"
    )
    return folder


@pytest.fixture
def make_settings(tmp_path: Path):
    def make(overrides: dict | None = None, name: str = "wh") -> Settings:
        config = write_config(tmp_path / f"config_{name}", overrides)
        url = f"duckdb:///{tmp_path / name / 'segflow.duckdb'}"
        return Settings.load(config, url)

    return make


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server for the session (initdb + pg_ctl on a free loopback port);
    yields a function that makes a fresh database on it and returns its warehouse URL."""
    from transforms.engines import local_postgres

    try:
        local_postgres.binary("initdb")
    except Exception as exc:  # noqa: BLE001 - the message says what is missing
        if os.environ.get("CI"):
            raise  # make test installs PostgreSQL: CI must not skip these silently
        pytest.skip(str(exc))
    # Not under pytest's own temp folder: that is private to this user, and as root the server
    # runs as the postgres user, who must reach its folder.
    folder = Path(tempfile.mkdtemp(prefix="segflow-pg-"))
    url = local_postgres.start(folder)
    numbers = itertools.count()

    def new_database(copy_of: str | None = None) -> str:
        """A fresh database's URL; with `copy_of` (a URL from here), a copy of that one."""
        name = f"test_{next(numbers)}"
        local_postgres.create_database(folder, name, copy_of.rsplit("/", 1)[1] if copy_of else None)
        return url.rsplit("/", 1)[0] + f"/{name}"

    try:
        yield new_database
    finally:
        local_postgres.stop(folder)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def make_pg_settings(tmp_path: Path, postgres_server):
    def make(overrides: dict | None = None, name: str = "pg") -> Settings:
        overrides = dict(overrides or {})
        # Beside the test, not in the project's warehouse/ folder, whatever else the test sets.
        overrides["warehouse"] = {
            "files_dir": str(tmp_path / f"files_{name}"),
            **overrides.get("warehouse", {}),
        }
        config = write_config(tmp_path / f"config_{name}", overrides)
        return Settings.load(config, postgres_server())

    return make


@pytest.fixture
def settings(make_settings) -> Settings:
    return make_settings({"ingest": {"max_quarantine_share": 0.9}})


def write_csv(path: Path, header: str, *rows: str) -> Path:
    """A small landing CSV written in the test, for cases the shared fixtures do not hold."""
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def published_rows(settings: Settings, sql: str, params: list | None = None) -> list[tuple]:
    """Rows of the published tables, read as BI tools read them (the engine's reader)."""
    from transforms.engines import open_warehouse

    with open_warehouse(settings).read() as con:
        return con.execute(sql, params or []).fetchall()


def work_rows(settings: Settings, sql: str, params: list | None = None) -> list[tuple]:
    from transforms.engines import open_warehouse

    with open_warehouse(settings).work() as con:
        return con.execute(sql, params or []).fetchall()


def load_feature_fixture(settings: Settings) -> None:
    """The hand-checked customers of tests/fixtures/features (see its README)."""
    from transforms.ingest import ingest

    for kind in ("products", "contacts", "orders", "order_items", "events"):
        ingest(settings, [FIXTURES / "features" / f"{kind}.csv"], kind)


@pytest.fixture
def features_built(make_settings) -> Settings:
    """The features fixture built as of 2026-03-10, its shop phone junk (more than 3 links)."""
    from datetime import date

    from transforms.build import build

    settings = make_settings({"identity": {"max_links_per_identifier": 3}})
    load_feature_fixture(settings)
    build(settings, date(2026, 3, 10), run_checks=False)
    return settings


@pytest.fixture(scope="module")
def segments_built(tmp_path_factory) -> Settings:
    """The segment fixture's customers (tests/fixtures/segments) built as of 2026-03-10."""
    from datetime import date

    from transforms.build import build
    from transforms.ingest import ingest

    folder = tmp_path_factory.mktemp("segments")
    settings = Settings.load(write_config(folder / "config"), f"duckdb:///{folder / 'wh' / 'segflow.duckdb'}")
    for kind in ("contacts", "orders", "events"):
        ingest(settings, [FIXTURES / "segments" / f"{kind}.csv"], kind)
    build(settings, date(2026, 3, 10), run_checks=False)
    return settings


def cli(settings, *args, failpoint: str | None = None, wait: bool = True):
    env = {
        **os.environ,
        "SEGFLOW_WAREHOUSE": settings.warehouse_url,
        "SEGFLOW_CONFIG": str(settings.config_dir),
    }
    env.pop("SEGFLOW_FAILPOINT", None)
    if failpoint:
        env["SEGFLOW_FAILPOINT"] = failpoint
    command = [sys.executable, "-m", "transforms.cli", *args]
    if not wait:
        return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False)


def assert_an_error_blocks_publish_and_a_warning_does_not(settings, expectation: dict, before, after) -> None:
    """A brand suite with one failing expectation: as an error it stops the build as of `after`
    (readers keep `before`); as a warning the build publishes."""
    from transforms.build import build
    from transforms.errors import SegflowError

    suites = settings.config_dir / "expectations"
    suites.mkdir(exist_ok=True)
    name = expectation.get("name") or f"{expectation['type']}:{expectation['table']}.{expectation['column']}"
    for severity in ("error", "warning"):
        suite = {"suite": "brand", "expectations": [{**expectation, "severity": severity}]}
        (suites / "brand.yml").write_text(yaml.safe_dump(suite), encoding="utf-8")
        if severity == "error":
            with pytest.raises(SegflowError, match=f"data-quality error.*{re.escape(name)}"):
                build(settings, after)
        else:
            build(settings, after)
        published = published_rows(settings, "select distinct as_of_date from customer_features")
        assert published == [(before if severity == "error" else after,)]


def killed_publish_hands_its_date_to_the_next_build(settings, earlier: list, killed_date, next_date) -> dict:
    """A build killed before its publish's swap leaves the history tables' published dates as they
    were (`earlier`); the next build publishes its date and the killed one. Returns its publish modes."""
    from transforms.build import build

    killed = cli(settings, "build", "--as-of", killed_date.isoformat(), failpoint="publish:before_swap")
    assert killed.returncode == 137, killed.stderr
    history_dates = "select distinct as_of_date from customer_features_history order by 1"
    assert published_rows(settings, history_dates) == [(day,) for day in earlier]
    modes = build(settings, next_date).publish_modes
    assert published_rows(settings, history_dates) == [(day,) for day in [*earlier, killed_date, next_date]]
    assert modes["customer_features_history"] == "appended"
    assert modes["customer_features"] == "built"
    return modes


def kill_builds_then_retry(
    settings, as_of, points=("after:customer_features", "after:customer_tags", "publish:before_swap")
):
    """A build as of `as_of` killed at each failpoint leaves the published tables as they were;
    returns the finished retry."""
    from tests.published import published_tables

    before = published_tables(settings)
    for point in points:
        killed = cli(settings, "build", "--as-of", as_of.isoformat(), failpoint=point)
        assert killed.returncode == 137, (point, killed.stderr)
        assert published_tables(settings) == before, point
    retried = cli(settings, "build", "--as-of", as_of.isoformat())
    assert retried.returncode == 0, retried.stderr
    return retried


def pytest_collection_modifyitems(items):
    """The engine comparison first: it waits on the Spark demo, the suite's longest chain, which
    then runs beside the other files (make test runs files in parallel)."""
    items.sort(key=lambda item: item.path.name != "test_engines.py")
