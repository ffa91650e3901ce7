"""Faults: killed builds and ingests, reruns, data-quality stops, bad inputs, readers during a build."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from tests.conftest import (
    BI_READER,
    assert_an_error_blocks_publish_and_a_warning_does_not,
    cli,
    kill_builds_then_retry,
    killed_publish_hands_its_date_to_the_next_build,
    published_rows,
    work_rows,
)
from tests.published import published_tables
from transforms.build import build
from transforms.engines import open_warehouse
from transforms.errors import SegflowError
from transforms.generate import generate
from transforms.ingest import ingest, ingest_landing
from transforms.quality import data_docs_dir

D1, D2 = date(2026, 6, 1), date(2026, 6, 15)


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("faults_landing")
    generate(folder, orders=6_000, days=60, last_day=date(2026, 6, 20), seed=3)
    return folder


@pytest.fixture
def warehouse_at_d1(make_settings, landing):
    settings = make_settings()
    ingest_landing(settings, landing)
    build(settings, D1)
    return settings


def test_killed_build_leaves_readers_intact_and_the_retry_is_exact(warehouse_at_d1, make_settings, landing):
    retried = kill_builds_then_retry(warehouse_at_d1, D2)
    assert re.search(
        r"^steps: staging [\d.]+ s, identity .*, publish [\d.]+ s; total [\d.]+ s$", retried.stdout, re.M
    )
    clean = make_settings(name="clean")
    ingest_landing(clean, landing)
    build(clean, D1)
    build(clean, D2)
    assert published_tables(warehouse_at_d1) == published_tables(clean)


def test_each_history_date_is_written_once_and_publish_copies_no_table(warehouse_at_d1):
    """A build's tables are written in the next file, which publish renames into place; a history
    table is a view over one Parquet file per as-of date, written when that date is built and never
    again. So publishing copies nothing and does not grow with the dates kept. A publish killed
    before its swap hands its dates to the next one."""
    d3, d4 = date(2026, 6, 16), date(2026, 6, 18)
    build(warehouse_at_d1, D2)
    history = open_warehouse(warehouse_at_d1).history_dir / "customer_features_history"
    written_by_d2 = {path.name: path.stat().st_mtime_ns for path in history.glob("*.parquet")}
    assert len(written_by_d2) == 2  # D1 and D2
    modes = killed_publish_hands_its_date_to_the_next_build(warehouse_at_d1, [D1, D2], d3, d4)
    assert modes["customer_tags_history"] == "appended"
    files = {path.name: path.stat().st_mtime_ns for path in history.glob("*.parquet")}
    assert len(files) == 4
    assert {name: files[name] for name in written_by_d2} == written_by_d2  # never rewritten
    published = open_warehouse(warehouse_at_d1).published_path
    with open_warehouse(warehouse_at_d1).read() as reader:
        kinds = dict(
            reader.execute(
                "select table_name, table_type from information_schema.tables where table_catalog = 'pub'"
            ).fetchall()
        )
    assert kinds["customer_features_history"] == "VIEW" and kinds["customer_features"] == "BASE TABLE"
    assert not published.with_name(published.stem + ".next.duckdb").exists()
    assert_published_equals_work(warehouse_at_d1)


def assert_published_equals_work(settings) -> None:
    """Every published table holds the work file's rows."""
    with open_warehouse(settings).work() as con:
        con.execute(f"attach '{open_warehouse(settings).published_path}' as published (read_only)")
        tables = [
            row[0]
            for row in con.execute(
                "select table_name from information_schema.tables where table_catalog = 'published' "
                "and table_schema = 'main' order by 1"
            ).fetchall()
        ]
        assert "customer_tags_history" in tables
        for table in tables:
            differing = con.execute(
                f"select (select count(*) from (select * from pub.{table} except all "
                f"select * from published.main.{table})), (select count(*) from (select * from "
                f"published.main.{table} except all select * from pub.{table}))"
            ).fetchone()
            assert differing == (0, 0), table


SNAPSHOT_HISTORIES = (
    "customer_features_history",
    "customer_identifiers_history",
    "customer_monthly_spend_history",
    "customer_segments_history",
    "customer_tags_history",
)


