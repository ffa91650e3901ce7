"""Arrow tables written to files people take away (pack exports, dumps): whole or not at all."""

from __future__ import annotations

import base64
import json
import os
import re
import zipfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pyarrow is imported where a file is written: the CLI's parser lists FORMATS
    import pyarrow as pa

# The ad platforms' upload files, both of SHA-256 phones, and the id type each is uploaded as:
# Tencent Ads' customer file audience (客户文件人群), Ocean Engine's DMP data source (巨量引擎 人群包).
AD_PLATFORM_FORMATS = {"tencent_ads": "SHA256_MOBILE_PHONE", "ocean_engine": "MOBILE_HASH_SHA256"}
# wecom: the external contacts of WeCom group messaging (企业微信 群发), see wecom_lines.
FORMATS = ("csv", "parquet", "xlsx", *AD_PLATFORM_FORMATS, "wecom")
# What a file of the format ends in after its name (csv, parquet and xlsx end in their name only).
FORMAT_SUFFIXES = {**dict.fromkeys(AD_PLATFORM_FORMATS, ".zip"), "wecom": ".jsonl"}


def write_atomically(
    table: pa.Table, path: Path, file_format: str, written_at: datetime | None = None
) -> None:
    """One of FORMATS, written beside the target and renamed over it. The same table gives the same
    bytes: zips (xlsx and the ad platforms') record `written_at` (default 1980-01-01) instead of the
    clock."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    if file_format == "csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, temporary)
    elif file_format == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, temporary)
    elif file_format == "tencent_ads":
        _write_zip_of_text(temporary, "SHA256_MOBILE_PHONE.txt", _present(table, "phone"), written_at)
    elif file_format == "ocean_engine":
        lines = ocean_engine_lines(_present(table, "phone"))
        _write_zip_of_text(temporary, "MOBILE_HASH_SHA256.txt", lines, written_at)
    elif file_format == "wecom":
        lines = wecom_lines(_present(table, "external_userid"))
        temporary.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
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


def _present(table: pa.Table, column: str) -> list[str]:
    """A column's values for the members that have one (the ad platforms' `phone` is the SHA-256 of
    the 11-digit number, lower-case hex)."""
    return [value for value in table.column(column).to_pylist() if value is not None]


def _write_zip_of_text(path: Path, member: str, lines: Iterable[str], written_at: datetime | None) -> None:
    """Both ad platforms take a zip holding one text file of lines:

    - Tencent Ads' customer file audience (客户文件人群, custom_audience_files/add), one identifier
      per line, uploaded with user_id_type SHA256_MOBILE_PHONE
      (https://developers.e.qq.com/docs/api/audiences/custom_audience_file/custom_audience_files_add);
    - Ocean Engine's DMP data source file (数据源文件上传, dmp/data_source/file/upload), one DmpData
      message per line (ocean_engine_lines).
    """
    stamp = (written_at or datetime(1980, 1, 1, tzinfo=UTC)).astimezone(UTC).replace(tzinfo=None)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(member, date_time=stamp.timetuple()[:6])
        archive.writestr(info, "".join(f"{line}\n" for line in lines).encode("ascii"), zipfile.ZIP_DEFLATED)


# Ocean Engine's DMP file (toutiao.dmp, protobuf 2): message DmpData { repeated IdItem idList = 1; }
# message IdItem { optional uint32 timestamp = 1; required DataType dataType = 2; required string id = 3;
# repeated string tags = 4; } with DataType MOBILE_HASH_SHA256 = 6; at most 10,000 ids per line.
OCEAN_ENGINE_IDS_PER_LINE = 10_000
_MOBILE_HASH_SHA256 = 6


def ocean_engine_lines(sha256_phones: list[str]) -> Iterator[str]:
    """Each line the base64 of one serialized DmpData holding up to 10,000 IdItems of type
    MOBILE_HASH_SHA256, id the lower-case hex SHA-256 of the 11-digit number. No timestamp is set
    (the platform then takes the upload's time), so the same members give the same bytes. The two
    messages are written by hand in protobuf's wire format, which these fixed shapes make short."""
    for start in range(0, len(sha256_phones), OCEAN_ENGINE_IDS_PER_LINE):
        items = []
        for value in sha256_phones[start : start + OCEAN_ENGINE_IDS_PER_LINE]:
            identifier = value.lower().encode("ascii")
            # field 2 (varint): dataType; field 3 (length-delimited): id
            item = bytes([0x10, _MOBILE_HASH_SHA256, 0x1A]) + _varint(len(identifier)) + identifier
            # DmpData field 1 (length-delimited): one IdItem
            items.append(b"\x0a" + _varint(len(item)) + item)
        yield base64.b64encode(b"".join(items)).decode("ascii")


WECOM_IDS_PER_MESSAGE = 10_000


def wecom_lines(external_userids: list[str]) -> Iterator[str]:
    """One JSON object per line, each the body of one WeCom group message to customers
    (externalcontact/add_msg_template, https://developer.work.weixin.qq.com/document/path/92135)
    but its content: chat_type single and at most 10,000 external_userid. The operator adds `text`
    or `attachments` (and `sender` to send as one member of staff) and posts each line."""
    for start in range(0, len(external_userids), WECOM_IDS_PER_MESSAGE):
        chunk = external_userids[start : start + WECOM_IDS_PER_MESSAGE]
        yield json.dumps({"chat_type": "single", "external_userid": chunk}, ensure_ascii=False)


def _varint(number: int) -> bytes:
    encoded = bytearray()
    while True:
        low, number = number & 0x7F, number >> 7
        encoded.append(low | (0x80 if number else 0))
        if not number:
            return bytes(encoded)


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
