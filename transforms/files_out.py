"""Arrow tables written to files people take away (pack exports, dumps): whole or not at all."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq


def write_atomically(table: pa.Table, path: Path, file_format: str) -> None:
    """csv, parquet or xlsx, written beside the target and renamed over it."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    if file_format == "csv":
        pacsv.write_csv(table, temporary)
    elif file_format == "parquet":
        pq.write_table(table, temporary)
    else:
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet("members")
        sheet.append(table.column_names)
        for row in zip(*(column.to_pylist() for column in table.columns), strict=True):
            sheet.append(list(row))
        book.save(temporary)
    os.replace(temporary, path)
