"""Typed columns: the SQL that parses each landed text value and names why a value is refused."""

from __future__ import annotations

from pathlib import Path

from transforms.errors import SegflowError
from transforms.mapping import Mapping
from transforms.schema import (
    FALSE_WORDS,
    KINDS,
    TRUE_WORDS,
    Column,
)
from transforms.sql import identifier, literal

# -- typed columns and the reasons a value is refused ---------------------------------------------
# A file's own column types (Parquet, JSON) whose values are taken as they are for our column types:
# the text round trip of every value cost a quarter of typing a 1M-order load (bench/RESULTS.md).
TYPED_AS_OURS = {
    "timestamp": ("TIMESTAMP WITH TIME ZONE", "TIMESTAMP"),
    "date": ("DATE",),
    "boolean": ("BOOLEAN",),
}


def typed_source(source_type: str, column: Column, mapping: Mapping) -> bool:
    """Whether a landing column of this type is taken as it is for our column: the same value its
    text would parse to, without the text (unless the mapping says how to read the text)."""
    read_as_text = (
        column.name in mapping.values
        or (column.type == "timestamp" and mapping.timestamp_format)
        or (column.type == "date" and mapping.date_format)
    )
    return not read_as_text and source_type in TYPED_AS_OURS.get(column.type, ())


def text_value(source: str, column: Column, mapping: Mapping) -> str:
    value = f"nullif(trim({source}), '')"
    words = mapping.values.get(column.name)
    if words:
        cases = " ".join(f"when {literal(theirs)} then {literal(ours)}" for theirs, ours in words.items())
        value = f"(case {value} {cases} else {value} end)"
    return value


def parse_expression(column: Column, raw: str, mapping: Mapping) -> str:
    if column.type == "timestamp":
        if mapping.timestamp_format:
            return f"cast(try_strptime({raw}, {literal(mapping.timestamp_format)}) as timestamptz)"
        return f"try_cast({raw} as timestamptz)"
    if column.type == "date":
        if mapping.date_format:
            return f"cast(try_strptime({raw}, {literal(mapping.date_format)}) as date)"
        return f"try_cast({raw} as date)"
    if column.type == "amount":
        return f"try_cast(replace(replace(replace({raw}, ',', ''), '¥', ''), '￥', '') as decimal(18, 2))"
    if column.type == "integer":
        return f"try_cast(try_cast({raw} as double) as bigint)"
    if column.type == "boolean":
        trues = ", ".join(literal(w) for w in TRUE_WORDS)
        falses = ", ".join(literal(w) for w in FALSE_WORDS)
        return (
            f"(case when lower({raw}) in ({trues}) then true when lower({raw}) in ({falses}) then false end)"
        )
    if column.type == "enum":
        accepted = ", ".join(literal(w) for w in column.accepted)
        return f"(case when lower({raw}) in ({accepted}) then lower({raw}) end)"
    if column.type == "phone":
        digits = f"regexp_replace(regexp_replace({raw}, '\\.0+$', ''), '[^0-9]', '', 'g')"
        national = (
            f"(case when length({digits}) = 13 and starts_with({digits}, '86') then substr({digits}, 3)"
            f" when length({digits}) = 15 and starts_with({digits}, '0086') then substr({digits}, 5)"
            f" else {digits} end)"
        )
        # Most phones arrive as the 11 digits already: those skip the clean-up.
        return (
            f"(case when regexp_full_match({raw}, '1[0-9]{{10}}') then {raw} "
            f"when regexp_full_match({national}, '1[0-9]{{10}}') then {national} end)"
        )
    if column.type == "email":
        return f"(case when regexp_full_match(lower({raw}), '[^@\\s]+@[^@\\s]+\\.[^@\\s]+') then lower({raw}) end)"
    return raw


def refusal(column: Column, mapping: Mapping) -> str:
    return {
        "timestamp": "not a timestamp: use ISO 8601"
        + (
            f" or {mapping.timestamp_format}"
            if mapping.timestamp_format
            else " or set timestamp_format in the mapping"
        ),
        "date": "not a date: use YYYY-MM-DD" + (f" or {mapping.date_format}" if mapping.date_format else ""),
        "amount": "not a number",
        "integer": "not a whole number",
        "boolean": "not a yes/no value (true/false, 1/0, yes/no, 是/否)",
        "enum": f"not one of {', '.join(column.accepted)}; map your words under `values:` in the mapping",
        "phone": "not a mainland mobile number (11 digits starting with 1, +86 allowed)",
        "email": "not an email address",
    }.get(column.type, "not readable")


def error_expression(column: Column, mapping: Mapping, kind: str, future_limit: str) -> str:
    name = identifier(column.name)
    raw = identifier(column.name + "__raw")
    checks = []
    if column.required:
        checks.append(f"when {raw} is null then 'required field is empty'")
    checks.append(f"when {raw} is not null and {name} is null then {literal(refusal(column, mapping))}")
    if column.type in ("amount", "integer"):
        checks.append(f"when {name} < 0 then 'negative value'")
    if kind == "orders" and column.name == "refund_amount":
        checks.append("when refund_amount > amount then 'refund larger than the order amount'")
    if kind == "orders" and column.name == "created_at":
        checks.append(f"when created_at > {future_limit} then 'in the future (after the load time)'")
    if kind == "order_items" and column.name == "quantity":
        checks.append("when quantity = 0 then 'quantity must be at least 1'")
    return f"(case {' '.join(checks)} end)"


def column_sources(
    landing_columns: list[str], kind: str, mapping: Mapping, path: Path
) -> dict[str, str | None]:
    by_lower = {name.strip().lower(): name for name in landing_columns}
    sources: dict[str, str | None] = {}
    for column in KINDS[kind]:
        wanted = mapping.columns.get(column.name, column.name)
        found = wanted if wanted in landing_columns else by_lower.get(wanted.strip().lower())
        if found is None and column.name in mapping.columns:
            raise SegflowError(
                f"{path}: the mapping {mapping.source} reads {column.name} from column '{wanted}', "
                f"which the file does not have (it has: {', '.join(landing_columns)})"
            )
        if found is None and column.required:
            raise SegflowError(
                f"{path}: required column '{column.name}' is missing (it has: {', '.join(landing_columns)}); "
                "name it in a mapping file under `columns:`"
            )
        sources[column.name] = found
    return sources
