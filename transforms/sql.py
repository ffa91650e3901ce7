"""SQL text built from values: the one place that quotes a literal or an identifier."""

from __future__ import annotations


def literal(value: object) -> str:
    """A string literal: 'it''s'."""
    return "'" + str(value).replace("'", "''") + "'"


def identifier(name: str) -> str:
    """A quoted identifier, for column names that come from files or config ("首单渠道")."""
    return '"' + name.replace('"', '""') + '"'
