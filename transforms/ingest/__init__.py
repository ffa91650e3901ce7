"""Landing files (CSV, Parquet, JSON lines) to raw tables: mapped, typed, checked, quarantined, once each.

Every row is validated set-based in the warehouse. Bad fields go to `ingest_quarantine` with file, line,
field and reason while the good rows load. A file is recognised by its SHA-256, so a rerun or a
re-sent file loads nothing twice. One command is one transaction: it loads completely or not at all.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from transforms.engines import Session, open_warehouse
from transforms.errors import SegflowError
from transforms.failpoints import failpoint
from transforms.ingest.files import (
    KIND_ORDER,
    FileResult,
    check_utf8,
    expand_paths,
    file_sha256,
    format_of,
    header_of,
    landing_files_until,
    needs_transcoding,
)
from transforms.ingest.keys import ensure_raw_tables, publish_quarantine
from transforms.ingest.staging import StagedFiles, insert_staged, stage_files
from transforms.mapping import load_mapping
from transforms.schema import KINDS
from transforms.settings import Settings
from transforms.sql import literal

__all__ = [
    "FileResult",
    "KIND_ORDER",
    "ensure_raw_tables",
    "expand_paths",
    "file_sha256",
    "ingest",
    "ingest_landing",
    "landing_files_until",
    "results_as_dicts",
    "summarize",
]


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
            file_format = format_of(path)
            if file_format in ("csv", "jsonl") and not needs_transcoding(mapping):
                check_utf8(path)
            # CSV files are scanned together only when their headers match (reject tables need it).
            header = (
                header_of(path, file_format, mapping.encoding or "utf-8-sig")
                if file_format == "csv"
                else None
            )
            to_load.setdefault(f"{file_format}:{header}", []).append(path)
        batches = {p: f"{loaded_at:%Y%m%dT%H%M%S}-{h[:10]}" for p, h in hashes.items()}
        # Files are typed and checked before the transaction, not in it. Temp tables written inside
        # a transaction are held until it ends: with them in it, large loads ran out of memory in
        # their insert that load when the typing is outside it (bench/RESULTS.md).
        staged: list[StagedFiles] = []
        try:
            with warehouse.staging(con) as staging:
                for number, group in enumerate(to_load.values()):
                    staged += stage_files(
                        staging,
                        group,
                        kind,
                        mapping,
                        settings,
                        batches,
                        loaded_at,
                        Path(workdir),
                        f"landing_{number}",
                    )
                with con.transaction():
                    for files_of_scan in staged:
                        insert_staged(con, files_of_scan, kind, batches, loaded_at, staging, warehouse)
                        results += files_of_scan.results
                    record_files(
                        con,
                        [r for files_of_scan in staged for r in files_of_scan.results],
                        hashes,
                        kind,
                        loaded_at,
                    )
                    failpoint("ingest:before_commit")
        finally:
            con.execute(f"set TimeZone = {literal(settings.timezone)}")
            for files_of_scan in staged:
                files_of_scan.drop(con)
        if any(r.status == "loaded" for r in results):
            publish_quarantine(con)
            warehouse.publish(con, tables=["ingest_quarantine"])
    return results


FILES_PER_STATEMENT = 1000


def record_files(
    con: Session, results: list[FileResult], hashes: dict[str, str], kind: str, loaded_at: datetime
) -> None:
    """meta.ingest_files rows for the files of a load, a thousand per statement: a statement is a job
    on Spark and a round trip on PostgreSQL (whose statements take at most 65535 parameters)."""
    for first in range(0, len(results), FILES_PER_STATEMENT):
        chunk = results[first : first + FILES_PER_STATEMENT]
        con.execute(
            "insert into meta.ingest_files values " + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk)),
            [
                value
                for result in chunk
                for value in (
                    hashes[result.file],
                    kind,
                    result.file,
                    result.batch,
                    result.rows_read,
                    result.rows_loaded,
                    result.rows_quarantined,
                    loaded_at,
                )
            ],
        )


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
