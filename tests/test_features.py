"""Customer features on the hand-checked fixture: exact values for every column that matters."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import load_feature_fixture, published_rows, write_csv
from transforms.actions import unpaid_reminders
from transforms.build import build
from transforms.ingest import ingest

AS_OF = date(2026, 3, 10)


@pytest.fixture
def built(make_settings):
    settings = make_settings({"identity": {"max_links_per_identifier": 3}})
    load_feature_fixture(settings)
    build(settings, AS_OF, run_checks=False)
    return settings


def features_of(settings, id_type: str, id_value: str) -> dict:
    cursor_rows = published_rows(
        settings,
        "select f.* from customer_features as f join customer_identifiers as i using (customer_key) "
        "where i.id_type = ? and i.id_value = ?",
        [id_type, id_value],
    )
    assert len(cursor_rows) == 1, f"{id_type}={id_value} is {len(cursor_rows)} customers"
    names = [r[0] for r in published_rows(settings, "select column_name from (describe customer_features)")]
    return dict(zip(names, cursor_rows[0], strict=True))


def test_alice_every_feature(built):
    alice = features_of(built, "phone", "13900000001")
    assert features_of(built, "unionid", "oA")["customer_key"] == alice["customer_key"]
    expected = {
        "as_of_date": AS_OF,
        "first_order_date": date(2026, 1, 5),
        "first_order_channel": "miniprogram",
        "first_order_amount": Decimal("100.00"),
        "last_order_date": date(2026, 3, 9),
        "order_count": 6,
        "purchase_days": 5,
        "total_spend": Decimal("750.00"),
        "avg_order_value": Decimal("125.00"),
        "orders_30d": 3,
        "spend_30d": Decimal("400.00"),
        "orders_90d": 6,
        "spend_90d": Decimal("750.00"),
        "recency_days": 1,
        "tenure_days": 64,
        "avg_repurchase_interval_days": 15.75,
        "median_repurchase_interval_days": 13.5,
        "last_repurchase_interval_days": 8,
        "max_repurchase_gap_days": 30,
        "expected_next_order_date": date(2026, 3, 23),
        "favorite_category": "茶",
        "favorite_price_line": "premium",
        "purchase_purpose": "self",
        "source_channel": "wecom",
        "signup_date": date(2026, 1, 1),
        "days_to_first_order": 4,
        "replenishment_due_date": date(2026, 5, 8),
        "content_views": 2,
        "content_seconds": 180,
        "age": 36,
        "city": "上海",
        # A1, A3, A7 in the morning, A2 and A5 in the evening, A4 at noon; A1, A2, A5 on Mondays.
        "preferred_hour_band": "morning",
        "preferred_weekday": 1,
    }
    assert {k: alice[k] for k in expected} == expected
    assert alice["avg_monthly_spend"] == pytest.approx(250.0)
    assert alice["gift_order_share"] == pytest.approx(1 / 6)


def test_bob_histories_merge_and_unpaid_orders_do_not_count(built):
    bob = features_of(built, "email", "bob@x.com")
    assert features_of(built, "phone", "13900000002")["customer_key"] == bob["customer_key"]
    assert features_of(built, "unionid", "oB")["customer_key"] == bob["customer_key"]
    assert (bob["order_count"], bob["total_spend"], bob["purchase_days"]) == (2, Decimal("600.00"), 2)
    assert (bob["median_repurchase_interval_days"], bob["expected_next_order_date"]) == (14, date(2026, 3, 1))
    # Three campaign events: 618 twice and one without a campaign id make one campaign joined.
    assert (bob["recency_days"], bob["tenure_days"], bob["campaigns_joined"], bob["events"]) == (23, 37, 1, 3)
    assert bob["days_to_first_order"] == 12


def test_a_paid_order_of_amount_zero_is_a_purchase_with_zero_spend(built, tmp_path):
    # Z1 a free sample (0元试用) on 02-01, Z2 a paid order of 100 on 02-11, Z3 a zero order later
    # fully refunded (does not count), Z4 an order of 50 fully refunded by amount (does not count).
    zero = write_csv(
        tmp_path / "zero.csv",
        "order_id,created_at,updated_at,paid_at,status,amount,refund_amount,refunded_at,channel,is_gift,unionid",
        "Z1,2026-02-01T10:00:00+08:00,,2026-02-01T10:00:00+08:00,paid,0,,,douyin,false,oZ",
        "Z2,2026-02-11T10:00:00+08:00,,2026-02-11T10:00:00+08:00,completed,100,,,tmall,false,oZ",
        "Z3,2026-02-20T10:00:00+08:00,2026-02-21T10:00:00+08:00,2026-02-20T10:00:00+08:00,refunded,0,0,"
        "2026-02-21T10:00:00+08:00,tmall,false,oZ",
        "Z4,2026-02-25T10:00:00+08:00,2026-02-26T10:00:00+08:00,2026-02-25T10:00:00+08:00,"
        "partially_refunded,50,50,2026-02-26T10:00:00+08:00,tmall,false,oZ",
    )
    ingest(built, [zero], "orders")
    build(built, AS_OF, run_checks=False)
    z = features_of(built, "unionid", "oZ")
    assert (z["order_count"], z["purchase_days"], z["total_spend"]) == (2, 2, Decimal("100.00"))
    assert (z["first_order_date"], z["first_order_channel"], z["first_order_amount"]) == (
        date(2026, 2, 1),
        "douyin",
        Decimal("0.00"),
    )
    assert (z["avg_order_value"], z["avg_repurchase_interval_days"], z["last_order_date"]) == (
        Decimal("50.00"),
        10,
        date(2026, 2, 11),
    )


def test_contact_without_orders_has_a_row(built):
    carol = features_of(built, "phone", "13900000003")
    assert carol["order_count"] == 0 and carol["total_spend"] == 0
    assert carol["first_order_date"] is None and carol["recency_days"] is None
    assert carol["opted_out"] is True and carol["marketing_consent"] is False


def test_shared_shop_phone_is_junk_and_does_not_merge_buyers(built):
    assert published_rows(
        built, "select id_type, id_value, linked_identifiers from identity_junk_identifiers"
    ) == [("phone", "13800000000", 4)]
    keys = {features_of(built, "unionid", f"oJ{n}")["customer_key"] for n in range(1, 5)}
    assert len(keys) == 4
    assert published_rows(built, "select count(*) from customer_features") == [(7,)]
    assert published_rows(
        built, "select count(*) from customer_identifiers where id_value = '13800000000'"
    ) == [(0,)]


def test_monthly_spend(built):
    alice_key = features_of(built, "unionid", "oA")["customer_key"]
    rows = published_rows(
        built,
        "select month, orders, spend from customer_monthly_spend where customer_key = ? order by month",
        [alice_key],
    )
    assert rows == [
        (date(2026, 1, 1), 2, Decimal("150.00")),
        (date(2026, 2, 1), 2, Decimal("320.00")),
        (date(2026, 3, 1), 2, Decimal("280.00")),
    ]


def test_content_engagement_per_topic_before_the_cut_off(built):
    # Alice's third view of 白茶 is on the as-of day itself, so it does not count yet.
    alice_key = features_of(built, "unionid", "oA")["customer_key"]
    assert published_rows(
        built,
        "select customer_key, as_of_date, topic, views, seconds, last_viewed_date from customer_content_engagement",
    ) == [(alice_key, AS_OF, "白茶", 2, 180, date(2026, 3, 9))]


def test_checkin_routing_takes_the_first_check_in_a_week_before(built, tmp_path):
    # Alice (a buyer) and carol (never ordered, not a member) joined the check-in group on 3 March;
    # alice checked in again later and bob only on 4 March, so only the first two leave it today.
    checkins = write_csv(
        tmp_path / "checkins.csv",
        "event_type,occurred_at,unionid,phone,topic,duration_seconds,campaign_id",
        "checkin,2026-03-03T09:00:00+08:00,oA,,,,",
        "checkin,2026-03-05T09:00:00+08:00,oA,,,,",
        "checkin,2026-03-03T20:00:00+08:00,,13900000003,,,",
        "checkin,2026-03-04T09:00:00+08:00,oB,,,,",
    )
    ingest(built, [checkins], "events")
    build(built, AS_OF, run_checks=False)
    keys = {
        name: features_of(built, id_type, value)["customer_key"]
        for name, id_type, value in (("alice", "unionid", "oA"), ("carol", "phone", "13900000003"))
    }
    rows = published_rows(
        built,
        "select customer_key, checkin_joined_date, route_to_group from action_checkin_routing order by 3",
    )
    assert rows == [
        (keys["alice"], date(2026, 3, 3), "会员群"),
        (keys["carol"], date(2026, 3, 3), "综合福利群"),
    ]


def test_unpaid_reminders_pick_the_orders_that_crossed_a_mark_in_the_last_interval(built, tmp_path):
    # The reminder runs every 10 minutes with marks at 10 minutes and 24 hours: at 12:00 it takes
    # orders created in (11:40, 11:50] and, a day earlier, in (11:50, 12:00], still unpaid.
    unpaid = write_csv(
        tmp_path / "unpaid.csv",
        "order_id,created_at,updated_at,paid_at,status,amount,refund_amount,refunded_at,channel,is_gift,phone,unionid,email",
        "U1,2026-03-10T11:45:00+08:00,,,created,88,,,miniprogram,false,13900000001,,",
        "U2,2026-03-10T11:50:00+08:00,,,created,66,,,tmall,false,13900000099,,",
        # Reminded by the run before (the window is open at its start).
        "U3,2026-03-10T11:40:00+08:00,,,created,55,,,tmall,false,13900000093,,",
        # Paid before the run: not reminded.
        "U4,2026-03-10T11:45:00+08:00,,,created,44,,,tmall,false,13900000094,,",
        "U4,2026-03-10T11:45:00+08:00,2026-03-10T11:55:00+08:00,2026-03-10T11:55:00+08:00,paid,44,,,tmall,false,13900000094,,",
        # Paid after the run: still unpaid as of 12:00.
        "U5,2026-03-10T11:46:00+08:00,,,created,33,,,tmall,false,,oB,",
        "U5,2026-03-10T11:46:00+08:00,2026-03-10T12:05:00+08:00,2026-03-10T12:05:00+08:00,paid,33,,,tmall,false,,oB,",
        "U6,2026-03-09T11:55:00+08:00,,,created,22,,,tmall,false,13900000096,,",
        # Cancelled: not reminded.
        "U7,2026-03-09T11:56:00+08:00,2026-03-09T12:10:00+08:00,,cancelled,11,,,tmall,false,13900000097,,",
    )
    ingest(built, [unpaid], "orders")
    at = datetime(2026, 3, 10, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert unpaid_reminders(built, at) == 4
    alice = features_of(built, "phone", "13900000001")["customer_key"]
    bob = features_of(built, "unionid", "oB")["customer_key"]
    query = (
        "select reminder_minutes, order_id, customer_key, phone from action_unpaid_reminders order by 1, 2"
    )
    expected = [
        (10, "U1", alice, "13900000001"),
        (10, "U2", None, "13900000099"),
        (10, "U5", bob, None),
        (1440, "U6", None, "13900000096"),
    ]
    assert published_rows(built, query) == expected
    unpaid_reminders(built, at)
    assert published_rows(built, query) == expected


def test_rerun_is_identical_and_earlier_as_of_sees_less(built):
    before = published_rows(built, "select * from customer_features order by customer_key")
    build(built, AS_OF, run_checks=False)
    assert published_rows(built, "select * from customer_features order by customer_key") == before
    build(built, date(2026, 3, 1), run_checks=False)
    alice = features_of(built, "phone", "13900000001")
    assert (alice["order_count"], alice["total_spend"]) == (4, Decimal("470.00"))
    history = published_rows(
        built, "select as_of_date, count(*) from customer_features_history group by 1 order by 1"
    )
    assert history == [(date(2026, 3, 1), 7), (AS_OF, 7)]


def test_keys_are_stable_when_new_data_arrives_and_merges_are_recorded(built, tmp_path):
    alice_key = features_of(built, "unionid", "oA")["customer_key"]
    carol_key = features_of(built, "phone", "13900000003")["customer_key"]
    # Carol orders under a new unionid that also carries Alice's phone: Carol and Alice merge.
    more = tmp_path / "orders_more.csv"
    more.write_text(
        "order_id,created_at,status,amount,phone,unionid\n"
        "C1,2026-03-10T10:00:00+08:00,paid,10,13900000003,oC\n"
        "C2,2026-03-10T11:00:00+08:00,paid,10,13900000001,oC\n"
    )
    ingest(built, [more], "orders")
    build(built, date(2026, 3, 11), run_checks=False)
    merged = features_of(built, "phone", "13900000003")["customer_key"]
    assert merged == alice_key  # Alice's identifiers were seen first, her key survives
    assert published_rows(built, "select merged_key, surviving_key from identity_merges") == [
        (carol_key, alice_key)
    ]


def test_expected_next_order_falls_back_to_the_consumption_cycle_then_the_brand_median(built, tmp_path):
    # Dan buys once, on 03-02: two boxes of 寿眉 (30 days each) and one 面膜 (15 days). With no
    # interval of his own, his next order is due when the longest-lasting of them runs out.
    orders, items = tmp_path / "orders_dan.csv", tmp_path / "order_items_dan.csv"
    orders.write_text(
        "order_id,created_at,status,amount,phone\nD1,2026-03-02T10:00:00+08:00,paid,250,13900000004\n"
    )
    items.write_text("order_id,sku,quantity,price\nD1,TEA-WHT-V,2,100\nD1,SKN-MSK-V,1,50\n")
    ingest(built, [orders], "orders")
    ingest(built, [items], "order_items")
    build(built, AS_OF, run_checks=False)
    dan = features_of(built, "phone", "13900000004")
    assert dan["median_repurchase_interval_days"] is None
    assert (dan["expected_next_order_date"], dan["replenishment_due_date"]) == (
        date(2026, 5, 1),
        date(2026, 5, 1),
    )
    # J1 bought once, nothing with a cycle: the brand's median interval between purchase days,
    # 14 (Alice's 30, 6, 19, 8 and Bob's 14), after 02-01.
    j1 = features_of(built, "unionid", "oJ1")
    assert (j1["median_repurchase_interval_days"], j1["replenishment_due_date"]) == (None, None)
    assert j1["expected_next_order_date"] == date(2026, 2, 15)


def test_habit_ties_go_to_the_earlier_band_label_and_weekday(built, tmp_path):
    bob = features_of(built, "phone", "13900000002")
    assert (bob["preferred_hour_band"], bob["preferred_weekday"]) == ("afternoon", 7)  # two Sundays at noon
    # Dan orders once on a Tuesday morning and once on a Thursday evening: one order each way.
    dan = tmp_path / "orders_dan.csv"
    dan.write_text(
        "order_id,created_at,status,amount,phone\n"
        "D1,2026-02-03T10:00:00+08:00,paid,10,13900000009\n"
        "D2,2026-02-05T20:00:00+08:00,paid,10,13900000009\n"
    )
    ingest(built, [dan], "orders")
    build(built, AS_OF, run_checks=False)
    dan_features = features_of(built, "phone", "13900000009")
    assert (dan_features["preferred_hour_band"], dan_features["preferred_weekday"]) == ("evening", 2)


def test_a_row_delivered_in_two_files_of_one_run_comes_from_the_file_loaded_last(built, tmp_path):
    # One ingest run loads both files of a kind, so the rows share _loaded_at; the second file's
    # row wins although the first file holds it on a later line.
    def files(kind: str, header: str, first: list[str], second: list[str]) -> list:
        return [
            write_csv(tmp_path / f"{kind}_{number}.csv", header, *rows)
            for number, rows in ((1, first), (2, second))
        ]

    products = files(
        "products",
        "sku,product_name,category,subcategory,price_line,list_price,cycle_days",
        ["OLD-1,旧,茶,绿茶,value,10,", "NEW-1,新,茶,绿茶,value,10,30"],
        ["PAD-1,垫,茶,绿茶,value,10,", "NEW-1,新,礼品,茶具,premium,10,30"],
    )
    orders = files(
        "orders",
        "order_id,created_at,updated_at,status,amount,phone",
        [
            "P1,2026-03-01T10:00:00+08:00,,paid,10,13900000011",
            "E1,2026-03-01T10:00:00+08:00,,paid,10,13900000010",
        ],
        ["E1,2026-03-01T10:00:00+08:00,,paid,20,13900000010"],
    )
    items = files(
        "order_items",
        "order_id,sku,quantity,price",
        ["P1,OLD-1,1,10", "E1,NEW-1,1,10"],
        ["E1,NEW-1,2,10"],
    )
    for kind, paths in (("products", products), ("orders", orders), ("order_items", items)):
        ingest(built, paths, kind)
    build(built, AS_OF, run_checks=False)
    eve = features_of(built, "phone", "13900000010")
    assert eve["total_spend"] == Decimal("20.00")
    assert eve["favorite_category"] == "礼品"
    assert eve["replenishment_due_date"] == date(2026, 4, 30)  # two units of a 30-day product


def test_the_documented_columns_are_the_built_columns(built):
    from transforms.expressions import feature_columns

    built_columns = [
        r[0] for r in published_rows(built, "select column_name from (describe customer_features)")
    ]
    assert list(feature_columns()) == built_columns


def test_unpaid_reminders_before_any_build_name_no_customer(make_settings, tmp_path):
    settings = make_settings()
    unpaid = write_csv(
        tmp_path / "unpaid.csv",
        "order_id,created_at,status,amount,channel,phone",
        "U1,2026-03-10T11:45:00+08:00,created,88,miniprogram,13900000001",
    )
    ingest(settings, [unpaid], "orders")
    assert unpaid_reminders(settings, datetime(2026, 3, 10, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai"))) == 1
    assert published_rows(settings, "select order_id, customer_key, phone from action_unpaid_reminders") == [
        ("U1", None, "13900000001")
    ]
    assert published_rows(
        settings, "select count(*) from duckdb_tables() where table_name = 'customer_identifiers'"
    ) == [(0,)]
