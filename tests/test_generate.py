"""The sample-data generator: large sets come in parts whose people and orders never overlap."""

from __future__ import annotations

import hashlib
from datetime import date

import duckdb

from transforms import generate as generator


def _digest(folder) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_parts_have_distinct_people_and_orders_and_one_catalog(tmp_path, monkeypatch):
    monkeypatch.setattr(generator, "ORDERS_PER_PART", 1_000)
    result = generator.generate(
        tmp_path / "a", orders=2_500, days=30, last_day=date(2026, 6, 30), fmt="parquet"
    )
    assert result.orders == 2_500
    landing = tmp_path / "a"
    assert sorted(p.name for p in (landing / "products").iterdir()) == ["products_2026-06-01.parquet"]
    con = duckdb.connect()
    orders = f"read_parquet('{landing}/orders/*.parquet', filename = true)"
    parts = con.execute(
        f"select regexp_extract(filename, '_part(\\d+)', 1) as part, count(distinct order_id) "
        f"from {orders} where order_id is not null group by part order by part"
    ).fetchall()
    assert [p for p, _ in parts] == ["000", "001", "002"]
    assert sum(n for _, n in parts) == 2_500
    # An order id, a unionid or a non-shop phone belongs to one part only.
    for column in ("order_id", "unionid", "phone"):
        shared = con.execute(
            f"select count(*) from (select {column} from {orders} "
            f"where {column} is not null and {column} <> '{generator.SHOP_PHONE}' group by {column} "
            f"having count(distinct regexp_extract(filename, '_part(\\d+)', 1)) > 1)"
        ).fetchone()[0]
        assert shared == 0, column
    assert result.people == 119 + 119 + 119  # parts of 834, 833 and 833 orders, 7 orders a person

    again = generator.generate(
        tmp_path / "b", orders=2_500, days=30, last_day=date(2026, 6, 30), fmt="parquet"
    )
    assert again == result.__class__(**{**result.__dict__, "out_dir": tmp_path / "b"})
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")


def test_orders_spread_over_the_period_and_follow_signup(tmp_path):
    generator.generate(tmp_path, orders=20_000, days=365, last_day=date(2026, 6, 30), fmt="parquet")
    con = duckdb.connect()
    con.execute("set TimeZone = 'Asia/Shanghai'")
    per_day = dict(
        con.execute(
            f"select cast(created_at as date), count(distinct order_id) "
            f"from read_parquet('{tmp_path}/orders/*.parquet') group by 1"
        ).fetchall()
    )
    average = sum(per_day.values()) / len(per_day)
    assert len(per_day) == 365
    assert per_day[date(2026, 6, 30)] < 2 * average, (per_day[date(2026, 6, 30)], average)
    assert max(per_day.values()) < 2 * average
    # Nobody orders before they signed up, and some orders are free samples.
    early = con.execute(
        f"select count(*) from read_parquet('{tmp_path}/orders/*.parquet') as o "
        f"join read_parquet('{tmp_path}/contacts/*.parquet') as c on o.unionid = c.unionid "
        "where o.created_at < c.signup_at - interval 1 day"
    ).fetchone()[0]
    assert early == 0
    free = con.execute(
        f"select count(*) from read_parquet('{tmp_path}/orders/*.parquet') where amount = 0"
    ).fetchone()[0]
    assert free > 0