def test_snapshot_histories_keep_recent_dates_and_month_starts(make_settings, landing):
    """history.keep_daily_days: per-customer snapshots older than that before the newest date go,
    except the first of each month, the date being built and the one before it; change logs keep
    every date."""
    settings = make_settings({"history": {"keep_daily_days": 3}})
    ingest_landing(settings, landing)
    built = [date(2026, 6, d) for d in (1, 2, 10, 12, 14)]
    for day in built:
        build(settings, day, run_checks=False)

    def dates(table: str) -> list[date]:
        return [
            row[0] for row in published_rows(settings, f"select distinct as_of_date from {table} order by 1")
        ]

    # Newest 14 June: 11-14 June kept, 1 June as a month start; 2 June went when 10 June was built.
    kept = [date(2026, 6, 1), date(2026, 6, 12), date(2026, 6, 14)]
    for table in SNAPSHOT_HISTORIES:
        assert dates(table) == kept, table
    assert dates("segment_summary_history") == built
    assert dates("customer_tag_history") == built
    assert_published_equals_work(settings)

    # A backfill of an old date is kept until the next build, and its change log compares with the
    # newest date kept before it (1 June).
    build(settings, date(2026, 6, 5), run_checks=False)
    assert dates("customer_features_history") == sorted([*kept, date(2026, 6, 5)])
    first_run_gained = published_rows(
        settings,
        "select count(*) from customer_tag_history where as_of_date = date '2026-06-05' and change = 'gained'",
    )
    assert first_run_gained == published_rows(
        settings,
        "select count(*) from (select customer_key, tag_group, tag from customer_tags_history "
        "where as_of_date = date '2026-06-05' except select customer_key, tag_group, tag "
        "from customer_tags_history where as_of_date = date '2026-06-01')",
    )
    removed = {
        run.name: run.removed_snapshots
        for run in build(settings, date(2026, 6, 15), run_checks=False).runs
        if run.removed_snapshots
    }
    # The junk list is a snapshot history too, with rows only on dates that had junk.
    assert removed == dict.fromkeys(
        (*SNAPSHOT_HISTORIES, "identity_junk_identifiers_history"), ["2026-06-05"]
    )
    assert dates("customer_features_history") == [
        date(2026, 6, 1),
        date(2026, 6, 12),
        date(2026, 6, 14),
        date(2026, 6, 15),
    ]

    # After a gap longer than the window, the previous run date stays for the change logs to compare with.
    # The build names what it removed (an upgrade's first build removes old daily snapshots).
    built_late = cli(settings, "build", "--as-of", "2026-06-30")
    assert built_late.returncode == 0, built_late.stderr
    assert re.search(
        r"^  pub\.customer_features_history .*\n    removed snapshots as of 2026-06-12, 2026-06-14 "
        r"\(history\.keep_daily_days in settings\.yml\)$",
        built_late.stdout,
        re.M,
    )
    assert dates("customer_features_history") == [date(2026, 6, 1), date(2026, 6, 15), date(2026, 6, 30)]
    assert published_rows(
        settings,
        "select count(*) from customer_tag_history where as_of_date = date '2026-06-30' and change = 'lost'",
    ) == published_rows(
        settings,
        "select count(*) from (select customer_key, tag_group, tag from customer_tags_history "
        "where as_of_date = date '2026-06-15' except select customer_key, tag_group, tag "
        "from customer_tags_history where as_of_date = date '2026-06-30')",
    )
    assert_published_equals_work(settings)


def test_history_keep_daily_days_must_be_a_number_of_days(make_settings):
    settings = make_settings({"history": {"keep_daily_days": "a month"}})
    with pytest.raises(SegflowError, match=r"settings.yml: history.keep_daily_days must be a whole number"):
        build(settings, D1, run_checks=False)


def test_killed_right_after_the_swap_readers_see_the_new_tables_and_the_retry_changes_nothing(
    warehouse_at_d1, make_settings, landing
):
    # The last moment a build can die: the new file is in place, its bookkeeping not yet cleared.
    killed = cli(warehouse_at_d1, "build", "--as-of", D2.isoformat(), failpoint="publish:after_swap")
    assert killed.returncode == 137, killed.stderr
    clean = make_settings(name="clean")
    ingest_landing(clean, landing)
    build(clean, D1)
    build(clean, D2)
    assert published_tables(warehouse_at_d1) == published_tables(clean)
    assert cli(warehouse_at_d1, "build", "--as-of", D2.isoformat()).returncode == 0
    assert published_tables(warehouse_at_d1) == published_tables(
        clean
    )  # rerunning a finished date changes nothing
    assert_published_equals_work(warehouse_at_d1)


