"""Staging a load: files typed and checked into temp tables, then appended with their quarantine in the load's transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from transforms.engines import Session, Warehouse
from transforms.errors import SegflowError
from transforms.ingest.columns import (
    column_sources,
    error_expression,
    parse_expression,
    text_value,
    typed_source,
)
from transforms.ingest.files import SUPPORTED_SUFFIXES, FileResult, header_of
from transforms.ingest.keys import identifier_values_sql, key_identifiers, key_orders
from transforms.ingest.reading import read_landing
from transforms.mapping import Mapping
from transforms.schema import (
    IDENTIFIER_TYPES,
    KINDS,
    ORDER_KEYED_KINDS,
    PERSON_KINDS,
    identifier_key_column,
)
from transforms.settings import Settings
from transforms.sql import identifier, literal


def line_numbers(con: Session, rejects: pa.Table | None, header_lines: int) -> tuple[str, str]:
    """SQL giving each landing row its line in its own file, and the joins it needs on `landing`.

    Rows keep file order (preserve_insertion_order), so a row's index in its file is its
    _scan_row minus the file's first. Rejected CSV rows (single-file loads only) leave gaps that the
    rejects table fills in.
    """
    con.execute(
        "create or replace temp table landing_file_starts as "
        "select _source_file, min(_scan_row) as first_row from landing group by _source_file"
    )
    joins = " join landing_file_starts as file_starts using (_source_file)"
    index = "(landing._scan_row - file_starts.first_row)"
    if rejects is None:
        return f"{index} + {header_lines + 1}", joins
    landed = con.scalar("select count(*) from landing")
    rejected = set(rejects.column("line").to_pylist())
    total = landed + len(rejected)
    lines = np.array(
        [n for n in range(header_lines + 1, header_lines + 1 + total) if n not in rejected], dtype=np.int64
    )
    con.load_temp_table(
        "landing_lines", pa.table({"row_id": np.arange(landed, dtype=np.int64), "line": lines[:landed]})
    )
    return "landing_lines.line", f"{joins} join landing_lines on landing_lines.row_id = {index}"


@dataclass
class StagedFiles:
    """Files of one kind read, typed and checked into temp tables, waiting for the load's transaction.

    `{table}_checked` holds every row with its text, typed value and error per field, and
    `{table}_quarantine` one row per refused field."""

    table: str
    results: list[FileResult]
    any_error: str

    @property
    def tables(self) -> list[str]:
        return [f"{self.table}_checked", f"{self.table}_quarantine"]

    def drop(self, con: Session) -> None:
        for table in self.tables:
            con.execute(f"drop table if exists {table}")


def stage_files(
    con: Session,
    paths: list[Path],
    kind: str,
    mapping: Mapping,
    settings: Settings,
    batches: dict[str, str],
    loaded_at: datetime,
    workdir: Path,
    table: str,
) -> list[StagedFiles]:
    """Type and check a set of files of one kind and format in one scan; refuse a file with too many
    bad rows. Runs before the load's transaction, so it writes only temp tables."""
    con.execute(f"set TimeZone = {literal(mapping.timezone or settings.timezone)}")
    rejects = read_landing(con, paths, mapping, workdir)
    if rejects is not None and len(paths) > 1:
        # Malformed CSV rows: their line numbers are only exact file by file.
        staged: list[StagedFiles] = []
        for number, path in enumerate(paths):
            staged += stage_files(
                con, [path], kind, mapping, settings, batches, loaded_at, workdir, f"{table}_{number}"
            )
        return staged
    landing_types = {
        name: sql_type
        for name, sql_type, *_ in con.execute("describe landing").fetchall()
        if not name.startswith("_s")
    }
    landing_columns = list(landing_types)
    sources = column_sources(landing_columns, kind, mapping, paths[0] if len(paths) == 1 else paths[0].parent)
    ignored_by_file = {}
    for path in paths:
        own = header_of(path, SUPPORTED_SUFFIXES[path.suffix.lower()], mapping.encoding or "utf-8-sig")
        if own is not None:
            column_sources(own, kind, mapping, path)
            used = {s for s in sources.values() if s}
            ignored_by_file[str(path)] = [c for c in own if c not in used]
    header_lines = 1 if paths[0].suffix.lower() == ".csv" else 0
    line_expr, line_joins = line_numbers(con, rejects, header_lines)

    selects = [f"{line_expr} as _line", "landing._source_file"]
    typed = set()
    for column in KINDS[kind]:
        source = sources[column.name]
        if source and typed_source(landing_types[source], column, mapping):
            typed.add(column.name)
            raw = f"landing.{identifier(source)}"
        elif source:
            raw = text_value(f"cast(landing.{identifier(source)} as varchar)", column, mapping)
        else:
            raw = "cast(null as varchar)"
        selects.append(f"{raw} as {identifier(column.name + '__raw')}")

    future_limit = literal(
        (loaded_at + timedelta(hours=float(settings.get("ingest.future_tolerance_hours")))).isoformat()
    )
    future_limit = f"cast({future_limit} as timestamptz)"
    parsed = [
        f"cast({identifier(c.name + '__raw')} as {c.sql_type}) as {identifier(c.name)}"
        if c.name in typed
        else f"{parse_expression(c, identifier(c.name + '__raw'), mapping)} as {identifier(c.name)}"
        for c in KINDS[kind]
    ]
    errors = [
        f"{error_expression(c, mapping, kind, future_limit)} as {identifier(c.name + '__error')}"
        for c in KINDS[kind]
    ]
    if kind in PERSON_KINDS:
        present = " and ".join(f"{name} is null and {name}__raw is null" for name in IDENTIFIER_TYPES)
        errors.append(
            f"(case when {present} then 'no customer identifier: give {', '.join(IDENTIFIER_TYPES[:-1])} "
            f"or {IDENTIFIER_TYPES[-1]}' end)"
            " as _identifiers__error"
        )
    checked = f"{table}_checked"
    # The scan is the only other copy: text, typed value and error are computed in one pass over it.
    con.execute(
        f"create or replace temp table {checked} as select *, {', '.join(errors)} "
        f"from (select *, {', '.join(parsed)} from (select {', '.join(selects)} from landing{line_joins}))"
    )
    con.execute("drop view landing")
    con.drop_scan("landing_scan")

    any_error = _quarantine_table(con, table, kind, rejects, paths[0])
    staged = StagedFiles(table, [], any_error)

    _check_shares(con, staged, paths, kind, rejects, settings, batches, ignored_by_file)
    con.execute(f"set TimeZone = {literal(settings.timezone)}")
    return [staged]


