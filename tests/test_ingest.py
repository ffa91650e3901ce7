"""Ingestion: mappings, quarantine with file/line/field, idempotent reloads, versions, encodings."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import duckdb
import pytest

from tests.conftest import FIXTURES, published_rows, work_rows, write_config, write_csv
from transforms.build import build
from transforms.engines import open_warehouse
from transforms.errors import SegflowError
from transforms.generate import generate
from transforms.ingest import ingest
from transforms.models import Model, materialize
from transforms.settings import Settings

EXPORT = FIXTURES / "brand_export"


def load_cn(settings):
    return ingest(settings, [EXPORT / "orders_cn.csv"], "orders", EXPORT / "orders_cn_mapping.yml")


def test_chinese_header_export_loads_through_mapping(settings):
    [result] = load_cn(settings)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (8, 3, 5)
    assert result.ignored_columns == ["备注"]
    rows = work_rows(
        settings,
        "select order_id, phone, status, amount, refund_amount, channel, "
        "strftime(created_at at time zone 'Asia/Shanghai', '%Y-%m-%d %H:%M'), _line from raw.orders order by order_id",
    )
    assert rows == [
        ("A001", "13800138000", "paid", Decimal("199.00"), None, "miniprogram", "2026-03-01 09:30", 2),
        ("A002", "13800138000", "completed", Decimal("1280.50"), None, "tmall", "2026-03-01 23:59", 3),
        (
            "A006",
            "13900001114",
            "refunded",
            Decimal("88.00"),
            Decimal("88.00"),
            "offline",
            "2026-03-02 12:00",
            7,
        ),
    ]


def test_bad_rows_are_quarantined_with_line_field_and_reason(settings):
    load_cn(settings)
    rows = published_rows(
        settings, "select line, field, value, reason from ingest_quarantine order by line, field"
    )
    assert [(line, field, value) for line, field, value, _ in rows] == [
        (4, "created_at", "2026-13-45 10:00:00"),
        (5, "amount", "-20.00"),
        (6, "order_id", None),
        (8, "phone", "12345"),
        (9, "status", "发货中"),
    ]
    reasons = {field: reason for _, field, _, reason in rows}
    assert reasons["amount"] == "negative value"
    assert reasons["order_id"] == "required field is empty"
    assert "timestamp" in reasons["created_at"]
    assert "values:" in reasons["status"]


def test_same_file_twice_loads_nothing_twice(settings):
    load_cn(settings)
    [again] = load_cn(settings)
    assert again.status == "skipped"
    assert work_rows(settings, "select count(*) from raw.orders") == [(3,)]
    assert published_rows(settings, "select count(*) from ingest_quarantine") == [(5,)]


def test_later_status_change_is_a_new_version(settings):
    load_cn(settings)
    ingest(settings, [EXPORT / "orders_cn_update.csv"], "orders", EXPORT / "orders_update_mapping.yml")
    versions = work_rows(
        settings,
        "select status, refund_amount from raw.orders where order_id = 'A001' order by _loaded_at, _line",
    )
    assert versions == [("paid", None), ("refunded", Decimal("199.00"))]


def test_too_many_bad_rows_refuses_the_file_and_keeps_what_was_loaded(make_settings):
    strict = make_settings({"ingest": {"max_quarantine_share": 0.05}})
    ingest(strict, [EXPORT / "orders_gb18030.csv"], "orders", EXPORT / "orders_gb18030_mapping.yml")
    with pytest.raises(SegflowError, match=r"orders_cn\.csv: 5 of 8 rows are bad"):
        load_cn(strict)
    assert work_rows(strict, "select order_id from raw.orders order by 1") == [("G001",), ("G002",)]
    assert published_rows(strict, "select count(*) from ingest_quarantine") == [(0,)]
    assert work_rows(strict, "select count(*) from meta.ingest_files where kind = 'orders'") == [(1,)]


def test_gb18030_needs_the_encoding_setting(settings, tmp_path):
    mapping = tmp_path / "no_encoding.yml"
    mapping.write_text(
        (EXPORT / "orders_gb18030_mapping.yml").read_text(encoding="utf-8").replace("encoding: gb18030", ""),
        encoding="utf-8",
    )
    with pytest.raises(SegflowError, match=r"orders_gb18030\.csv line 1: not UTF-8 .*encoding: gb18030"):
        ingest(settings, [EXPORT / "orders_gb18030.csv"], "orders", mapping)
    [result] = ingest(
        settings, [EXPORT / "orders_gb18030.csv"], "orders", EXPORT / "orders_gb18030_mapping.yml"
    )
    assert result.rows_loaded == 2
    assert work_rows(settings, "select status from raw.orders order by order_id") == [
        ("paid",),
        ("completed",),
    ]


def test_missing_required_column_and_empty_file_are_refused(settings, tmp_path):
    no_amount = tmp_path / "orders_no_amount.csv"
    no_amount.write_text("order_id,created_at,status,phone\nX1,2026-03-01T10:00:00+08:00,paid,13800000001\n")
    with pytest.raises(SegflowError, match="required column 'amount' is missing"):
        ingest(settings, [no_amount], "orders")
    empty = tmp_path / "orders_empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(SegflowError, match="0 bytes"):
        ingest(settings, [empty], "orders")


def test_future_dated_order_and_unknown_column(settings, tmp_path):
    path = tmp_path / "orders_future.csv"
    path.write_text(
        "order_id,created_at,status,amount,phone,coupon_code\n"
        "F1,2026-03-01T10:00:00+08:00,paid,10,13800000001,X\n"
        "F2,2099-01-01T10:00:00+08:00,paid,10,13800000002,Y\n"
    )
    [result] = ingest(settings, [path], "orders", loaded_at=datetime(2026, 3, 2, tzinfo=UTC))
    assert result.ignored_columns == ["coupon_code"]
    assert published_rows(settings, "select line, field, reason from ingest_quarantine") == [
        (3, "created_at", "in the future (after the load time)")
    ]


def test_parquet_and_jsonl(settings, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "order_id": ["P1"],
            "created_at": ["2026-03-01 10:00:00"],
            "status": ["paid"],
            "amount": [12.5],
            "unionid": ["oUabc"],
        }
    )
    pq.write_table(table, tmp_path / "orders.parquet")
    (tmp_path / "orders.jsonl").write_text(
        '{"order_id": "J1", "created_at": "2026-03-01T10:00:00+08:00", "status": "paid", "amount": 3, "email": " A@B.com "}\n'
    )
    ingest(settings, [tmp_path / "orders.parquet", tmp_path / "orders.jsonl"], "orders")
    assert work_rows(settings, "select order_id, amount, email, unionid from raw.orders order by 1") == [
        ("J1", Decimal("3.00"), "a@b.com", None),
        ("P1", Decimal("12.50"), None, "oUabc"),
    ]


def test_a_files_own_timestamps_booleans_and_dates_load_as_their_text_would(make_settings, tmp_path):
    """Parquet columns already of our type are taken as they are, without a round trip through text:
    the raw rows and the quarantine are those of the same values written as text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    shanghai = pa.timestamp("us", tz="Asia/Shanghai")
    typed = pa.table(
        {
            "order_id": ["T1", "T2", "T3", "T4"],
            "created_at": pa.array(
                [
                    datetime(2026, 3, 1, 2, 0, tzinfo=UTC),
                    datetime(2026, 3, 2, 0, 30, tzinfo=UTC),
                    None,
                    datetime(2099, 1, 1, tzinfo=UTC),
                ],
                type=shanghai,
            ),
            # naive: read in the load's timezone (Asia/Shanghai), as its text would be
            "paid_at": pa.array([datetime(2026, 3, 1, 10, 5), None, None, None], type=pa.timestamp("us")),
            "status": ["paid", "created", "paid", "paid"],
            "amount": [10.0, 20.5, 1.0, 2.0],
            "is_gift": [True, False, None, True],
            "phone": ["13900000001", "+86 139 0000 0002", "13900000003", "13900000004"],
        }
    )
    text = pa.table({name: typed.column(name).cast(pa.string()) for name in typed.column_names})
    loaded = {}
    for label, table in (("typed", typed), ("text", text)):
        settings = make_settings(name=label)
        pq.write_table(table, tmp_path / f"{label}.parquet")
        ingest(settings, [tmp_path / f"{label}.parquet"], "orders")
        loaded[label] = (
            work_rows(
                settings, "select * exclude (_file, _batch, _loaded_at) from raw.orders order by order_id"
            ),
            work_rows(settings, "select line, field, value, reason from meta.ingest_quarantine order by all"),
        )
    assert loaded["typed"][0] == loaded["text"][0]
    rows, quarantined = loaded["typed"]
    assert [row[0] for row in rows] == ["T1", "T2"]
    # The same refusals; a value shows as DuckDB writes the file's timestamp, where the text file
    # shows its own text.
    assert quarantined == [
        (3, "created_at", None, "required field is empty"),
        (4, "created_at", "2099-01-01 08:00:00+08", "in the future (after the load time)"),
    ]
    assert [row[:2] + row[3:] for row in loaded["text"][1]] == [row[:2] + row[3:] for row in quarantined]