def test_killed_ingest_loads_nothing_twice(make_settings, landing):
    settings = make_settings()
    killed = cli(
        settings, "ingest", str(landing / "orders"), "--kind", "orders", failpoint="ingest:before_commit"
    )
    assert killed.returncode == 137
    with open_warehouse(settings).work() as con:
        assert con.execute("select count(*) from raw.orders").fetchall() == [(0,)]
    assert cli(settings, "ingest", str(landing / "orders"), "--kind", "orders").returncode == 0
    again = cli(settings, "ingest", str(landing / "orders"), "--kind", "orders", "--json")
    assert json.loads(again.stdout)["rows_loaded"] == 0
    loaded = work_rows(settings, "select count(*), count(distinct _file || ':' || _line) from raw.orders")
    assert loaded[0][0] == loaded[0][1] > 0


def test_data_quality_error_stops_publish_and_warning_does_not(warehouse_at_d1):
    expectation = {
        "name": "no_customer_spends_over_1000",
        "type": "metric",
        "sql": "select max(total_spend) from pub.customer_features",
        "max": 1000,
    }
    assert_an_error_blocks_publish_and_a_warning_does_not(warehouse_at_d1, expectation, D1, D2)
    assert published_rows(
        warehouse_at_d1, "select success from dq_results where expectation = 'no_customer_spends_over_1000'"
    ) == [(False,)]
    # GE's data docs hold both runs of D2 (the refused one and the published one) for the brand suite.
    pages = sorted(
        (data_docs_dir(warehouse_at_d1) / "validations" / "brand" / D2.isoformat()).glob("*/segflow.html")
    )
    assert len(pages) == 2
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert "no_customer_spends_over_1000" in html and "Failed" in html
    index = data_docs_dir(warehouse_at_d1) / "index.html"
    # Self-contained (offline, or where GE's CDNs are blocked): no script and no fetched asset, and
    # the index lists the runs in a static table (GE fills it by script from its CDNs).
    for page in (index, *pages):
        html = page.read_text(encoding="utf-8")
        assert "<script" not in html, page
        assert not re.search(r'<(?:link|img)\b[^>]*\b(?:src|href)="https?://', html), page
    brand_runs = re.findall(
        rf'<tr><td class="segflow-(\w+)">\w+</td><td>[^<]+</td><td>{D2}</td><td>[^<]+</td>'
        rf'<td><a href="validations/brand/{D2}/[^"]+/segflow.html">brand</a></td></tr>',
        index.read_text(encoding="utf-8"),
    )
    assert brand_runs == ["failed", "failed"]


def test_a_reader_in_a_loop_never_errors_or_waits_during_builds(warehouse_at_d1, landing):
    path = str(open_warehouse(warehouse_at_d1).published_path)
    reader = subprocess.Popen(
        [sys.executable, BI_READER, "duckdb", path, "25"], stdout=subprocess.PIPE, text=True
    )
    time.sleep(1)
    for day in (D2, date(2026, 6, 16), D2):
        build(warehouse_at_d1, day)
    ingest(warehouse_at_d1, [landing / "orders"], "orders")
    out, _ = reader.communicate(timeout=120)
    stats = json.loads(out)
    assert stats["errors"] == 0, stats["messages"]
    assert stats["inconsistent"] == 0
    # DuckDB refuses a lock at once rather than waiting, so a blocked reader shows up in errors;
    # the time bound only catches a hang, and is loose because a loaded 2-core CI box stalls
    # processes for over a second.
    assert stats["reads"] > 20 and stats["slowest"] < 10.0, stats