def insert_staged(
    con: Session,
    staged: StagedFiles,
    kind: str,
    batches: dict[str, str],
    loaded_at: datetime,
    staging: Session,
    warehouse: Warehouse,
) -> None:
    """Key the good rows of staged files and append them, and their refused fields, to the warehouse.

    Where files are typed in a session of their own (`staging`, DuckDB for another engine), the rows
    stay there: only their distinct natural keys go to the work session, which gives the keys, and
    the keys come back; the finished rows then arrive in one bulk load, written once."""
    checked = f"{staged.table}_checked"
    staging.load_temp_table(
        "landing_batches", pa.table({"_source_file": list(batches), "_batch": list(batches.values())})
    )
    names = [c.name for c in KINDS[kind]]
    good_rows = f"select * from {checked} where not ({staged.any_error})"
    key_columns, key_values, key_joins = [], [], []
    if kind in ORDER_KEYED_KINDS:
        _landed_keys(
            con,
            staging,
            warehouse,
            key_orders,
            f"select order_id from ({good_rows})",
            f"select distinct order_id from ({good_rows})",
            "landed_order_keys",
        )
        key_columns.append("_order_key")
        key_values.append("order_keys.order_key")
        key_joins.append(" join landed_order_keys as order_keys using (order_id)")
    if kind in PERSON_KINDS:
        _landed_keys(
            con,
            staging,
            warehouse,
            key_identifiers,
            good_rows,
            f"select distinct id_type, id_value from ({identifier_values_sql(good_rows)})",
            "landed_identifier_keys",
        )
        for id_type in IDENTIFIER_TYPES:
            keys = f"{id_type}_keys"
            key_columns.append(identifier_key_column(id_type))
            key_values.append(f"{keys}.id_key")
            key_joins.append(
                f" left join landed_identifier_keys as {keys} on {keys}.id_type = {literal(id_type)} "
                f"and {keys}.id_value = {checked}.{id_type}"
            )
    loaded = f"cast({literal(loaded_at.isoformat())} as timestamptz)"
    _append(
        staging,
        con,
        warehouse,
        f"raw.{kind}",
        {
            **{name: f"{checked}.{identifier(name)}" for name in names},
            "_file": "_source_file",
            "_line": "_line",
            "_batch": "_batch",
            "_loaded_at": loaded,
            **dict(zip(key_columns, key_values, strict=True)),
        },
        f"from {checked} join landing_batches using (_source_file){''.join(key_joins)} "
        f"where not ({staged.any_error}) order by _source_file, _line",
    )
    staging.execute("drop table if exists landed_order_keys")
    staging.execute("drop table if exists landed_identifier_keys")
    _append(
        staging,
        con,
        warehouse,
        "meta.ingest_quarantine",
        {
            "file": "_source_file",
            "line": "line",
            "field": "field",
            "value": "value",
            "reason": "reason",
            "batch": "_batch",
            "kind": literal(kind),
            "loaded_at": loaded,
        },
        f"from {staged.table}_quarantine join landing_batches using (_source_file) order by _source_file, line, field",
    )


