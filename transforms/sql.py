"""SQL text built from values: the one place that quotes a literal or an identifier."""

from __future__ import annotations

import re


def literal(value: object) -> str:
    """A string literal: 'it''s'."""
    return "'" + str(value).replace("'", "''") + "'"


def identifier(name: str) -> str:
    """A quoted identifier, for column names that come from files or config ("首单渠道")."""
    return '"' + name.replace('"', '""') + '"'


def ref(model: str) -> str:
    """A reference to a model in SQL that Python generates; the model runner resolves it (as it
    resolves `{{ ref('model') }}` in sql/) and records the dependency."""
    return "{{ ref('" + model + "') }}"


_REF = re.compile(r"\{\{ ref\('(\w+)'\) \}\}")
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")


def sub_unquoted(pattern: re.Pattern | str, replace, sql: str) -> str:
    """re.sub over the SQL text outside string literals and quoted identifiers."""
    out, position = [], 0
    for quoted in _QUOTED.finditer(sql):
        out.append(re.sub(pattern, replace, sql[position : quoted.start()]))
        out.append(quoted.group(0))
        position = quoted.end()
    out.append(re.sub(pattern, replace, sql[position:]))
    return "".join(out)


def render_refs(sql: str, resolve) -> str:
    """Replace each ref(model) outside string literals and quoted identifiers by resolve(model)."""
    # One pass over both: a ref's own quotes must not read as the start of a literal.
    pattern = re.compile(f"{_REF.pattern}|{_QUOTED.pattern}")
    return pattern.sub(lambda found: resolve(found.group(1)) if found.group(1) else found.group(0), sql)
