"""segflow's SQL (DuckDB dialect) as PostgreSQL runs it: sqlglot's transpiler plus the rewrites
where its output would run but mean something else.

Each rewrite is one construct whose meaning differs; tests/test_engines.py runs every one on both
engines and compares the answers.
- round(x, n): PostgreSQL has no round(double, n), and round(double) rounds half to even where
  DuckDB rounds half away from zero; numeric rounds half away from zero on both. The result is a
  double, as DuckDB's round of a double (segflow rounds ratios, never money).
- avg(x): a double in DuckDB, numeric in PostgreSQL for integers and decimals.
- sha256(text): PostgreSQL's takes bytea and returns bytea; DuckDB's takes text and returns hex.
- a // b: DuckDB's integer division, truncating; sqlglot divides as doubles and casts, which
  rounds.
- a subquery in FROM without an alias: PostgreSQL 15 requires one.
- pub.<table> in a reader's SQL: the published schema, not segflow's work schema of that name.
- ORDER BY of the rows an INSERT or CREATE TABLE AS writes (without LIMIT): DuckDB keeps the
  order it is given, which lays tables out for its scans; a PostgreSQL table keeps none, so there
  it would only sort (ingest's append of 1.9M order rows: 8.9 s with the sort, 3.3 s without).
The statements DuckDB has and PostgreSQL lacks (create or replace table, insert ... by name,
describe) are answered by the session itself (postgres.py).
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import sqlglot
from sqlglot import exp

from transforms.errors import SegflowError

PARAMETER = "__segflow_parameter__"
_aliases = itertools.count()


def _rewrite(node: exp.Expression, published_schema: str | None) -> exp.Expression:
    if isinstance(node, exp.Join) and node.kind.upper() in ("SEMI", "ANTI"):
        # PostgreSQL would read `x anti join y` as table x aliased "anti", inner-joined to y.
        raise SegflowError(
            f"{node.kind.lower()} join has no PostgreSQL form; write [not] exists: {node.sql()}"
        )
    if isinstance(node, exp.Round) and not isinstance(node.parent, exp.Cast):
        node.set("this", exp.cast(node.this, exp.DataType.build("numeric")))
        return exp.cast(node, exp.DataType.build("double"))
    if isinstance(node, exp.Round):
        node.set("this", exp.cast(node.this, exp.DataType.build("numeric")))
    elif isinstance(node, exp.Avg) and not isinstance(node.parent, exp.Cast):
        return exp.cast(node, exp.DataType.build("double"))
    elif isinstance(node, exp.SHA2) or (isinstance(node, exp.Anonymous) and node.name.lower() == "sha256"):
        value = node.this if isinstance(node, exp.SHA2) else node.expressions[0]
        as_bytes = exp.func("convert_to", value.copy(), exp.Literal.string("UTF8"))
        return exp.func("encode", exp.func("sha256", as_bytes), exp.Literal.string("hex"))
    elif isinstance(node, exp.Unhex):
        return exp.Anonymous(this="decode", expressions=[node.this, exp.Literal.string("hex")])
    elif isinstance(node, exp.IntDiv):
        return exp.cast(exp.func("div", node.this, node.expression), exp.DataType.build("bigint"))
    elif isinstance(node, exp.Subquery) and not node.alias and isinstance(node.parent, (exp.From, exp.Join)):
        node.set("alias", exp.TableAlias(this=exp.to_identifier(f"_subquery_{next(_aliases)}")))
    elif isinstance(node, exp.Placeholder):
        return exp.Var(this=PARAMETER)
    elif published_schema and isinstance(node, exp.Table) and node.db.lower() == "pub":
        node.set("db", exp.to_identifier(published_schema))
    return node


@lru_cache(maxsize=4096)
def parse(sql: str, published_schema: str | None = None) -> tuple[exp.Expression, ...]:
    """The statements of `sql` with the rewrites applied; cached, as the same SQL runs many times."""
    statements = sqlglot.parse(sql, read="duckdb")
    return tuple(
        _unordered_writes(statement.transform(lambda node: _rewrite(node, published_schema)))
        for statement in statements
        if statement is not None
    )


def _unordered_writes(statement: exp.Expression) -> exp.Expression:
    """The statement without the ORDER BY of the rows it writes into a table (see above)."""
    if isinstance(statement, exp.Insert | exp.Create) and isinstance(statement.expression, exp.Select):
        rows = statement.expression
        if rows.args.get("order") and not rows.args.get("limit") and not rows.args.get("offset"):
            rows.set("order", None)
    return statement


def generate(statement: exp.Expression, with_parameters: bool) -> str:
    """PostgreSQL text; with parameters, psycopg's %s placeholders and every other % doubled."""
    text = statement.sql(dialect="postgres")
    if with_parameters:
        return text.replace("%", "%%").replace(PARAMETER, "%s")
    return text


def hash_bucket_sql(value_sql: str, buckets: int) -> str:
    """DuckDB's md5_number(value) % buckets: the MD5 digest read as a little-endian 128-bit integer,
    reduced byte by byte so that no 128-bit arithmetic is needed. Written in segflow's dialect, as
    every SQL the session runs: unhex becomes PostgreSQL's decode(..., 'hex')."""
    digest = f"unhex(md5({value_sql}))"
    terms = [f"get_byte({digest}, {i}) * {pow(256, i, buckets)}" for i in range(16)]
    return f"(({' + '.join(terms)}) % {buckets})"
