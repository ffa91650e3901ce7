"""Arrow tables written to files people take away (pack exports, dumps): whole or not at all."""

from __future__ import annotations

import os
import re
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq


def write_atomically(
    table: pa.Table, path: Path, file_format: str, written_at: datetime | None = None
) -> None:
    """csv, parquet, xlsx or tencent_ads, written beside the target and renamed over it. The same
    table gives the same bytes: zips (xlsx, tencent_ads) record `written_at` (default 1980-01-01)
    instead of the clock."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    if file_format == "csv":
        pacsv.write_csv(table, temporary)
    elif file_format == "parquet":
        pq.write_table(table, temporary)
    elif file_format == "tencent_ads":
        _write_tencent_ads(table, temporary, written_at)
    else:
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        stamp = (
            (written_at or datetime(1980, 1, 1, tzinfo=UTC))
            .astimezone(UTC)
            .replace(tzinfo=None, microsecond=0)
        )
        book.properties.created = book.properties.modified = stamp
        sheet = book.create_sheet("members")
        sheet.append(table.column_names)
        for row in zip(*(column.to_pylist() for column in table.columns), strict=True):
            sheet.append(list(row))
        book.save(temporary)
        _restamp_zip(temporary, stamp)
    os.replace(temporary, path)


def _write_tencent_ads(table: pa.Table, path: Path, written_at: datetime | None) -> None:
    """Tencent Ads' customer file audience (客户文件人群, custom_audience_files/add): a zip of one
    text file, one identifier per line, uploaded with user_id_type SHA256_MOBILE_PHONE; `table`'s
    `phone` column holds the SHA-256 of each member's 11-digit number (members without one skipped).
    https://developers.e.qq.com/docs/api/audiences/custom_audience_file/custom_audience_files_add"""
    phones = [value for value in table.column("phone").to_pylist() if value is not None]
    stamp = (written_at or datetime(1980, 1, 1, tzinfo=UTC)).astimezone(UTC).replace(tzinfo=None)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        member = zipfile.ZipInfo("SHA256_MOBILE_PHONE.txt", date_time=stamp.timetuple()[:6])
        archive.writestr(
            member, "".join(f"{value}\n" for value in phones).encode("ascii"), zipfile.ZIP_DEFLATED
        )


def _restamp_zip(path: Path, stamp: datetime) -> None:
    """Give every member of a zip (an xlsx) and the workbook's modified time the same stamp:
    openpyxl sets both from the clock when it saves."""
    with zipfile.ZipFile(path) as source:
        members = [(info, source.read(info)) for info in source.infolist()]
    modified = f'<dcterms:modified xsi:type="dcterms:W3CDTF">{stamp.isoformat()}Z</dcterms:modified>'.encode()
    members = [
        (info, re.sub(rb"<dcterms:modified[^>]*>[^<]*</dcterms:modified>", modified, data))
        if info.filename == "docProps/core.xml"
        else (info, data)
        for info, data in members
    ]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info, data in members:
            target.writestr(
                zipfile.ZipInfo(info.filename, date_time=stamp.timetuple()[:6]), data, zipfile.ZIP_DEFLATED
            )
