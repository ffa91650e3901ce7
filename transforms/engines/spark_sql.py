"""segflow's SQL (DuckDB dialect) as Spark SQL runs it: sqlglot's transpiler plus the rewrites where
its output would run but mean something else.

Each rewrite is one construct whose meaning differs; tests/test_engines.py runs every one on every
engine and compares the answers.
- date_diff(unit, a, b): DuckDB counts the unit boundaries crossed; Spark's datediff(unit, ...)
  counts whole units elapsed (a month from Jan 31 to Feb 1 is 1 in DuckDB, 0 in Spark).
- percentile_cont(p) within group (order by x): sqlglot writes Spark's approximate percentile;
  Spark's percentile(x, p) is exact and interpolates as percentile_cont does.
- extract(isodow from d): Monday 1 to Sunday 7, which Spark spells weekday(d) + 1.
- a / b: DuckDB divides decimals and integers as doubles and answers null for a zero divisor; Spark
  keeps decimals and, in ANSI mode (Spark 4's default), raises on zero: try_divide of doubles.
- avg(x): a double in DuckDB, a decimal in Spark for decimals.
- x at time zone z: for a timestamptz, its wall time in z; Spark's from_utc_timestamp would shift
  a session-local timestamp once more. convert_timezone from the session's zone instead.
- round(x, n) of a decimal: DuckDB gives a decimal of scale n, as Spark; of a double, both round half
  away from zero.
"""

from __future__ import annotations

from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.dialects.spark import Spark

from transforms.errors import SegflowError

DOUBLE = exp.DataType.build("double")


def _unit(node: exp.Expression) -> str:
    unit = node.args.get("unit")
    return (unit.name if unit is not None else "day").lower().strip("'")


def _boundaries(unit: str, start: exp.Expression, end: exp.Expression) -> exp.Expression:
    """How many `unit` boundaries lie between start and end, as DuckDB's date_diff counts them."""
    start_date = exp.cast(start.copy(), exp.DataType.build("date"))
    end_date = exp.cast(end.copy(), exp.DataType.build("date"))
    if unit in ("day", "days", "d"):
        return exp.func("datediff", end_date, start_date)
    months = lambda value: exp.Paren(  # noqa: E731
        this=exp.Add(
            this=exp.Mul(this=exp.func("year", value), expression=exp.Literal.number(12)),
            expression=exp.func("month", value),
        )
    )
    if unit in ("month", "months", "mon"):
        return exp.Sub(this=months(end_date), expression=months(start_date))
    if unit in ("year", "years", "y"):
        return exp.Sub(this=exp.func("year", end_date), expression=exp.func("year", start_date))
    if unit in ("quarter", "quarters"):
        quarters = lambda value: exp.Paren(  # noqa: E731
            this=exp.Add(
                this=exp.Mul(this=exp.func("year", value), expression=exp.Literal.number(4)),
                expression=exp.func("quarter", value),
            )
        )
        return exp.Sub(this=quarters(end_date), expression=quarters(start_date))
    seconds = {"hour": 3600, "hours": 3600, "minute": 60, "minutes": 60, "second": 1, "seconds": 1}.get(unit)
    if seconds:
        epoch = lambda value: exp.func(  # noqa: E731
            "floor",
            exp.Div(
                this=exp.Anonymous(
                    this="unix_seconds",
                    expressions=[exp.cast(value.copy(), exp.DataType.build("timestamptz"))],
                ),
                expression=exp.Literal.number(seconds),
            ),
        )
        return exp.Sub(this=epoch(end), expression=epoch(start))
    raise SegflowError(f"date_diff('{unit}', ...) has no Spark form in segflow yet")


def _rewrite(node: exp.Expression) -> exp.Expression:
    """One construct rewritten; its children are rewritten already (see _rewritten), so they are
    copied as they are."""
    if isinstance(node, exp.DateDiff):
        unit = _unit(node)
        # DuckDB's date_diff(unit, start, end) parses as DateDiff(this=end, expression=start).
        return exp.cast(_boundaries(unit, node.expression, node.this), exp.DataType.build("bigint"))
    if isinstance(node, exp.WithinGroup) and isinstance(node.this, exp.PercentileCont):
        order = node.expression
        value = order.expressions[0].this if isinstance(order, exp.Order) else order
        return exp.func("percentile", value.copy(), node.this.this.copy())
    if isinstance(node, exp.Extract) and node.this.name.lower() == "isodow":
        return exp.Add(this=exp.func("weekday", node.expression.copy()), expression=exp.Literal.number(1))
    if isinstance(node, exp.Div) and not isinstance(node, exp.IntDiv):
        return exp.func(
            "try_divide", exp.cast(node.this.copy(), DOUBLE), exp.cast(node.expression.copy(), DOUBLE)
        )
    if isinstance(node, exp.AtTimeZone):
        # segflow's times are timestamptz, whose wall time in a zone Spark reaches from the session's.
        return exp.Anonymous(
            this="convert_timezone",
            expressions=[
                exp.Anonymous(this="current_timezone", expressions=[]),
                node.args["zone"].copy(),
                exp.cast(node.this.copy(), exp.DataType.build("timestamp_ntz")),
            ],
        )
    if isinstance(node, exp.Avg) and not isinstance(node.parent, exp.Cast):
        return exp.cast(node.copy(), DOUBLE)
    return node


@lru_cache(maxsize=4096)
def parse(sql: str) -> tuple[exp.Expression, ...]:
    """The statements of `sql` (DuckDB dialect) with the rewrites applied; cached."""
    statements = sqlglot.parse(sql, read="duckdb")
    return tuple(_rewritten(statement) for statement in statements if statement is not None)


def _rewritten(tree: exp.Expression) -> exp.Expression:
    """The rewrites applied children first, so a construct nested in another is rewritten too."""
    for node in reversed(list(tree.walk())):
        new = _rewrite(node)
        if new is node:
            continue
        if node is tree:
            tree = new
        else:
            node.replace(new)
    return tree


class SparkNestedCTEs(Spark):
    """Spark SQL as sqlglot writes it, keeping a WITH inside a subquery where it is (sqlglot moves
    it to the top as Hive would need, where two packs' CTEs of one name collide; Spark 3+ reads them
    in place)."""

    class Generator(Spark.Generator):
        EXPRESSIONS_WITHOUT_NESTED_CTES: set = set()


def generate(statement: exp.Expression) -> str:
    return statement.sql(dialect=SparkNestedCTEs)


def hash_bucket_sql(value_sql: str, buckets: int) -> str:
    """DuckDB's md5_number(value) % buckets: the MD5 digest read as a little-endian 128-bit integer,
    reduced byte by byte (Spark has no 128-bit integers). Byte i is hex digits 2i+1..2i+2 of md5."""
    digest = f"md5({value_sql})"
    terms = [
        f"cast(conv(substr({digest}, {2 * i + 1}, 2), 16, 10) as bigint) * {pow(256, i, buckets)}"
        for i in range(16)
    ]
    return f"(({' + '.join(terms)}) % {buckets})"
