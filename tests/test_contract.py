"""The published contract (shared/CONTRACT.md): table columns, --json output, exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date

import pytest

from tests.conftest import FIXTURES, published_rows
from transforms.cli import build_parser
from transforms.packs import export, resolve_pack

CONTRACT_COLUMNS = {
    "customer_features": """customer_key as_of_date first_order_date first_order_channel first_order_amount
        last_order_date order_count purchase_days total_spend avg_order_value orders_90d spend_90d recency_days
        tenure_days avg_repurchase_interval_days median_repurchase_interval_days expected_next_order_date
        avg_monthly_spend favorite_category favorite_price_line gift_order_share purchase_purpose source_channel
        signup_date days_to_first_order replenishment_due_date""",
    "customer_monthly_spend": "customer_key month orders spend",
    "customer_identifiers": "customer_key id_type id_value",
    "customer_tags": "customer_key as_of_date tag_category tag_group tag source",
    "customer_segments": "customer_key as_of_date model segment segment_label r_score f_score m_score",
    "segment_summary": """as_of_date model segment segment_label customers customer_share revenue revenue_share
        avg_order_value avg_orders""",
    "audience_pack_exports": "pack export_id as_of_date exported_at members suppressed holdout file sha256",
    "ingest_quarantine": "file line field value reason batch",
    "dq_results": "run suite expectation severity success observed",
    "customer_features_history": "as_of_date customer_key",
    "customer_segments_history": "as_of_date customer_key model segment",
    "customer_tag_history": "as_of_date customer_key tag_group tag",
    "segment_migration": "as_of_date model from_segment to_segment customers",
    "channel_conversion": "source_channel contacts order_share median_days_to_first_order",
    "funnel_summary": "stage customers conversion_from_previous",
    "cohort_retention": "cohort_month months_since_first retention_rate",
    "tag_report": "tag_group tag members coverage",
}


def test_published_tables_carry_the_contract_columns(segments_built, tmp_path):
    export(segments_built, resolve_pack(segments_built, "buyers", "order_count >= 1"), tmp_path)
    for table, names in CONTRACT_COLUMNS.items():
        columns = {
            row[0] for row in published_rows(segments_built, f"select column_name from (describe {table})")
        }
        missing = set(names.split()) - columns
        assert not missing, f"{table} lacks {missing}"
    segments = {m for (m,) in published_rows(segments_built, "select distinct model from customer_segments")}
    assert {"value_frequency", "rfm", "rfm8", "lifecycle", "funnel", "abc"} <= segments


def run(segments_built, *args):
    env = {
        **os.environ,
        "SEGFLOW_WAREHOUSE": segments_built.warehouse_url,
        "SEGFLOW_CONFIG": str(segments_built.config_dir),
    }
    return subprocess.run(
        [sys.executable, "-m", "transforms.cli", *args], env=env, capture_output=True, text=True
    )


def test_reporting_commands_print_one_json_object(segments_built):
    for args in (
        ["check", "--as-of", "2026-03-10"],
        ["tags", "report"],
        ["pack", "preview", "churned_winback"],
        ["ingest", str(FIXTURES / "segments" / "orders.csv"), "--kind", "orders"],
    ):
        completed = run(segments_built, *args, "--json")
        assert completed.returncode == 0, completed.stderr
        assert isinstance(json.loads(completed.stdout), dict), args


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ["pack", "preview", "--where", "1 = 1; drop table customer_features"],
            "--where pack ad_hoc: expression",
        ),
        (["pack", "preview", "no_such_pack"], "pack 'no_such_pack' is not in"),
        (["build", "--as-of", "2026-13-01"], "--as-of '2026-13-01' is not a day of the calendar"),
        (["build", "--as-of", "1 March"], "--as-of '1 March' is not a date of the form YYYY-MM-DD"),
        (["pack", "preview"], "name a pack (churned_winback, "),
        (["pack", "preview", "--where", "recency_day > 3"], "did you mean 'recency_days'?"),
        (
            ["pack", "preview", "--where", "order_count >= 1 -- and recency_days > 30"],
            "comments are not allowed (at `and recency_days > 30`)",
        ),
        (
            ["pack", "export", "churned_winback", "--out", "/proc/segflow-exports"],
            "--out /proc/segflow-exports: the folder cannot be created",
        ),
        (
            ["tags", "report", "--warehouse", "/srv/brand.duckdb"],
            "is a path, not a URL: use duckdb:////srv/brand.duckdb",
        ),
        (["ingest", "/no/such/file.csv", "--kind", "orders"], "/no/such/file.csv: file not found"),
        (["dump", "no_such_table", "--out", "/tmp/x.parquet"], "table 'no_such_table' is not published"),
        (
            ["dump", "customer_features", "--out", "/tmp/x.xlsx"],
            "--out /tmp/x.xlsx: name a .parquet or .csv file",
        ),
    ],
)
def test_failures_exit_non_zero_with_one_line_reason(segments_built, args, says):
    completed = run(segments_built, *args)
    assert completed.returncode == 1
    assert completed.stderr.count("\n") == 1 and says in completed.stderr


@pytest.mark.parametrize(
    "argv",
    [
        [
            "--warehouse",
            "duckdb:///elsewhere/brand.duckdb",
            "--config",
            "brand_config",
            "--json",
            "tags",
            "report",
        ],
        [
            "tags",
            "report",
            "--warehouse",
            "duckdb:///elsewhere/brand.duckdb",
            "--config",
            "brand_config",
            "--json",
        ],
        ["--json", "build", "--warehouse", "duckdb:///elsewhere/brand.duckdb", "--config", "brand_config"],
    ],
)
def test_global_options_count_before_or_after_the_command(argv):
    args = build_parser().parse_args(argv)
    assert (args.warehouse, args.config, args.json) == (
        "duckdb:///elsewhere/brand.duckdb",
        "brand_config",
        True,
    )


def test_commands_without_global_options_fall_back_to_the_environment():
    args = build_parser().parse_args(["pack", "preview", "churned_winback"])
    assert (args.warehouse, args.config, args.json) == (None, None, False)


def test_a_config_folder_missing_a_file_is_an_error_and_init_config_writes_one(segments_built, tmp_path):
    folder = tmp_path / "brand"
    folder.mkdir()
    (folder / "settings.yml").write_text("business_timezone: Asia/Shanghai\n", encoding="utf-8")
    (folder / "tags.yaml").write_text("categories: []\n", encoding="utf-8")
    shutil.copy(segments_built.config_dir / "segments.yml", folder / "segments.yml")
    completed = run(segments_built, "build", "--as-of", "2026-03-10", "--config", str(folder))
    assert completed.returncode == 1 and completed.stderr.count("\n") == 1
    assert f"{folder / 'tags.yml'}: file not found" in completed.stderr
    assert "found tags.yaml: rename it tags.yml" in completed.stderr
    (folder / "tags.yaml").unlink()
    completed = run(segments_built, "pack", "preview", "churned_winback", "--config", str(folder))
    assert completed.returncode == 1 and f"{folder / 'packs.yml'}: file not found" in completed.stderr

    fresh = tmp_path / "fresh"
    completed = run(segments_built, "init-config", str(fresh), "--json")
    assert completed.returncode == 0, completed.stderr
    assert sorted(p.name for p in fresh.iterdir()) == [
        "packs.yml",
        "segments.yml",
        "settings.yml",
        "tags.yml",
    ]
    assert len(json.loads(completed.stdout)["written"]) == 4
    completed = run(segments_built, "pack", "preview", "churned_winback", "--config", str(fresh), "--json")
    assert completed.returncode == 0, completed.stderr


def test_build_refuses_an_empty_warehouse_and_a_day_before_every_record(segments_built, tmp_path):
    empty = f"duckdb:///{tmp_path / 'empty' / 'segflow.duckdb'}"
    completed = run(segments_built, "build", "--as-of", "2026-03-10", "--warehouse", empty)
    assert completed.returncode == 1 and "nothing ingested yet" in completed.stderr
    assert not (tmp_path / "empty" / "segflow.duckdb").exists()

    before = published_rows(segments_built, "select * from customer_features order by customer_key")
    completed = run(segments_built, "build", "--as-of", "2020-01-01")
    assert completed.returncode == 1 and completed.stderr.count("\n") == 1
    assert "as of 2020-01-01 no customer is known yet" in completed.stderr
    assert published_rows(segments_built, "select * from customer_features order by customer_key") == before
    run(segments_built, "build", "--as-of", "2026-03-10")  # the module's fixture as it was


def test_the_first_checks_say_there_is_no_earlier_run(tmp_path):
    from tests.conftest import write_config
    from transforms.build import build
    from transforms.ingest import ingest
    from transforms.settings import Settings

    settings = Settings.load(
        write_config(tmp_path / "config"), f"duckdb:///{tmp_path / 'wh' / 'segflow.duckdb'}"
    )
    ingest(settings, [FIXTURES / "segments" / "orders.csv"], "orders")
    build(settings, date(2026, 3, 10))
    assert published_rows(
        settings, "select success, observed from dq_results where expectation = 'row_count_change_share'"
    ) == [(True, "no earlier run to compare with")]
    pages = list((tmp_path / "wh" / "data_docs" / "validations" / "features").rglob("*.html"))
    text = pages[0].read_text(encoding="utf-8")
    assert "no earlier run to compare with" in text and "Catalog Error" not in text


def test_every_published_table_and_column_says_what_it_means(segments_built, tmp_path):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from transforms.actions import unpaid_reminders

    export(segments_built, resolve_pack(segments_built, "buyers", "order_count >= 1"), tmp_path)
    unpaid_reminders(segments_built, datetime(2026, 3, 10, 12, tzinfo=ZoneInfo("Asia/Shanghai")))
    tables = published_rows(
        segments_built,
        "select table_name, comment from duckdb_tables() union all "
        "select view_name, comment from duckdb_views() where not internal order by 1",
    )
    assert len(tables) >= 35 and [t for t, comment in tables if not comment] == []
    undocumented = published_rows(
        segments_built,
        "select table_name, column_name from information_schema.columns where column_comment is null",
    )
    assert undocumented == []
    assert published_rows(
        segments_built,
        "select column_comment from information_schema.columns "
        "where table_name = 'customer_features_history' and column_name = 'recency_days'",
    ) == [("D minus last_order_date (an order yesterday gives 1)",)]


def test_dump_writes_a_published_table_to_parquet_and_csv(segments_built, tmp_path):
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    expected = sorted(
        published_rows(segments_built, "select customer_key, order_count from customer_features")
    )
    for name in ("features.parquet", "features.csv"):
        completed = run(segments_built, "dump", "customer_features", "--out", str(tmp_path / name), "--json")
        assert completed.returncode == 0, completed.stderr
        assert json.loads(completed.stdout)["rows"] == len(expected)
        table = (pq.read_table if name.endswith("parquet") else pacsv.read_csv)(tmp_path / name)
        assert (
            sorted(zip(table["customer_key"].to_pylist(), table["order_count"].to_pylist(), strict=True))
            == expected
        )


def test_bi_tools_on_sqlalchemy_see_the_columns_of_tables_and_history_views(segments_built):
    """Superset, Metabase's Python tools and pandas.read_sql list columns through SQLAlchemy's
    inspector (duckdb-engine); that failed under SQLAlchemy 2.1."""
    import sqlalchemy

    from transforms.engines import open_warehouse

    path = open_warehouse(segments_built).published_path
    engine = sqlalchemy.create_engine(f"duckdb:///{path}", connect_args={"read_only": True})
    try:
        inspector = sqlalchemy.inspect(engine)
        assert "customer_features" in inspector.get_table_names()
        assert "customer_features_history" in inspector.get_view_names()
        for table in ("customer_features", "customer_features_history"):
            names = [column["name"] for column in inspector.get_columns(table)]
            assert names[:3] == ["customer_key", "as_of_date", "first_order_date"], table
    finally:
        engine.dispose()
