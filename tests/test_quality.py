"""Column checks: GE's SQL execution engine computes them in the warehouse, a table's checks as one
suite, with the same counts on every engine."""

from __future__ import annotations

from decimal import Decimal

import pytest

from transforms import quality
from transforms.engines import open_warehouse


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def orders(request, make_settings):
    """A session of each engine holding the table the checks read."""
    settings = make_settings() if request.param == "duckdb" else request.getfixturevalue("make_pg_settings")()
    with open_warehouse(settings).work() as con:
        _create_orders(con)
        yield con


def _create_orders(con) -> None:
    con.execute("drop table if exists raw.orders_checked")
    con.execute(
        "create table raw.orders_checked (order_id varchar, status varchar, amount decimal(18, 2), created_on date)"
    )
    con.execute(
        "insert into raw.orders_checked values "
        "('A1', 'paid', 10.50, date '2026-06-01'), "
        "(null, 'paid', -0.01, date '2026-06-02'), "
        "('A3', 'lost', 99.99, date '2026-06-03'), "
        "(null, 'paid', null, date '2026-06-04'), "
        "('A5', 'gone', -250.00, date '2026-06-05')"
    )


def test_column_checks_count_every_row(orders):
    checks = {
        "amount": quality.Check("raw", "amount", "between", "error", "raw.orders_checked", "amount", min=0),
        "order_id": quality.Check("raw", "order_id", "not_null", "error", "raw.orders_checked", "order_id"),
        "status": quality.Check(
            "raw", "status", "in_set", "warning", "raw.orders_checked", "status", values=("paid", "completed")
        ),
        "created_on": quality.Check(
            "raw", "created_on", "not_null", "error", "raw.orders_checked", "created_on"
        ),
    }
    outcomes = {name: quality.run_check(orders, check, {}) for name, check in checks.items()}

    # Decimals reach GE as floats: the two negative amounts are found, the null one is not checked.
    row, result = outcomes["amount"]
    assert (row["success"], row["observed"]) == (False, "2 of 4 rows unexpected")
    assert sorted(Decimal(str(v)) for v in result.result["partial_unexpected_list"]) == [
        Decimal("-250"),
        Decimal("-0.01"),
    ]
    row, result = outcomes["order_id"]
    assert (row["success"], row["observed"]) == (False, "2 of 5 rows unexpected")
    row, result = outcomes["status"]
    assert (row["success"], row["observed"], row["severity"]) == (False, "2 of 5 rows unexpected", "warning")
    assert sorted(result.result["partial_unexpected_list"]) == ["gone", "lost"]
    assert all(isinstance(value, str) for value in result.result["partial_unexpected_list"])
    row, _ = outcomes["created_on"]
    assert (row["success"], row["observed"]) == (True, "0 of 5 rows unexpected")


def test_two_tags_in_a_single_valued_group_fail_the_checks(features_built):
    from datetime import date

    from transforms.build import run_step
    from transforms.errors import SegflowError

    with open_warehouse(features_built).work() as con:
        group, first, second = con.execute(
            "select tag_group, min(tag), max(tag) from pub.tag_report where not multi_valued "
            "group by tag_group having count(distinct tag) > 1 order by tag_group limit 1"
        ).fetchall()[0]
        customer = con.scalar(
            "select min(customer_key) from pub.customer_tags where tag_group = ? and tag = ?", [group, first]
        )
        con.execute(
            "insert into pub.customer_tags select * replace (? as tag) from pub.customer_tags "
            "where customer_key = ? and tag_group = ?",
            [second, customer, group],
        )
    with pytest.raises(SegflowError, match="single_valued_groups_hold_one_tag observed 1"):
        run_step(features_built, date(2026, 3, 10), "checks")
