"""The files of a Spark warehouse (transforms/engines/spark_store.py): catalog files replaced whole,
and replaced table versions deleted only once no reader can still be reading them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time

from tests.conftest import cli, write_config
from transforms.engines.spark_store import Store
from transforms.settings import Settings


def _version(store: Store, folder: str, age_seconds: float) -> None:
    path = store.root / folder
    path.mkdir(parents=True)
    (path / "part-0.parquet").write_bytes(b"")
    then = time.time() - age_seconds
    os.utime(path, (then, then))


def test_a_catalog_file_is_replaced_whole(tmp_path):
    store = Store(tmp_path)
    assert store.read("published") == {"tables": {}}
    store.write(
        "published", {"tables": {"pub.a": {"kind": "table", "segments": [{"path": "tables/pub/a/1"}]}}}
    )
    store.write(
        "published", {"tables": {"pub.b": {"kind": "table", "segments": [{"path": "tables/pub/b/2"}]}}}
    )
    assert list(store.read("published")["tables"]) == ["pub.b"]
    assert sorted(p.name for p in store.catalog_dir.iterdir()) == ["published.json"]  # no partial file left
    assert json.loads((store.catalog_dir / "published.json").read_text())["tables"]["pub.b"]


def test_replaced_versions_go_only_after_the_grace_period_and_named_ones_never(tmp_path):
    store = Store(tmp_path)
    named_old = "tables/pub/a/1-named"
    _version(store, named_old, age_seconds=7200)
    _version(store, "tables/pub/a/2-replaced-long-ago", age_seconds=7200)
    _version(store, "tables/pub/a/3-replaced-just-now", age_seconds=10)
    store.write("work", {"tables": {"pub.a": {"kind": "table", "segments": [{"path": named_old}]}}})
    store.collect_garbage(keep_seconds=3600)
    left = sorted(p.name for p in (tmp_path / "tables" / "pub" / "a").iterdir())
    assert left == ["1-named", "3-replaced-just-now"]


def test_temp_tables_of_killed_sessions_are_removed(tmp_path):
    store = Store(tmp_path)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (store.scratch_dir / f"{dead.pid}-abcd1234" / "stg_x").mkdir(parents=True)
    (store.scratch_dir / f"{os.getpid()}-abcd1234" / "stg_x").mkdir(parents=True)
    store.collect_garbage(keep_seconds=3600)
    assert [p.name for p in store.scratch_dir.iterdir()] == [f"{os.getpid()}-abcd1234"]


def test_a_spark_connect_url_says_what_is_missing_in_one_line(tmp_path):
    """sc://HOST:PORT needs the shared folder, and a server that answers; neither waits for minutes."""
    folder = write_config(tmp_path / "config", {})
    without_path = cli(Settings.load(folder, "sc://127.0.0.1:15002"), "tags", "report")
    assert without_path.returncode == 1
    assert without_path.stderr.strip().splitlines() == [
        f"segflow: warehouse URL 'sc://127.0.0.1:15002' needs warehouse.spark_path in {folder / 'settings.yml'}: "
        "the folder where segflow keeps its tables, seen at the same path by the Spark Connect server and by "
        "this machine"
    ]
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    write_config(folder, {"warehouse": {"spark_path": str(tmp_path / "shared")}})
    started = time.monotonic()
    unreachable = cli(
        Settings.load(folder, f"sc://127.0.0.1:{port}/;token=secret"), "build", "--as-of", "2026-07-01"
    )
    assert time.monotonic() - started < 30
    assert unreachable.returncode == 1
    (line,) = unreachable.stderr.strip().splitlines()
    assert line.startswith(f"segflow: could not reach the Spark Connect server at sc://127.0.0.1:{port} (")
    assert "secret" not in line
