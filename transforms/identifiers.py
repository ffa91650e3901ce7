"""Identifier values as people type them: normalised as ingest normalises them, masked for display.

Ingest normalises in SQL (`ingest.columns.parse_expression`); config rules and `segflow whois` take
values a person typed, so they need the same normal form in Python. A test holds the two equal.
"""

from __future__ import annotations

import re

from transforms.schema import IDENTIFIER_TYPES
from transforms.sql import literal

_MAINLAND_MOBILE = re.compile(r"1[0-9]{10}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def normalise(id_type: str, text: object) -> str | None:
    """The value ingest would store for `text` in an identifier column of this type, or None where
    ingest would refuse it (a phone that is not a mainland mobile number, an email without a domain)."""
    if id_type not in IDENTIFIER_TYPES:
        raise ValueError(f"unknown identifier type {id_type!r}")
    value = str(text).strip() if text is not None else ""
    if not value:
        return None
    if id_type == "phone":
        digits = re.sub(r"[^0-9]", "", re.sub(r"\.0+$", "", value))
        if len(digits) == 13 and digits.startswith("86"):
            digits = digits[2:]
        elif len(digits) == 15 and digits.startswith("0086"):
            digits = digits[4:]
        return digits if _MAINLAND_MOBILE.fullmatch(digits) else None
    if id_type == "email":
        lowered = value.lower()
        return lowered if _EMAIL.fullmatch(lowered) else None
    return value


def mask(id_type: str, value: str | None) -> str | None:
    """Enough of an identifier to recognise it, not enough to contact the person."""
    if value is None:
        return None
    if id_type == "phone" and len(value) == 11:
        return value[:3] + "****" + value[-4:]
    if id_type == "email" and "@" in value:
        user, domain = value.split("@", 1)
        return user[:1] + "***@" + domain
    # Short ids (member numbers) would be shown whole by a fixed-length prefix.
    return value[: min(4, len(value) // 3)] + "****"


def matching_sql(identifiers: object) -> str:
    """A SQL condition on columns id_type and id_value that holds for any of these (type, value)
    pairs: how config rules and whois find identifiers in raw.identifier_keys and the histories."""
    return " or ".join(
        f"(id_type = {literal(id_type)} and id_value = {literal(id_value)})"
        for id_type, id_value in identifiers
    )