def order_keys(settings, table):
    return work_rows(settings, f"select distinct order_id, _order_key from raw.{table} order by 1")


def test_each_order_id_gets_one_integer_key_that_never_changes(settings, tmp_path):
    orders = "order_id,created_at,status,amount,phone"
    write_csv(
        tmp_path / "orders_1.csv",
        orders,
        "K002,2026-03-01T10:00:00+08:00,paid,10,13800138000",
        "K001,2026-03-01T11:00:00+08:00,paid,20,13800138000",
    )
    ingest(settings, [tmp_path / "orders_1.csv"], "orders")
    assert order_keys(settings, "orders") == [("K001", 1), ("K002", 2)]

    # A line can land before its order: the order_id is numbered then, and its order gets that key.
    write_csv(tmp_path / "items_1.csv", "order_id,sku,quantity,price", "K003,SKU1,1,5", "K001,SKU1,2,5")
    ingest(settings, [tmp_path / "items_1.csv"], "order_items")
    write_csv(
        tmp_path / "orders_2.csv",
        orders,
        "K003,2026-03-02T10:00:00+08:00,paid,5,13800138000",
        "K001,2026-03-01T11:00:00+08:00,refunded,20,13800138000",
    )
    ingest(settings, [tmp_path / "orders_2.csv"], "orders")
    assert order_keys(settings, "order_items") == [("K001", 1), ("K003", 3)]
    assert order_keys(settings, "orders") == [("K001", 1), ("K002", 2), ("K003", 3)]
    assert work_rows(settings, "select count(*) from raw.order_keys") == [(3,)]


