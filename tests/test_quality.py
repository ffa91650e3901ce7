"""Column checks: GE validates Arrow batches through its pandas engine, and the batches add up."""

from __future__ import annotations

from decimal import Decimal

import duckdb
import pytest

from transforms import quality
from transforms.engines.duckdb import DuckDBSession


@pytest.fixture
def orders():
    con = duckdb.connect()
    con.execute(
        "create table orders (order_id varchar, status varchar, amount decimal(18, 2), created_on date)"
    )
    con.execute(
        "insert into orders values "
        "('A1', 'paid', 10.50, date '2026-06-01'), "
        "(null, 'paid', -0.01, date '2026-06-02'), "
        "('A3', 'lost', 99.99, date '2026-06-03'), "
        "(null, 'paid', null, date '2026-06-04'), "
        "('A5', 'gone', -250.00, date '2026-06-05')"
    )
    yield DuckDBSession(con)  # the session the engine gives the checks
    con.close()


@pytest.mark.parametrize("batch_rows", [1_000_000, 2])
def test_column_checks_count_every_batch(orders, monkeypatch, batch_rows):
    monkeypatch.setattr(quality, "BATCH_ROWS", batch_rows)
    checks = {
        "amount": quality.Check("raw", "amount", "between", "error", "orders", "amount", min=0),
        "order_id": quality.Check("raw", "order_id", "not_null", "error", "orders", "order_id"),
        "status": quality.Check(
            "raw", "status", "in_set", "warning", "orders", "status", values=("paid", "completed")
        ),
        "created_on": quality.Check("raw", "created_on", "not_null", "error", "orders", "created_on"),
    }
    outcomes = {name: quality._run_check(orders, check, {}) for name, check in checks.items()}

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