def _append(
    staging: Session, con: Session, warehouse: Warehouse, relation: str, values: dict[str, str], rest: str
) -> None:
    """Rows selected in the staging session (`values`: each column of `relation` and its SQL) appended."""
    select = ", ".join(f"{sql} as {identifier(column)}" for column, sql in values.items())
    warehouse.append_rows(staging, con, relation, list(values), f"select {select} {rest}")


def _landed_keys(
    con: Session,
    staging: Session,
    warehouse: Warehouse,
    key: Callable[..., None],
    rows_sql: str,
    distinct_sql: str,
    landed_keys: str,
) -> None:
    """`key` (key_orders, key_identifiers) run in the work session for the staged rows, its temp
    table `landed_keys` left where the rows are."""
    if staging is con:
        key(con, rows_sql)
        return
    warehouse.hand_over(staging, con, {"staged_natural_keys": distinct_sql})
    key(con, rows_sql, distinct_table="staged_natural_keys")
    warehouse.take_back(con, staging, [landed_keys])
    con.execute(f"drop table {landed_keys}")


def _quarantine_table(con: Session, table: str, kind: str, rejects: pa.Table | None, first_path: Path) -> str:
    """Every refused field of the checked rows (and every CSV row that would not split) into
    `<table>_quarantine`; returns the condition that marks a row with any refused field."""
    checked = f"{table}_checked"
    error_columns = [c.name for c in KINDS[kind]] + (["_identifiers"] if kind in PERSON_KINDS else [])
    any_error = " or ".join(f"{identifier(name + '__error')} is not null" for name in error_columns)
    # A field taken typed from the file shows as text, like the rest.
    values = {name: f"cast({identifier(name + '__raw')} as varchar)" for name in error_columns}
    values["_identifiers"] = "null"
    quarantine_parts = [
        f"select _source_file, _line as line, {literal('identifiers' if name == '_identifiers' else name)} as field, "
        f"{values[name]} as value, "
        f"{identifier(name + '__error')} as reason from {checked} where {identifier(name + '__error')} is not null"
        for name in error_columns
    ]
    if rejects is not None:
        con.load_temp_table("landing_reject_rows", rejects)
        quarantine_parts.append(
            f"select {literal(first_path)} as _source_file, line, '(row)' as field, csv_line as value, "
            "error_message as reason from landing_reject_rows"
        )
    con.execute(f"create or replace temp table {table}_quarantine as {' union all '.join(quarantine_parts)}")
    return any_error


def _check_shares(
    con: Session,
    staged: StagedFiles,
    paths: list[Path],
    kind: str,
    rejects: pa.Table | None,
    settings: Settings,
    batches: dict[str, str],
    ignored_by_file: dict,
) -> None:
    """A file with too many bad rows is refused whole (nothing staged is kept); the others get their counts."""
    table = staged.table
    checked = f"{table}_checked"
    counts = dict(con.execute(f"select _source_file, count(*) from {checked} group by 1").fetchall())
    bad = dict(
        con.execute(
            f"select _source_file, count(distinct line) from {table}_quarantine group by 1"
        ).fetchall()
    )
    max_share = float(settings.get("ingest.max_quarantine_share"))
    grace = int(settings.get("ingest.quarantine_grace_rows"))
    for path in paths:
        rows_read = counts.get(str(path), 0) + (rejects.num_rows if rejects is not None else 0)
        rows_bad = bad.get(str(path), 0)
        if rows_read and rows_bad / rows_read > max_share and rows_bad > grace:
            examples = con.execute(
                f"select line, field, value, reason from {table}_quarantine where _source_file = ? "
                "order by line, field limit 3",
                [str(path)],
            ).fetchall()
            staged.drop(con)
            shown = "; ".join(f"line {ln} field {fd} value {v!r}: {r}" for ln, fd, v, r in examples)
            raise SegflowError(
                f"{path}: {rows_bad} of {rows_read} rows are bad (more than the allowed share {max_share:.0%}), "
                f"so nothing was loaded; first: {shown}"
            )
        staged.results.append(
            FileResult(
                file=str(path),
                kind=kind,
                status="loaded",
                rows_read=rows_read,
                rows_loaded=rows_read - rows_bad,
                rows_quarantined=rows_bad,
                batch=batches[str(path)],
                ignored_columns=ignored_by_file.get(str(path), []),
            )
        )
