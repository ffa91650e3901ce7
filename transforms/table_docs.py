"""What each published table and column means, from the YAML beside each model (sql/marts/*.yml).

Publishing writes them as table and column comments, so a BI tool shows what a column means
without the YAML. `_columns.yml` holds the columns that mean the same in every table.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from transforms import PROJECT_ROOT
from transforms.settings import load_yaml
from transforms.sql import literal

DOCS_DIR = PROJECT_ROOT / "sql" / "marts"
HISTORY_SUFFIX = "_history"


@dataclass(frozen=True)
class TableDoc:
    grain: str
    columns: dict[str, str]
    other_columns: str | None = None  # for tables whose columns come from config (customer_tags_wide)

    def column(self, name: str) -> str | None:
        return self.columns.get(name) or _shared_columns().get(name) or self.other_columns


@cache
def _shared_columns() -> dict[str, str]:
    return {c["name"]: c["description"] for c in load_yaml(DOCS_DIR / "_columns.yml")["columns"]}


@cache
def table_docs() -> dict[str, TableDoc]:
    docs = {}
    for path in sorted(DOCS_DIR.glob("*.yml")):
        document = load_yaml(path)
        if "name" not in document:
            continue
        docs[document["name"]] = TableDoc(
            grain=str(document["grain"]),
            columns={c["name"]: str(c["description"]) for c in document.get("columns") or []},
            other_columns=document.get("other_columns"),
        )
    return docs


def table_doc(table: str) -> TableDoc | None:
    """A table's doc; a `*_history` twin is its snapshot table's rows kept per as-of date."""
    docs = table_docs()
    if table in docs:
        return docs[table]
    base = table.removesuffix(HISTORY_SUFFIX)
    if table.endswith(HISTORY_SUFFIX) and base in docs:
        doc = docs[base]
        return TableDoc(f"{doc.grain}, kept per as_of_date", doc.columns, doc.other_columns)
    return None


def comment_statements(relation: str, table: str, columns: list[str], kind: str = "table") -> list[str]:
    """COMMENT ON statements for a table (as `relation`, a table or a view: `kind`) and those of its
    columns that are documented."""
    doc = table_doc(table)
    if doc is None:
        return []
    statements = [f"comment on {kind} {relation} is {literal(doc.grain)}"]
    for column in columns:
        text = doc.column(column)
        if text:
            statements.append(f'comment on column {relation}."{column}" is {literal(text)}')
    return statements
