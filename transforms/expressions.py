"""The safe expression language that marketing writes in tags.yml, segments.yml and packs.yml.

An expression is parsed with sqlglot and walked node by node: known feature columns, literals,
comparisons, and/or/not, in, between, null tests, arithmetic and a short list of functions are
allowed; everything else (subqueries, DDL, semicolons, unknown columns or functions) is refused
with a message naming where it was written, the expression and the offending part.

Helpers a marketer can use beside the feature columns:
  has_tag('白茶')  /  has_tag('偏好品类', '白茶')   the customer carries the tag (in this run)
  in_segment('lifecycle', 'churned')               the customer is in that segment of that model
  days_since(last_order_date), days_until(expected_next_order_date)   whole days from/to the as-of date
  bought('subcategory', '茶具')  /  bought('sku', 'GFT-SET-P', 30)   bought it in a counted order
                                   before the as-of date (within the last N days: days_since <= N)
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import cache

import sqlglot
from sqlglot import exp

from transforms import PROJECT_ROOT
from transforms.errors import SegflowError
from transforms.schema import ITEM_LEVELS
from transforms.settings import load_yaml
from transforms.sql import literal, ref, sub_unquoted

ALLOWED_NODES = (
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.Boolean,
    exp.Null,
    exp.Paren,
    exp.And,
    exp.Or,
    exp.Not,
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.Is,
    exp.In,
    exp.Between,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.Neg,
    exp.Tuple,
    exp.Like,
    exp.Cast,
    exp.DataType,
    exp.Coalesce,
    exp.Abs,
    exp.Round,
    exp.Lower,
    exp.Upper,
    exp.Length,
    exp.Least,
    exp.Greatest,
)
# How the helpers' subqueries name the models they read while sqlglot builds them.
MODEL_TABLE = "segflow_model__"
ALLOWED_CASTS = {"DATE", "INT", "BIGINT", "DOUBLE", "DECIMAL", "VARCHAR", "TEXT"}
HELPERS = {"has_tag", "in_segment", "days_since", "days_until", "bought"}


@cache
def feature_columns() -> tuple[str, ...]:
    """Columns of customer_features, from its documented schema (sql/marts/customer_features.yml)."""
    document = load_yaml(PROJECT_ROOT / "sql" / "marts" / "customer_features.yml")
    return tuple(column["name"] for column in document["columns"])


@dataclass(frozen=True)
class CompiledExpression:
    sql: str  # DuckDB SQL over a row of customer_features (aliased `f`), models named by sql.ref()
    tags: tuple[tuple[str | None, str], ...]  # (group or None, tag) named by has_tag()
    segments: tuple[tuple[str, str], ...]  # (model, segment) named by in_segment()


def _refuse(where: str, text: str, part: str, why: str) -> SegflowError:
    return SegflowError(f"{where}: expression `{text}` is refused: {why} (at `{part}`)")


def _bought(node: exp.Expression, where: str, text: str) -> exp.Expression:
    """bought(level, value[, within_days]): the customer is among those who bought it (before the
    as-of date, within the last N days)."""
    args = node.expressions
    usage = "bought('category' | 'subcategory' | 'sku', 'value'[, within_days])"
    if len(args) not in (2, 3) or not all(isinstance(a, exp.Literal) and a.is_string for a in args[:2]):
        raise _refuse(where, text, node.sql(), usage)
    level, value = args[0].this, args[1].this
    if level not in ITEM_LEVELS:
        raise _refuse(
            where, text, node.sql(), f"bought() level '{level}' is not one of {', '.join(ITEM_LEVELS)}"
        )
    condition = f"b.{level} = {literal(value)}"
    if len(args) == 3:
        days = args[2]
        if not (
            isinstance(days, exp.Literal)
            and not days.is_string
            and days.this.isdigit()
            and int(days.this) > 0
        ):
            raise _refuse(
                where, text, node.sql(), "bought()'s within_days is a whole number of days, 1 or more"
            )
        # The purchases' own as_of_date, not the outer row's: the subquery stays uncorrelated.
        condition += f" and date_diff('day', b.last_bought_date, b.as_of_date) <= {int(days.this)}"
    return sqlglot.parse_one(
        f"f.customer_key in (select b.customer_key from {MODEL_TABLE}customer_purchased_items as b "
        f"where {condition})",
        read="duckdb",
    )


def compile_expression(
    text: str,
    where: str,
    columns: tuple[str, ...] | None = None,
    known_tags: set[tuple[str, str]] | None = None,
    known_segments: set[tuple[str, str]] | None = None,
) -> CompiledExpression:
    """Check an expression and translate it to SQL. `where` names the tag, segment or pack."""
    columns = columns or feature_columns()
    if not isinstance(text, str) or not text.strip():
        raise SegflowError(f"{where}: the expression is empty")
    try:
        commented = [token for token in sqlglot.tokenize(text, read="duckdb") if token.comments]
    except sqlglot.errors.TokenError as exc:
        raise SegflowError(f"{where}: expression `{text}` does not parse: {exc}") from exc
    if commented:
        # A comment would silently drop the rest of the condition (`a >= 1 -- and b > 30`).
        raise _refuse(where, text, commented[0].comments[0].strip(), "comments are not allowed")
    try:
        statements = sqlglot.parse(text, read="duckdb")
    except sqlglot.errors.ParseError as exc:
        raise SegflowError(
            f"{where}: expression `{text}` does not parse: {exc.errors[0]['description']}"
        ) from exc
    if len(statements) != 1 or statements[0] is None:
        raise _refuse(where, text, ";", "one expression only, no semicolons")
    tree = statements[0]
    tags: list[tuple[str | None, str]] = []
    segments: list[tuple[str, str]] = []

    def check(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Anonymous) or (
            isinstance(node, exp.Func) and not isinstance(node, ALLOWED_NODES)
        ):
            name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if name not in HELPERS:
                raise _refuse(where, text, node.sql(), f"unknown function '{name}'")
            return _helper(node, name)
        if not isinstance(node, ALLOWED_NODES):
            raise _refuse(where, text, node.sql(), f"{type(node).__name__.lower()} is not allowed")
        if isinstance(node, exp.Column):
            if node.table or node.name not in columns:
                nearest = difflib.get_close_matches(node.name, columns, n=1)
                hint = f"; did you mean '{nearest[0]}'?" if nearest else ""
                raise _refuse(where, text, node.sql(), f"unknown column '{node.sql()}'{hint}")
            return exp.column(node.name, table="f")
        if isinstance(node, exp.In) and node.args.get("query"):
            raise _refuse(where, text, node.sql(), "subqueries are not allowed")
        if isinstance(node, exp.DataType) and node.this.name not in ALLOWED_CASTS:
            raise _refuse(where, text, node.sql(), f"cast to {node.sql()} is not allowed")
        return node

    def _helper(node: exp.Expression, name: str) -> exp.Expression:
        args = node.expressions
        if name in ("days_since", "days_until"):
            if len(args) != 1 or not isinstance(args[0], exp.Column) or args[0].name not in columns:
                raise _refuse(where, text, node.sql(), f"{name}() takes one date column")
            column = exp.column(args[0].name, table="f")
            start, end = (column, exp.column("as_of_date", table="f"))
            if name == "days_until":
                start, end = end, start
            return exp.DateDiff(this=end, expression=start, unit=exp.var("DAY"))
        if name == "bought":
            return _bought(node, where, text)
        if not all(isinstance(a, exp.Literal) and a.is_string for a in args):
            raise _refuse(where, text, node.sql(), f"{name}() takes quoted names")
        values = [a.this for a in args]
        if name == "has_tag":
            if len(values) not in (1, 2):
                raise _refuse(where, text, node.sql(), "has_tag('tag') or has_tag('group', 'tag')")
            group, tag = (None, values[0]) if len(values) == 1 else (values[0], values[1])
            if known_tags is not None and not any(
                t == tag and (group is None or g == group) for g, t in known_tags
            ):
                raise _refuse(where, text, node.sql(), f"no tag '{tag}' in the catalog")
            tags.append((group, tag))
            condition = f"t.tag = {literal(tag)}" + (f" and t.tag_group = {literal(group)}" if group else "")
            return sqlglot.parse_one(
                f"f.customer_key in (select t.customer_key from {MODEL_TABLE}customer_tags as t where {condition})"
            )
        if len(values) != 2:
            raise _refuse(where, text, node.sql(), "in_segment('model', 'segment')")
        if known_segments is not None and tuple(values) not in known_segments:
            raise _refuse(where, text, node.sql(), f"no segment '{values[1]}' in model '{values[0]}'")
        segments.append((values[0], values[1]))
        return sqlglot.parse_one(
            f"f.customer_key in (select s.customer_key from {MODEL_TABLE}customer_segments as s "
            f"where s.model = {literal(values[0])} and s.segment = {literal(values[1])})"
        )

    compiled = tree.transform(check, copy=True).sql(dialect="duckdb")
    # The helpers' tables become model references for the runner (or a reader) to resolve; column
    # names are checked against the features and literals are left alone.
    compiled = sub_unquoted(rf"\b{MODEL_TABLE}(\w+)", lambda found: ref(found.group(1)), compiled)
    return CompiledExpression(sql=compiled, tags=tuple(tags), segments=tuple(segments))