def test_bad_inputs_get_clear_errors_and_lose_nothing(warehouse_at_d1, tmp_path):
    before = work_rows(warehouse_at_d1, "select count(*) from raw.orders")[0][0]
    changed_type = tmp_path / "orders_amount_text.csv"
    changed_type.write_text(
        "order_id,created_at,status,amount,phone\n"
        + "".join(f"T{n},2026-06-10T10:00:00+08:00,paid,about {n} yuan,1390000{n:04d}\n" for n in range(10))
    )
    with pytest.raises(
        SegflowError, match=r"orders_amount_text\.csv: 10 of 10 rows are bad.*field amount.*not a number"
    ):
        ingest(warehouse_at_d1, [changed_type], "orders")
    negative_refund = tmp_path / "orders_negative_refund.csv"
    negative_refund.write_text(
        "order_id,created_at,status,amount,refund_amount,phone\n"
        "N1,2026-06-10T10:00:00+08:00,partially_refunded,100,-5,13900009999\n"
        "N2,2026-06-10T11:00:00+08:00,paid,100,,13900009998\n"
        "N3,2026-06-10T12:00:00+08:00,paid,100,,13900009997\n"
        "N4,2026-06-10T13:00:00+08:00,paid,100,,13900009996\n"
        "N5,2026-06-10T14:00:00+08:00,paid,100,,13900009995\n"
    )
    [result] = ingest(warehouse_at_d1, [negative_refund], "orders")
    assert result.rows_quarantined == 1
    assert published_rows(
        warehouse_at_d1,
        "select line, field, reason from ingest_quarantine where file like '%negative_refund%'",
    ) == [(2, "refund_amount", "negative value")]
    header_only = tmp_path / "orders_header_only.csv"
    header_only.write_text("order_id,created_at,status,amount,phone\n")
    [empty] = ingest(warehouse_at_d1, [header_only], "orders")
    assert (empty.rows_read, empty.rows_loaded) == (0, 0)
    unknown_customer = tmp_path / "orders_unknown_member.csv"
    unknown_customer.write_text(
        "order_id,created_at,status,amount,member_id\nU1,2026-06-10T10:00:00+08:00,paid,66,M-NEW-1\n"
    )
    ingest(warehouse_at_d1, [unknown_customer], "orders")
    assert work_rows(warehouse_at_d1, "select count(*) from raw.orders")[0][0] == before + 4 + 1
    build(warehouse_at_d1, D2)
    newcomer = published_rows(
        warehouse_at_d1,
        "select f.order_count, f.contact_records from customer_features as f join customer_identifiers as i "
        "using (customer_key) where i.id_value = 'M-NEW-1'",
    )
    assert newcomer == [(1, 0)]  # an order from someone we never met is a new customer, not an error


def test_a_warehouse_of_the_earlier_layout_is_converted_and_builds_as_a_new_one(
    warehouse_at_d1, make_settings, landing
):
    """Earlier versions kept the next tables in the work file's schema pub and the histories as
    tables inside the published file. Such a warehouse, made here from one built as of D1, builds
    D2 into the same published tables as a warehouse that never had that layout."""
    import duckdb

    warehouse = open_warehouse(warehouse_at_d1)
    with warehouse.work():  # the next file, as the first command after a publish starts it
        pass
    work = duckdb.connect(str(warehouse.work_path))
    work.execute(f"attach '{warehouse.next_path}' as next_file (read_only)")
    work.execute("create schema pub")
    for (table,) in work.execute(
        "select table_name from information_schema.tables where table_catalog = 'next_file' "
        "and table_schema = 'main'"
    ).fetchall():
        work.execute(f"create table pub.{table} as select * from next_file.main.{table}")
    work.execute("create table pub.ingest_quarantine_copy as select 1 as x")  # a stray table moves too
    work.execute("drop table meta.ingest_quarantine")
    work.close()
    published = duckdb.connect(str(warehouse.published_path))
    for (view,) in published.execute("select view_name from duckdb_views() where not internal").fetchall():
        published.execute(f"create table {view}__table as select * from {view}")
        published.execute(f"drop view {view}")
        published.execute(f"alter table {view}__table rename to {view}")
    published.execute("drop schema segflow_history cascade")
    published.close()
    warehouse.next_path.unlink()
    for path in sorted(warehouse.history_dir.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    warehouse.history_dir.rmdir()

    build(warehouse_at_d1, D2)
    clean = make_settings(name="clean")
    ingest_landing(clean, landing)
    build(clean, D1)
    build(clean, D2)
    converted = published_tables(warehouse_at_d1)
    assert converted.pop("ingest_quarantine_copy")
    assert converted == published_tables(clean)
    with warehouse.work() as con:
        assert not con.scalar(
            "select count(*) from duckdb_schemas() where database_name = current_database() and schema_name = 'pub'"
        )