def test_a_warehouse_loaded_before_order_keys_gets_them_once(settings):
    load_cn(settings)
    with open_warehouse(settings).work() as con:
        con.execute("drop table raw.order_keys")
        con.execute("alter table raw.orders drop column _order_key")
        con.execute("alter table raw.order_items drop column _order_key")
    build(settings, datetime(2026, 3, 5).date(), run_checks=True)
    assert order_keys(settings, "orders") == [("A001", 1), ("A002", 2), ("A006", 3)]
    assert published_rows(settings, "select sum(order_count) from customer_features") == [(2,)]


def identifier_keys(settings):
    return work_rows(settings, "select id_type, id_value, id_key from raw.identifier_keys order by id_key")


def test_each_identifier_gets_one_integer_key_that_never_changes(settings, tmp_path):
    write_csv(
        tmp_path / "orders.csv",
        "order_id,created_at,status,amount,phone,email",
        "K001,2026-03-01T10:00:00+08:00,paid,10,+86 139-0000-0002,Ann@Example.com",
        "K002,2026-03-01T11:00:00+08:00,paid,20,13900000001,",
    )
    ingest(settings, [tmp_path / "orders.csv"], "orders")
    # Normalised values, numbered in (id_type, id_value) order within a load.
    assert identifier_keys(settings) == [
        ("email", "ann@example.com", 1),
        ("phone", "13900000001", 2),
        ("phone", "13900000002", 3),
    ]
    # A later load of another kind reuses the keys and numbers only what is new.
    write_csv(
        tmp_path / "contacts.csv",
        "phone,unionid,signup_at",
        "13900000002,oU1,2026-02-01T10:00:00+08:00",
        "13900000009,,2026-02-02T10:00:00+08:00",
    )
    ingest(settings, [tmp_path / "contacts.csv"], "contacts")
    assert identifier_keys(settings)[3:] == [("phone", "13900000009", 4), ("unionid", "oU1", 5)]
    assert work_rows(
        settings, "select order_id, _phone_key, _email_key, _unionid_key from raw.orders order by 1"
    ) == [("K001", 3, 1, None), ("K002", 2, None, None)]
    assert work_rows(settings, "select phone, _phone_key, _unionid_key from raw.contacts order by 1") == [
        ("13900000002", 3, 5),
        ("13900000009", 4, None),
    ]


