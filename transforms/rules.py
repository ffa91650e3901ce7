"""Ordered rules: the first matching rule names a customer's segment (or tag), a catch-all the rest.

Shared by segment models and single-valued tag groups, together with the lint that reports how
many customers match several rules (overlaps, resolved by order) or none (gaps).
"""

from __future__ import annotations

from dataclasses import dataclass

from transforms.expressions import CompiledExpression
from transforms.sql import literal


@dataclass(frozen=True)
class Rule:
    name: str  # the segment or tag a match gives
    label: str
    condition: CompiledExpression


def first_match(rules: list[Rule], otherwise: str | None, attribute: str = "name") -> str:
    """CASE expression: the first rule whose condition holds (a null condition does not hold)."""
    whens = " ".join(
        f"when coalesce(({r.condition.sql}), false) then {literal(getattr(r, attribute))}" for r in rules
    )
    fallback = literal(otherwise) if otherwise is not None else "null"
    return f"case {whens} else {fallback} end"


def rule_report_sql(
    owner_columns: dict[str, str], rules: list[Rule], source: str, otherwise: str | None
) -> str:
    """One row per rule: customers matching it, and those an earlier rule already took.

    A last row (rule_order 0) counts the gap: customers no rule matches.
    """
    owner = ", ".join(f"{literal(value)} as {name}" for name, value in owner_columns.items())
    parts = []
    for index, rule in enumerate(rules, start=1):
        matches = f"coalesce(({rule.condition.sql}), false)"
        earlier = " or ".join(f"coalesce(({r.condition.sql}), false)" for r in rules[: index - 1]) or "false"
        parts.append(
            f"select {owner}, {index} as rule_order, {literal(rule.name)} as rule, "
            f"count(case when {matches} then 1 end) as matching_customers, "
            f"count(case when {matches} and ({earlier}) then 1 end) as taken_by_earlier_rule "
            f"from {source}"
        )
    anything = " or ".join(f"coalesce(({r.condition.sql}), false)" for r in rules) or "false"
    parts.append(
        f"select {owner}, 0 as rule_order, {literal(otherwise or '(none)')} as rule, "
        f"count(case when not ({anything}) then 1 end) as matching_customers, "
        "0 as taken_by_earlier_rule "
        f"from {source}"
    )
    return " union all ".join(parts)
