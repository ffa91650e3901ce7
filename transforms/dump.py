"""`segflow dump TABLE --out FILE.parquet|FILE.csv`: a published table written to a file, read the
way BI reads it (the previous complete version while a build runs), whatever the engine."""

from __future__ import annotations

import re
from pathlib import Path

from transforms.engines import open_warehouse
from transforms.errors import SegflowError
from transforms.files_out import write_atomically
from transforms.settings import Settings
from transforms.sql import ref

FORMATS = {".parquet": "parquet", ".csv": "csv"}


def dump(settings: Settings, table: str, out: Path) -> dict:
    file_format = FORMATS.get(out.suffix.lower())
    if file_format is None:
        raise SegflowError(f"--out {out}: name a .parquet or .csv file")
    if not re.fullmatch(r"\w+", table):
        raise SegflowError(f"table '{table}': give a published table's name, e.g. customer_features")
    with open_warehouse(settings).read() as con:
        if not con.table_exists("pub", table):
            raise SegflowError(
                f"table '{table}' is not published in {open_warehouse(settings).location} "
                "(the README's Published tables lists them)"
            )
        data = con.fetch_arrow(con.render(f"select * from {ref(table)}"))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(data, out, file_format)
    except OSError as exc:
        raise SegflowError(f"--out {out}: cannot be written ({exc.strerror or exc})") from exc
    return {"table": table, "file": str(out), "rows": data.num_rows, "format": file_format}