def test_a_warehouse_loaded_before_identifier_keys_gets_them_once(settings):
    load_cn(settings)
    build(settings, datetime(2026, 3, 5).date(), run_checks=False)
    before = published_rows(settings, "select * from customer_identifiers order by all")
    with open_warehouse(settings).work() as con:
        con.execute("drop table raw.identifier_keys")
        for kind in ("orders", "contacts", "events", "manual_tags"):
            for id_type in ("phone", "unionid", "email", "member_id", "external_userid"):
                con.execute(f"alter table raw.{kind} drop column _{id_type}_key")
            # nor did it know WeCom's external_userid
            con.execute(f"alter table raw.{kind} drop column external_userid")
    build(settings, datetime(2026, 3, 5).date(), run_checks=True)
    assert work_rows(
        settings, "select count(external_userid), count(_external_userid_key) from raw.contacts"
    ) == [(0, 0)]
    # The fixture's orders carry two phones and no other identifier.
    assert [row[:2] for row in identifier_keys(settings)] == work_rows(
        settings, "select distinct 'phone', phone from raw.orders order by 2"
    )
    assert work_rows(settings, "select count(*) from raw.orders where _phone_key is null") == [(0,)]
    assert published_rows(settings, "select * from customer_identifiers order by all") == before


def test_an_identifier_without_its_key_fails_the_checks(settings):
    load_cn(settings)
    with open_warehouse(settings).work() as con:
        con.execute("update raw.orders set _phone_key = null where order_id = 'A001'")
    with pytest.raises(SegflowError, match="identifier_keys_one_per_identifier"):
        build(settings, datetime(2026, 3, 5).date(), run_checks=True)


def test_an_order_line_without_its_key_fails_the_checks(settings, tmp_path):
    load_cn(settings)
    ingest(
        settings,
        [write_csv(tmp_path / "items.csv", "order_id,sku,quantity,price", "A001,SKU1,1,5")],
        "order_items",
    )
    with open_warehouse(settings).work() as con:
        con.execute("update raw.order_items set _order_key = null")
    with pytest.raises(SegflowError, match="order_keys_one_per_order_id"):
        build(settings, datetime(2026, 3, 5).date(), run_checks=True)


# 16KB runs out while the raw tables are set up; where 1MB first bites (a lookup, a scan, a model)
# varies from run to run. The line and what is kept do not.
@pytest.mark.parametrize("limit", ["16KB", "1MB"])
def test_running_out_of_memory_names_the_limit_and_loses_nothing(make_settings, tmp_path, limit):
    landing = generate(tmp_path / "landing", orders=5_000).out_dir
    roomy = make_settings()
    starved = Settings.load(
        write_config(tmp_path / "config_starved", {"warehouse": {"duckdb_memory_limit": limit}}),
        roomy.warehouse_url,
    )
    advice = rf"DuckDB's memory limit is {limit} and it spills to .* raise warehouse\.duckdb_memory_limit in settings\.yml"
    with pytest.raises(
        SegflowError, match=rf"^ingest of \d+ orders files ran out of memory.* and loaded nothing .*{advice}"
    ):
        ingest(starved, [landing / "orders"], "orders")
    # Wherever it ran short (even before the raw tables existed), the retry loads every file, once.
    retried = ingest(roomy, [landing / "orders"], "orders")
    assert {r.status for r in retried} == {"loaded"}
    loaded = work_rows(roomy, "select count(*) from raw.orders")
    assert loaded == [(sum(r.rows_loaded for r in retried),)]
    with pytest.raises(
        SegflowError,
        match=rf"^build step \w+ as of 2026-07-01 ran out of memory.* and published nothing .*{advice}",
    ):
        build(starved, date(2026, 7, 1))
    assert work_rows(roomy, "select count(*) from raw.orders") == loaded
    assert published_rows(
        roomy, "select count(*) from information_schema.tables where table_name = 'customer_features'"
    ) == [(0,)]


def test_out_of_memory_names_the_model_it_ran_out_in(settings):
    def exhausting(con, variables):
        raise duckdb.OutOfMemoryException(
            "Out of Memory Error: failed to allocate data of size 4.0 KiB\nPossible solutions: ..."
        )

    model = Model(name="int_exhausting", layer="intermediate", python=exhausting)
    with (
        pytest.raises(SegflowError) as raised,
        open_warehouse(settings).work("build step identity as of 2026-07-01") as con,
    ):
        materialize(con, model, {})
    message = str(raised.value)
    assert message.startswith(
        "build step identity as of 2026-07-01 ran out of memory in model int_exhausting (python) "
        "and published nothing (Out of Memory Error: failed to allocate data of size 4.0 KiB). "
        "DuckDB's memory limit is 5GB and it spills to "
    )
    assert "\n" not in message


def test_a_work_file_that_cannot_be_opened_says_why_instead_of_blaming_a_writer(settings):
    warehouse = open_warehouse(settings)
    warehouse.work_path.parent.mkdir(parents=True, exist_ok=True)
    warehouse.work_path.write_text("not a database")
    with pytest.raises(
        SegflowError, match=r"\.work\.duckdb: cannot be opened \(.*not a valid DuckDB database file"
    ):
        with warehouse.work():
            pass
