"""Mapping files: how a brand's own export (Chinese headers, its own status words) reads as ours."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from transforms.errors import SegflowError
from transforms.schema import KINDS
from transforms.settings import load_yaml

ALLOWED_KEYS = {"columns", "values", "timestamp_format", "date_format", "timezone", "encoding"}


@dataclass(frozen=True)
class Mapping:
    columns: dict[str, str] = field(default_factory=dict)  # ours -> theirs
    values: dict[str, dict[str, str]] = field(default_factory=dict)  # ours -> {theirs: ours}
    timestamp_format: str | None = None
    date_format: str | None = None
    timezone: str | None = None
    encoding: str | None = None
    source: str = "(no mapping)"


def load_mapping(path: Path | None, kind: str) -> Mapping:
    if path is None:
        return Mapping()
    document = load_yaml(path)
    if not isinstance(document, dict):
        raise SegflowError(f"{path}: a mapping is a YAML object with 'columns' and optional 'values'")
    unknown = set(document) - ALLOWED_KEYS
    if unknown:
        raise SegflowError(f"{path}: unknown key(s) {sorted(unknown)}; allowed: {sorted(ALLOWED_KEYS)}")
    ours = {column.name for column in KINDS[kind]}
    columns = {str(k): str(v) for k, v in (document.get("columns") or {}).items()}
    values = {
        str(k): {str(a): str(b) for a, b in (v or {}).items()}
        for k, v in (document.get("values") or {}).items()
    }
    for name in list(columns) + list(values):
        if name not in ours:
            raise SegflowError(
                f"{path}: '{name}' is not a column of kind {kind}; ours are: {', '.join(sorted(ours))}"
            )
    timezone = document.get("timezone")
    if timezone:
        try:
            ZoneInfo(timezone)
        except Exception as exc:
            raise SegflowError(f"{path}: timezone '{timezone}' is not a known timezone") from exc
    encoding = document.get("encoding")
    if encoding:
        import codecs

        try:
            codecs.lookup(encoding)
        except LookupError as exc:
            raise SegflowError(
                f"{path}: encoding '{encoding}' is not known (e.g. gb18030, gbk, utf-8)"
            ) from exc
    return Mapping(
        columns=columns,
        values=values,
        timestamp_format=document.get("timestamp_format"),
        date_format=document.get("date_format"),
        timezone=timezone,
        encoding=encoding,
        source=str(path),
    )
