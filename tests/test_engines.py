"""Every served engine gives the same answers: the constructs whose meaning differs between dialects,
one by one, and the whole pipeline on generated data (late, re-sent and superseding orders, refunds,
merged identities, junk identifiers) built as of two dates."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import cli, published_rows
from tests.published import published_tables, table_rows
from transforms.build import build
from transforms.engines import open_warehouse
from transforms.errors import SegflowError
from transforms.generate import generate
from transforms.ingest import ingest_landing
from transforms.settings import Settings
from transforms.sql import literal

pytestmark = pytest.mark.postgres

D1, D2 = date(2026, 6, 1), date(2026, 6, 15)
CONTRACT_TABLES = {
    "customer_features",
    "customer_monthly_spend",
    "customer_identifiers",
    "customer_tags",
    "customer_segments",
    "segment_summary",
    "customer_tag_history",
    "segment_migration",
    "channel_conversion",
    "funnel_summary",
    "cohort_retention",
    "tag_report",
    "ingest_quarantine",
    "dq_results",
}

# (SQL in segflow's dialect, the answer worked out by hand): each is a construct sqlglot would
# carry over to another dialect with a different meaning (see transforms/engines/postgres_sql.py).
CONSTRUCTS = [
    ("select round(cast(2.5 as double))", 3),
    ("select round(cast(-2.5 as double))", -3),
    ("select round(cast(0.125 as double), 2)", 0.13),
    ("select cast(round(cast(7.5 as double)) as integer)", 8),
    ("select date_diff('day', date '2024-01-31', date '2024-03-01')", 30),
    ("select date_diff('month', date '2024-01-31', date '2024-02-01')", 1),
    ("select date_diff('year', date '2023-12-31', date '2024-01-01')", 1),
    ("select percentile_cont(0.5) within group (order by x) from (values (1), (2), (3), (10)) as t(x)", 2.5),
    ("select extract(isodow from date '2024-01-07')", 7),
    ("select 7 // 2", 3),
    ("select 7 / 2", 3.5),
    ("select sha256('abc')", hashlib.sha256(b"abc").hexdigest()),
    ("select count(*) from (select 1 as x) where 1 = 1", 1),
]


@pytest.fixture(scope="module")
def engines(tmp_path_factory, postgres_server) -> dict[str, Settings]:
    from tests.conftest import write_config

    folder = tmp_path_factory.mktemp("engines")
    config = write_config(folder / "config", {"warehouse": {"files_dir": str(folder / "files")}})
    return {
        "duckdb": Settings.load(config, f"duckdb:///{folder / 'wh' / 'segflow.duckdb'}"),
        "postgres": Settings.load(config, postgres_server()),
    }


@pytest.mark.parametrize(("sql", "expected"), CONSTRUCTS, ids=[sql for sql, _ in CONSTRUCTS])
def test_constructs_that_change_meaning_give_the_same_answer_on_every_engine(engines, sql, expected):
    for engine, settings in engines.items():
        with open_warehouse(settings).work() as con:
            value = con.scalar(sql)
        assert (float(value) if isinstance(expected, float) else value) == expected, engine


def test_holdout_buckets_are_the_same_on_every_engine(engines):
    values = ["spring_sale:00388d50ff6eb5b2", "pack:abc", "会员日:1"]
    expected = [int.from_bytes(hashlib.md5(v.encode()).digest(), "little") % 10000 for v in values]
    for engine, settings in engines.items():
        with open_warehouse(settings).work() as con:
            buckets = [con.scalar(f"select {con.hash_bucket(literal(v), 10000)}") for v in values]
        assert buckets == expected, engine


def test_a_semi_join_is_refused_where_it_would_change_meaning(engines):
    with open_warehouse(engines["postgres"]).work() as con, pytest.raises(SegflowError, match="anti join"):
        con.execute("select 1 from (select 1 as a) as x anti join (select 2 as a) as y using (a)")


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("engines_landing")
    generate(folder, orders=4_000, days=90, last_day=D2, seed=11)
    return folder


@pytest.fixture(scope="module")
def built(engines, landing) -> dict:
    """Each engine's published tables as of D1 and then D2, from the same landing files."""
    tables = {}
    for engine, settings in engines.items():
        ingest_landing(settings, landing, until_date=D1.isoformat())
        build(settings, D1)
        first = published_tables(settings)
        ingest_landing(settings, landing)
        build(settings, D2)
        tables[engine] = (first, published_tables(settings))
    return tables


