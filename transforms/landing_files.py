"""Writing sample landing files: one file per day (and part), timestamps, identifiers, random picks."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq


def ids(prefix: str, numbers: np.ndarray, width: int = 8) -> np.ndarray:
    return np.char.add(prefix, np.char.zfill(numbers.astype(str), width))


def pick(rng: np.random.Generator, values: np.ndarray, size: int, weights=None) -> np.ndarray:
    return values[rng.choice(len(values), size=size, p=weights)]


def maybe(rng: np.random.Generator, values: np.ndarray, share: float) -> np.ndarray:
    out = values.astype(object)
    out[rng.random(len(values)) >= share] = None
    return out


def write_daily(
    table: pa.Table, days: np.ndarray, out_dir: Path, kind: str, first_day: date, fmt: str, suffix: str = ""
) -> None:
    """One landing file per day (and part): landing/<kind>/<kind>_<YYYY-MM-DD>[_partNNN].<fmt>."""
    folder = out_dir / kind
    folder.mkdir(parents=True, exist_ok=True)
    order = np.argsort(days, kind="stable")
    table = table.take(pa.array(order))
    days = days[order]
    unique_days, starts = np.unique(days, return_index=True)
    ends = list(starts[1:]) + [len(days)]
    for day, start, end in zip(unique_days, starts, ends, strict=True):
        stamp = (first_day + timedelta(days=int(day))).isoformat()
        chunk = table.slice(int(start), int(end - start))
        path = folder / f"{kind}_{stamp}{suffix}.{fmt}"
        if fmt == "parquet":
            pq.write_table(chunk, path)
        else:
            pacsv.write_csv(chunk, path)


def timestamps(days: np.ndarray, seconds: np.ndarray, first_day: date, tz: str) -> pa.Array:
    base = np.datetime64(first_day.isoformat(), "s") - np.timedelta64(
        8, "h"
    )  # business day 00:00 (UTC+8) in UTC
    values = base + days.astype("timedelta64[D]") + seconds.astype("timedelta64[s]")
    return pa.array(values.astype("datetime64[s]"), type=pa.timestamp("s", tz="UTC"))
