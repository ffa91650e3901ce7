"""Reading landing files of one format into a landing relation (through the engine's scan): text, or a file's own type where ours has it."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from transforms.engines import DatabaseError, OutOfMemoryError, Session
from transforms.errors import SegflowError
from transforms.ingest.columns import TYPED_AS_OURS
from transforms.ingest.files import format_of, needs_transcoding, transcode_to_utf8
from transforms.mapping import Mapping
from transforms.sql import identifier

# Columns of these types reach staging as they are (ingest.columns.typed_source); the rest as text.
PASSED_AS_TYPED = {source_type for source_types in TYPED_AS_OURS.values() for source_type in source_types}


def read_landing(con: Session, paths: list[Path], mapping: Mapping, workdir: Path) -> pa.Table | None:
    """Scan files of one format into temp table `landing_scan`, read through temp view `landing`
    (text, or a type of PASSED_AS_TYPED, plus `_source_file` and `_scan_row`).

    One multi-file scan instead of one per file: per-file overhead dominates daily landing
    folders. Returns the CSV rows DuckDB could not split into columns, if any.
    """
    formats = {format_of(path) for path in paths}
    if len(formats) > 1:
        raise SegflowError(
            f"{paths[0].parent}: mixed file types in one load; load CSV, Parquet and JSON separately"
        )
    file_format = formats.pop()
    con.execute("drop view if exists landing")
    sources: dict[str, Path] = {}
    for path in paths:
        source = path
        if file_format == "csv" and needs_transcoding(mapping):
            source = transcode_to_utf8(path, mapping.encoding, workdir)
        sources[str(source)] = path
    try:
        rejects = con.scan_files("landing_scan", list(sources), file_format)
    except OutOfMemoryError:
        raise
    except DatabaseError as exc:
        raise SegflowError(
            f"{paths[0]}: cannot be read as {file_format} ({str(exc).splitlines()[0]})"
        ) from exc
    scanned = con.execute("describe landing_scan").fetchall()
    casts = ", ".join(
        identifier(name)
        if sql_type in PASSED_AS_TYPED
        else f"cast({identifier(name)} as varchar) as {identifier(name)}"
        for name, sql_type, *_ in scanned
        if name not in ("_scan_file", "_scan_row")
    )
    con.load_temp_table(
        "landing_sources",
        pa.table({"_scan_file": list(sources), "_source_file": [str(p) for p in sources.values()]}),
    )
    con.execute(
        f"create temp view landing as select {casts}, landing_sources._source_file, landing_scan._scan_row "
        "from landing_scan join landing_sources using (_scan_file)"
    )
    return rejects