@pytest.mark.slow
def test_the_same_data_builds_the_same_published_tables_on_every_engine(built):
    for as_of, duck, postgres in zip((D1, D2), built["duckdb"], built["postgres"], strict=True):
        assert CONTRACT_TABLES <= set(duck)
        assert sorted(duck) == sorted(postgres), as_of
        for table in duck:
            assert duck[table][0] == postgres[table][0], f"{table} columns as of {as_of}"
            if as_of == D2 and table in CONTRACT_TABLES:
                assert duck[table][1], f"{table} is empty: the comparison would prove nothing"
            differing = sorted(set(duck[table][1]) ^ set(postgres[table][1]))[:3]
            assert duck[table][1] == postgres[table][1], f"{table} as of {as_of} differs: {differing}"


@pytest.mark.slow
def test_every_command_gives_the_same_output_on_every_engine(engines, built, tmp_path):
    """What a user types, through the CLI, on each engine: the same files and the same answers."""
    outputs = {}
    # whois on the customer with the most identifiers, asked by its earliest one: a long path.
    (asked,) = published_rows(
        engines["duckdb"],
        "select id_value from customer_identifiers where customer_key = (select customer_key from "
        "customer_identifiers group by customer_key order by count(*) desc, customer_key limit 1) "
        "order by first_seen_at, id_type, id_value limit 1",
    )
    for engine, settings in engines.items():
        out = tmp_path / engine

        def run(*args: str, _settings=settings, _engine=engine) -> str:
            done = cli(_settings, "--json", *args)
            assert done.returncode == 0, (_engine, args, done.stderr[-2000:])
            return done.stdout

        check = json.loads(run("check", "--as-of", D2.isoformat()))
        exported = json.loads(run("pack", "export", "churned_winback", "--out", str(out)))
        hashed = json.loads(run("pack", "export", "churned_winback", "--out", str(out), "--hash"))
        outputs[engine] = {
            "check": sorted(
                (c["suite"], c["expectation"], c["success"], c["observed"]) for c in check["checks"]
            ),
            "tags report": json.loads(run("tags", "report")),
            "preview": json.loads(run("pack", "preview", "churned_winback")),
            "export": Path(exported["file"]).read_bytes(),
            "export --hash": Path(hashed["file"]).read_bytes(),
            "counts": [(e["members"], e["suppressed"], e["holdout"]) for e in (exported, hashed)],
            "lift": json.loads(
                run("pack", "lift", "churned_winback", "--export", exported["export_id"], "--days", "7")
            ),
            "reminders": json.loads(
                run("actions", "unpaid-reminders", "--at", f"{D2.isoformat()}T10:00:00+08:00")
            ),
            "whois": json.loads(run("whois", asked[0], "--reveal")),
            "dump": pq.read_table(
                json.loads(run("dump", "segment_summary", "--out", str(out / "summary.parquet")))["file"]
            ),
        }
        run("report", "--out", str(out / "report.html"))
        outputs[engine]["report"] = (out / "report.html").stat().st_size > 10_000
        outputs[engine]["dump"] = table_rows(outputs[engine]["dump"])
    assert outputs["duckdb"]["counts"][0][0] > 0
    assert len(outputs["duckdb"]["whois"]["identifiers"]) > 1 and outputs["duckdb"]["whois"]["records"] > 1
    for key in outputs["duckdb"]:
        assert outputs["duckdb"][key] == outputs["postgres"][key], key


@pytest.mark.slow
def test_published_tables_carry_the_same_comments_for_bi_tools(engines, built):
    comments = {}
    with open_warehouse(engines["duckdb"]).read() as con:
        comments["duckdb"] = con.execute(
            "select table_name, comment from duckdb_tables() where database_name = 'pub' and schema_name = 'main' "
            "union all select view_name, comment from duckdb_views() where database_name = 'pub' "
            "and schema_name = 'main' order by 1"
        ).fetchall()
    with open_warehouse(engines["postgres"]).read() as con:
        comments["postgres"] = con.con.execute(
            "select c.relname, obj_description(c.oid) from pg_class as c join pg_namespace as n "
            "on n.oid = c.relnamespace where n.nspname = 'segflow' and c.relkind = 'r' order by 1"
        ).fetchall()
    assert dict(comments["duckdb"])["customer_features"] == "one row per customer_key"
    assert comments["duckdb"] == comments["postgres"]
