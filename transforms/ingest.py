"""Landing files (CSV, Parquet, JSON lines) to raw tables: mapped, typed, checked, quarantined, once each.

Every row is validated set-based in DuckDB. Bad fields go to `ingest_quarantine` with file, line,
field and reason while the good rows load. A file is recognised by its SHA-256, so a rerun or a
re-sent file loads nothing twice. One command is one transaction: it loads completely or not at all.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from transforms.engines import DatabaseError, OutOfMemoryError, Session, open_warehouse
from transforms.errors import SegflowError
from transforms.failpoints import failpoint
from transforms.mapping import Mapping, load_mapping
from transforms.schema import (
    FALSE_WORDS,
    IDENTIFIER_KEYS_DDL,
    IDENTIFIER_TYPES,
    KINDS,
    ORDER_KEYED_KINDS,
    ORDER_KEYS_DDL,
    PERSON_KINDS,
    TRUE_WORDS,
    Column,
    identifier_key_column,
    raw_table_ddl,
)
from transforms.settings import Settings
from transforms.sql import identifier, literal

SUPPORTED_SUFFIXES = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
# Kinds in the order a landing folder is loaded: reference data before the facts that use it.
KIND_ORDER = ("products", "contacts", "orders", "order_items", "events", "manual_tags")

QUARANTINE_DDL = """
create table if not exists pub.ingest_quarantine (
    file varchar, line bigint, field varchar, value varchar, reason varchar,
    batch varchar, kind varchar, loaded_at timestamptz
)"""
FILES_DDL = """
create table if not exists meta.ingest_files (
    sha256 varchar, kind varchar, file varchar, batch varchar, rows_read bigint,
    rows_loaded bigint, rows_quarantined bigint, loaded_at timestamptz
)"""


@dataclass
class FileResult:
    file: str
    kind: str
    status: str  # loaded | skipped
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    batch: str = ""
    ignored_columns: list[str] = field(default_factory=list)
    note: str = ""


def expand_paths(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(
                p for p in path.rglob("*") if p.suffix.lower() in SUPPORTED_SUFFIXES and p.is_file()
            )
        elif path.exists():
            files.append(path)
        else:
            raise SegflowError(f"{path}: file not found")
    return files


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


# -- reading a file into a landing table of text columns -----------------------------------------
def _check_utf8(path: Path) -> None:
    """Refuse a text file that is not UTF-8, naming the first bad line (DuckDB's sniffer would guess)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines_before = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                line = lines_before + block.count(b"\n", 0, max(exc.start, 0)) + 1
                raise SegflowError(
                    f"{path} line {line}: not UTF-8 text; if Excel on Chinese Windows saved it, "
                    "add `encoding: gb18030` to the mapping"
                ) from exc
            lines_before += block.count(b"\n")


def _transcode_to_utf8(path: Path, encoding: str, workdir: Path) -> Path:
    target = workdir / (path.stem + ".utf8" + path.suffix)
    decoder = codecs.getincrementaldecoder(encoding)()
    with open(path, "rb") as source, open(target, "w", encoding="utf-8", newline="") as sink:
        for number, line in enumerate(source, start=1):
            try:
                sink.write(decoder.decode(line))
            except UnicodeDecodeError as exc:
                raise SegflowError(f"{path} line {number}: not valid {encoding} text ({exc.reason})") from exc
    return target


def _needs_transcoding(mapping: Mapping) -> bool:
    return bool(mapping.encoding) and codecs.lookup(mapping.encoding).name != "utf-8"


def _file_format(path: Path) -> str:
    file_format = SUPPORTED_SUFFIXES.get(path.suffix.lower())
    if file_format is None:
        raise SegflowError(f"{path}: unsupported file type; use .csv, .parquet or .jsonl")
    if path.stat().st_size == 0:
        raise SegflowError(
            f"{path}: the file is empty (0 bytes), probably an export that failed; nothing loaded"
        )
    return file_format


def _header(path: Path, file_format: str, encoding: str) -> list[str] | None:
    """A file's own column names (None for JSON lines, whose rows name their own fields)."""
    if file_format == "parquet":
        import pyarrow.parquet as pq

        return pq.read_schema(path).names
    if file_format == "csv":
        with open(path, encoding=encoding, newline="") as handle:
            first = handle.readline().lstrip("\ufeff")
        return [name.strip() for name in next(csv.reader([first]), [])]
    return None


def _read_landing(con: Session, paths: list[Path], mapping: Mapping, workdir: Path) -> pa.Table | None:
    """Scan files of one format into temp table `landing_scan`, read through temp view `landing`
    (all text, plus `_source_file` and `_scan_row`).

    One multi-file scan instead of one per file: per-file overhead dominates daily landing
    folders. Returns the CSV rows DuckDB could not split into columns, if any.
    """
    formats = {_file_format(path) for path in paths}
    if len(formats) > 1:
        raise SegflowError(
            f"{paths[0].parent}: mixed file types in one load; load CSV, Parquet and JSON separately"
        )
    file_format = formats.pop()
    con.execute("drop view if exists landing")
    con.execute("drop table if exists landing_scan")
    sources: dict[str, Path] = {}
    for path in paths:
        source = path
        if file_format == "csv" and _needs_transcoding(mapping):
            source = _transcode_to_utf8(path, mapping.encoding, workdir)
        sources[str(source)] = path
    listed = "[" + ", ".join(literal(s) for s in sources) + "]"
    if file_format == "csv":
        con.execute("drop table if exists landing_rejects")
        con.execute("drop table if exists landing_rejects_scan")
        reader = (
            f"read_csv({listed}, all_varchar = true, header = true, filename = '_scan_file',"
            " store_rejects = true, rejects_table = 'landing_rejects', rejects_scan = 'landing_rejects_scan')"
        )
    elif file_format == "parquet":
        reader = f"read_parquet({listed}, union_by_name = true, filename = '_scan_file')"
    else:
        reader = f"read_json({listed}, format = 'newline_delimited', union_by_name = true, filename = '_scan_file')"
    try:
        con.execute(f"create temp table landing_scan as select * from {reader}")
    except OutOfMemoryError:
        raise
    except DatabaseError as exc:
        raise SegflowError(
            f"{paths[0]}: cannot be read as {file_format} ({str(exc).splitlines()[0]})"
        ) from exc
    names = [row[0] for row in con.execute("describe landing_scan").fetchall() if row[0] != "_scan_file"]
    casts = ", ".join(f"cast({identifier(n)} as varchar) as {identifier(n)}" for n in names)
    con.load_temp_table(
        "landing_sources",
        pa.table({"_scan_file": list(sources), "_source_file": [str(p) for p in sources.values()]}),
    )
    con.execute(
        f"create temp view landing as select {casts}, landing_sources._source_file, landing_scan.rowid as _scan_row "
        "from landing_scan join landing_sources using (_scan_file)"
    )
    if file_format != "csv":
        return None
    rejects = con.fetch_arrow("select line, csv_line, error_message from landing_rejects order by line")
    return rejects if rejects.num_rows else None


# -- typed columns and the reasons a value is refused ---------------------------------------------
def _text_value(source: str, column: Column, mapping: Mapping) -> str:
    value = f"nullif(trim({source}), '')"
    words = mapping.values.get(column.name)
    if words:
        cases = " ".join(f"when {literal(theirs)} then {literal(ours)}" for theirs, ours in words.items())
        value = f"(case {value} {cases} else {value} end)"
    return value


def _parse_expression(column: Column, raw: str, mapping: Mapping) -> str:
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
        return f"(case when regexp_full_match({national}, '1[0-9]{{10}}') then {national} end)"
    if column.type == "email":
        return f"(case when regexp_full_match(lower({raw}), '[^@\\s]+@[^@\\s]+\\.[^@\\s]+') then lower({raw}) end)"
    return raw


def _refusal(column: Column, mapping: Mapping) -> str:
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


def _error_expression(column: Column, mapping: Mapping, kind: str, future_limit: str) -> str:
    name = identifier(column.name)
    raw = identifier(column.name + "__raw")
    checks = []
    if column.required:
        checks.append(f"when {raw} is null then 'required field is empty'")
    checks.append(f"when {raw} is not null and {name} is null then {literal(_refusal(column, mapping))}")
    if column.type in ("amount", "integer"):
        checks.append(f"when {name} < 0 then 'negative value'")
    if kind == "orders" and column.name == "refund_amount":
        checks.append("when refund_amount > amount then 'refund larger than the order amount'")
    if kind == "orders" and column.name == "created_at":
        checks.append(f"when created_at > {future_limit} then 'in the future (after the load time)'")
    if kind == "order_items" and column.name == "quantity":
        checks.append("when quantity = 0 then 'quantity must be at least 1'")
    return f"(case {' '.join(checks)} end)"


def _column_sources(
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


def _line_numbers(con: Session, rejects: pa.Table | None, header_lines: int) -> str:
    """SQL giving each landing row its line in its own file.

    Rows keep file order (preserve_insertion_order), so a row's index in its file is its scan
    rowid minus the file's first. Rejected CSV rows (single-file loads only) leave gaps that the
    rejects table fills in.
    """
    con.execute(
        "create or replace temp table landing_file_starts as "
        "select _source_file, min(_scan_row) as first_row from landing group by _source_file"
    )
    index = "(landing._scan_row - (select s.first_row from landing_file_starts as s where s._source_file = landing._source_file))"
    if rejects is None:
        return f"{index} + {header_lines + 1}"
    landed = con.scalar("select count(*) from landing")
    rejected = set(rejects.column("line").to_pylist())
    total = landed + len(rejected)
    lines = np.array(
        [n for n in range(header_lines + 1, header_lines + 1 + total) if n not in rejected], dtype=np.int64
    )
    con.load_temp_table(
        "landing_lines", pa.table({"row_id": np.arange(landed, dtype=np.int64), "line": lines[:landed]})
    )
    return f"(select l.line from landing_lines as l where l.row_id = {index})"


@dataclass
class StagedFiles:
    """Files of one kind read, typed and checked into temp tables, waiting for the load's transaction.

    `{table}_checked` holds every row with its text, typed value and error per field, and
    `{table}_quarantine` one row per refused field."""

    table: str
    results: list[FileResult]
    any_error: str

    def drop(self, con: Session) -> None:
        con.execute(f"drop table if exists {self.table}_checked")
        con.execute(f"drop table if exists {self.table}_quarantine")


def _stage_files(
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
    rejects = _read_landing(con, paths, mapping, workdir)
    if rejects is not None and len(paths) > 1:
        # Malformed CSV rows: their line numbers are only exact file by file.
        staged: list[StagedFiles] = []
        for number, path in enumerate(paths):
            staged += _stage_files(
                con, [path], kind, mapping, settings, batches, loaded_at, workdir, f"{table}_{number}"
            )
        return staged
    landing_columns = [r[0] for r in con.execute("describe landing").fetchall() if not r[0].startswith("_s")]
    sources = _column_sources(
        landing_columns, kind, mapping, paths[0] if len(paths) == 1 else paths[0].parent
    )
    ignored_by_file = {}
    for path in paths:
        own = _header(path, SUPPORTED_SUFFIXES[path.suffix.lower()], mapping.encoding or "utf-8-sig")
        if own is not None:
            _column_sources(own, kind, mapping, path)
            used = {s for s in sources.values() if s}
            ignored_by_file[str(path)] = [c for c in own if c not in used]
    header_lines = 1 if paths[0].suffix.lower() == ".csv" else 0
    line_expr = _line_numbers(con, rejects, header_lines)

    selects = [f"{line_expr} as _line", "landing._source_file"]
    for column in KINDS[kind]:
        source = sources[column.name]
        raw = (
            _text_value(f"landing.{identifier(source)}", column, mapping)
            if source
            else "cast(null as varchar)"
        )
        selects.append(f"{raw} as {identifier(column.name + '__raw')}")

    future_limit = literal(
        (loaded_at + timedelta(hours=float(settings.get("ingest.future_tolerance_hours")))).isoformat()
    )
    future_limit = f"cast({future_limit} as timestamptz)"
    parsed = [
        f"{_parse_expression(c, identifier(c.name + '__raw'), mapping)} as {identifier(c.name)}"
        for c in KINDS[kind]
    ]
    errors = [
        f"{_error_expression(c, mapping, kind, future_limit)} as {identifier(c.name + '__error')}"
        for c in KINDS[kind]
    ]
    if kind in PERSON_KINDS:
        present = " and ".join(f"{name} is null and {name}__raw is null" for name in IDENTIFIER_TYPES)
        errors.append(
            f"(case when {present} then 'no customer identifier: give phone, unionid, email or member_id' end)"
            " as _identifiers__error"
        )
    checked = f"{table}_checked"
    # The scan is the only other copy: text, typed value and error are computed in one pass over it.
    con.execute(
        f"create or replace temp table {checked} as select *, {', '.join(errors)} "
        f"from (select *, {', '.join(parsed)} from (select {', '.join(selects)} from landing))"
    )
    con.execute("drop view landing")
    con.execute("drop table landing_scan")

    error_columns = [c.name for c in KINDS[kind]] + (["_identifiers"] if kind in PERSON_KINDS else [])
    any_error = " or ".join(f"{identifier(name + '__error')} is not null" for name in error_columns)
    quarantine_parts = [
        f"select _source_file, _line as line, {literal('identifiers' if name == '_identifiers' else name)} as field, "
        f"{'null' if name == '_identifiers' else identifier(name + '__raw')} as value, "
        f"{identifier(name + '__error')} as reason from {checked} where {identifier(name + '__error')} is not null"
        for name in error_columns
    ]
    if rejects is not None:
        con.load_temp_table("landing_reject_rows", rejects)
        quarantine_parts.append(
            f"select {literal(paths[0])} as _source_file, line, '(row)' as field, csv_line as value, "
            "error_message as reason from landing_reject_rows"
        )
    con.execute(f"create or replace temp table {table}_quarantine as {' union all '.join(quarantine_parts)}")
    staged = StagedFiles(table, [], any_error)

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
    con.execute(f"set TimeZone = {literal(settings.timezone)}")
    return [staged]


def _insert_staged(
    con: Session,
    staged: StagedFiles,
    kind: str,
    batches: dict[str, str],
    loaded_at: datetime,
) -> None:
    """Key the good rows of staged files and append them, and their refused fields, to the warehouse."""
    checked = f"{staged.table}_checked"
    con.load_temp_table(
        "landing_batches", pa.table({"_source_file": list(batches), "_batch": list(batches.values())})
    )
    names = [c.name for c in KINDS[kind]]
    good_rows = f"select * from {checked} where not ({staged.any_error})"
    key_columns, key_values, key_joins = [], [], []
    if kind in ORDER_KEYED_KINDS:
        _key_orders(con, f"select order_id from ({good_rows})")
        key_columns.append("_order_key")
        key_values.append("order_keys.order_key")
        key_joins.append(" join landed_order_keys as order_keys using (order_id)")
    if kind in PERSON_KINDS:
        _key_identifiers(con, good_rows)
        for id_type in IDENTIFIER_TYPES:
            keys = f"{id_type}_keys"
            key_columns.append(identifier_key_column(id_type))
            key_values.append(f"{keys}.id_key")
            key_joins.append(
                f" left join landed_identifier_keys as {keys} on {keys}.id_type = {literal(id_type)} "
                f"and {keys}.id_value = {checked}.{id_type}"
            )
    con.execute(
        f"insert into raw.{kind} ({', '.join([*names, '_file', '_line', '_batch', '_loaded_at', *key_columns])}) "
        f"select {', '.join([*(f'{checked}.{identifier(n)}' for n in names), '_source_file', '_line', '_batch', '?', *key_values])} "
        f"from {checked} join landing_batches using (_source_file){''.join(key_joins)} "
        f"where not ({staged.any_error}) order by _source_file, _line",
        [loaded_at],
    )
    con.execute("drop table if exists landed_order_keys")
    con.execute("drop table if exists landed_identifier_keys")
    con.execute(
        f"insert into pub.ingest_quarantine select _source_file, line, field, value, reason, _batch, ?, ? "
        f"from {staged.table}_quarantine join landing_batches using (_source_file) order by _source_file, line, field",
        [kind, loaded_at],
    )


def ingest(
    settings: Settings,
    paths: list[Path],
    kind: str,
    mapping_path: Path | None = None,
    loaded_at: datetime | None = None,
) -> list[FileResult]:
    """Load files of one kind in one transaction, then publish. Already-loaded files are skipped."""
    if kind not in KINDS:
        raise SegflowError(f"--kind '{kind}' is not one of {', '.join(KINDS)}")
    mapping = load_mapping(mapping_path, kind)
    files = expand_paths(paths)
    loaded_at = loaded_at or datetime.now(UTC)
    warehouse = open_warehouse(settings)
    results: list[FileResult] = []
    doing = f"ingest of {len(files)} {kind} files"
    with (
        warehouse.work(doing, outcome="loaded nothing") as con,
        tempfile.TemporaryDirectory(prefix="segflow-ingest-") as workdir,
    ):
        ensure_raw_tables(con)
        loaded = dict(
            con.execute("select sha256, file from meta.ingest_files where kind = ?", [kind]).fetchall()
        )
        to_load: dict[str, list[Path]] = {}  # one scan per format (and CSV header)
        hashes: dict[str, str] = {}
        for path in files:
            sha256 = file_sha256(path)
            if sha256 in loaded or sha256 in hashes.values():
                earlier = loaded.get(sha256) or next(p for p, h in hashes.items() if h == sha256)
                results.append(
                    FileResult(str(path), kind, "skipped", note=f"same content already loaded as {earlier}")
                )
                continue
            hashes[str(path)] = sha256
            file_format = _file_format(path)
            if file_format in ("csv", "jsonl") and not _needs_transcoding(mapping):
                _check_utf8(path)
            # CSV files are scanned together only when their headers match (reject tables need it).
            header = (
                _header(path, file_format, mapping.encoding or "utf-8-sig") if file_format == "csv" else None
            )
            to_load.setdefault(f"{file_format}:{header}", []).append(path)
        batches = {p: f"{loaded_at:%Y%m%dT%H%M%S}-{h[:10]}" for p, h in hashes.items()}
        # Files are typed and checked before the transaction, not in it. Temp tables written inside
        # a transaction are held until it ends: with them in it, one load of 10.1M order rows ran out
        # of memory under a 600MB limit in its insert (40.6M under 5GB), and loaded when outside it.
        staged: list[StagedFiles] = []
        try:
            for number, group in enumerate(to_load.values()):
                staged += _stage_files(
                    con,
                    group,
                    kind,
                    mapping,
                    settings,
                    batches,
                    loaded_at,
                    Path(workdir),
                    f"landing_{number}",
                )
            con.execute("begin transaction")
            try:
                for files_of_scan in staged:
                    _insert_staged(con, files_of_scan, kind, batches, loaded_at)
                    for result in files_of_scan.results:
                        con.execute(
                            "insert into meta.ingest_files values (?, ?, ?, ?, ?, ?, ?, ?)",
                            [
                                hashes[result.file],
                                kind,
                                result.file,
                                result.batch,
                                result.rows_read,
                                result.rows_loaded,
                                result.rows_quarantined,
                                loaded_at,
                            ],
                        )
                        results.append(result)
                failpoint("ingest:before_commit")
                con.execute("commit")
            except BaseException:
                con.execute("rollback")
                raise
        finally:
            con.execute(f"set TimeZone = {literal(settings.timezone)}")
            for files_of_scan in staged:
                files_of_scan.drop(con)
        if any(r.status == "loaded" for r in results):
            warehouse.publish(con, tables=["ingest_quarantine"])
    return results


def _assign_keys(
    con: Session,
    keys_table: str,
    natural_key: tuple[str, ...],
    key: str,
    landed_sql: str,
    landed_keys: str,
) -> None:
    """Give the natural keys of `landed_sql` not seen before the next integer keys of `keys_table`,
    in natural-key order (so loading the same files into a new warehouse numbers them alike), and
    leave every landed natural key with its key in the temp table `landed_keys`. A key never changes
    once given.

    Rows look their keys up in `landed_keys`, not `keys_table`: a lookup table sized by the batch,
    not by every key ever given (42M order ids by the eighth month of 100M orders a year)."""
    columns = ", ".join(natural_key)
    con.execute(
        f"create or replace temp table landed_natural_keys as select distinct {columns} from ({landed_sql})"
    )
    con.execute(
        f"insert into {keys_table} "
        f"select {columns}, (select coalesce(max({key}), 0) from {keys_table}) + row_number() over (order by {columns}) "
        f"from landed_natural_keys anti join {keys_table} using ({columns})"
    )
    con.execute(
        f"create or replace temp table {landed_keys} as "
        f"select {columns}, {key} from {keys_table} semi join landed_natural_keys using ({columns})"
    )
    con.execute("drop table landed_natural_keys")


def _key_orders(con: Session, order_ids_sql: str) -> None:
    """Order keys for the order_ids of some rows, left in the temp table landed_order_keys."""
    _assign_keys(con, "raw.order_keys", ("order_id",), "order_key", order_ids_sql, "landed_order_keys")


def _identifier_values_sql(rows_sql: str) -> str:
    """Every (id_type, id_value) of some rows of a person kind, one row per identifier present."""
    return " union all ".join(
        f"select {literal(id_type)} as id_type, {id_type} as id_value from ({rows_sql}) where {id_type} is not null"
        for id_type in IDENTIFIER_TYPES
    )


def _key_identifiers(con: Session, rows_sql: str) -> None:
    """Identifier keys for the identifiers of some rows, left in the temp table landed_identifier_keys."""
    _assign_keys(
        con,
        "raw.identifier_keys",
        ("id_type", "id_value"),
        "id_key",
        _identifier_values_sql(rows_sql),
        "landed_identifier_keys",
    )


def ensure_raw_tables(con: Session) -> None:
    for kind in KINDS:
        con.execute(raw_table_ddl(kind))
    con.execute(ORDER_KEYS_DDL)
    _add_order_keys(con)
    con.execute(IDENTIFIER_KEYS_DDL)
    _add_identifier_keys(con)
    con.execute(QUARANTINE_DDL)
    con.execute(FILES_DDL)


def _raw_tables_without(con: Session, kinds: tuple[str, ...], column: str) -> list[str]:
    """The raw tables of these kinds that lack a column (a warehouse loaded by an older version)."""
    return [
        kind
        for kind in kinds
        if not con.scalar(
            "select count(*) from information_schema.columns where table_catalog = current_database() "
            f"and table_schema = 'raw' and table_name = '{kind}' and column_name = '{column}'",
        )
    ]


def _add_order_keys(con: Session) -> None:
    """Number the orders of a warehouse loaded before raw tables had order keys, once."""
    missing = _raw_tables_without(con, ORDER_KEYED_KINDS, "_order_key")
    if not missing:
        return
    con.execute("begin transaction")
    try:
        for kind in missing:
            con.execute(f"alter table raw.{kind} add column _order_key bigint")
        _key_orders(con, " union all ".join(f"select order_id from raw.{kind}" for kind in ORDER_KEYED_KINDS))
        for kind in missing:
            con.execute(
                f"update raw.{kind} set _order_key = order_keys.order_key from landed_order_keys as order_keys "
                f"where raw.{kind}.order_id = order_keys.order_id"
            )
        con.execute("drop table landed_order_keys")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def _add_identifier_keys(con: Session) -> None:
    """Key the identifiers of a warehouse loaded before raw tables had identifier keys, once."""
    missing = _raw_tables_without(con, PERSON_KINDS, identifier_key_column(IDENTIFIER_TYPES[0]))
    if not missing:
        return
    con.execute("begin transaction")
    try:
        for kind in missing:
            for id_type in IDENTIFIER_TYPES:
                con.execute(f"alter table raw.{kind} add column {identifier_key_column(id_type)} bigint")
        _key_identifiers(
            con,
            " union all ".join(f"select {', '.join(IDENTIFIER_TYPES)} from raw.{kind}" for kind in missing),
        )
        for kind in missing:
            for id_type in IDENTIFIER_TYPES:
                con.execute(
                    f"update raw.{kind} set {identifier_key_column(id_type)} = keys.id_key "
                    f"from landed_identifier_keys as keys where keys.id_type = {literal(id_type)} "
                    f"and keys.id_value = raw.{kind}.{id_type}"
                )
        con.execute("drop table landed_identifier_keys")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


LANDING_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})")


def landing_files_until(landing_dir: Path, kind: str, until_date: str | None) -> list[Path]:
    """Files of a kind under landing/<kind>/ whose name carries a date on or before `until_date`."""
    folder = landing_dir / kind
    if not folder.is_dir():
        return []
    chosen = []
    for path in expand_paths([folder]):
        stamp = LANDING_DATE.search(path.name)
        if until_date is None or (stamp and stamp.group(1) <= until_date):
            chosen.append(path)
    return chosen


def ingest_landing(settings: Settings, landing_dir: Path, until_date: str | None = None) -> list[FileResult]:
    """Everything in a landing folder up to a date, kind by kind (what the ingestion DAG runs)."""
    results: list[FileResult] = []
    for kind in KIND_ORDER:
        files = landing_files_until(landing_dir, kind, until_date)
        mapping = landing_dir / kind / "mapping.yml"
        if files:
            results += ingest(settings, files, kind, mapping if mapping.exists() else None)
    return results


def results_as_dicts(results: list[FileResult]) -> list[dict]:
    return [asdict(r) for r in results]


def summarize(results: list[FileResult]) -> dict:
    return {
        "files_loaded": sum(r.status == "loaded" for r in results),
        "files_skipped": sum(r.status == "skipped" for r in results),
        "rows_loaded": sum(r.rows_loaded for r in results),
        "rows_quarantined": sum(r.rows_quarantined for r in results),
    }
