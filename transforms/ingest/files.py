"""Landing files: which files a path names, their content hash, encoding and format."""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from transforms.errors import SegflowError
from transforms.mapping import Mapping

SUPPORTED_SUFFIXES = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}


# Kinds in the order a landing folder is loaded: reference data before the facts that use it.
KIND_ORDER = ("products", "contacts", "orders", "order_items", "events", "manual_tags")


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
def check_utf8(path: Path) -> None:
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


def transcode_to_utf8(path: Path, encoding: str, workdir: Path) -> Path:
    target = workdir / (path.stem + ".utf8" + path.suffix)
    decoder = codecs.getincrementaldecoder(encoding)()
    with open(path, "rb") as source, open(target, "w", encoding="utf-8", newline="") as sink:
        for number, line in enumerate(source, start=1):
            try:
                sink.write(decoder.decode(line))
            except UnicodeDecodeError as exc:
                raise SegflowError(f"{path} line {number}: not valid {encoding} text ({exc.reason})") from exc
    return target


def needs_transcoding(mapping: Mapping) -> bool:
    return bool(mapping.encoding) and codecs.lookup(mapping.encoding).name != "utf-8"


def format_of(path: Path) -> str:
    file_format = SUPPORTED_SUFFIXES.get(path.suffix.lower())
    if file_format is None:
        raise SegflowError(f"{path}: unsupported file type; use .csv, .parquet or .jsonl")
    if path.stat().st_size == 0:
        raise SegflowError(
            f"{path}: the file is empty (0 bytes), probably an export that failed; nothing loaded"
        )
    return file_format


def header_of(path: Path, file_format: str, encoding: str) -> list[str] | None:
    """A file's own column names (None for JSON lines, whose rows name their own fields)."""
    if file_format == "parquet":
        import pyarrow.parquet as pq

        return pq.read_schema(path).names
    if file_format == "csv":
        with open(path, encoding=encoding, newline="") as handle:
            first = handle.readline().lstrip("\ufeff")
        return [name.strip() for name in next(csv.reader([first]), [])]
    return None


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
