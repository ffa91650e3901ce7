"""A BI tool in a loop, run as its own process during builds: `python tests/bi_reader.py ENGINE
WHERE SECONDS` (duckdb and the published file, or postgres and a libpq URL). Each read checks that
the segment summary adds up to the customer count of the same published version; it prints the
reads, errors, inconsistent reads and the slowest read as JSON."""

from __future__ import annotations

import json
import sys
import time

SUMMARY = "select model, sum(customers), sum(customer_share) from {schema}segment_summary group by model"
CUSTOMERS = "select count(*) from {schema}customer_features"


def duckdb_read(path: str) -> tuple[list, int]:
    import duckdb

    con = duckdb.connect(path, read_only=True)  # a new connection per read, as a BI refresh opens
    try:
        return con.execute(SUMMARY.format(schema="")).fetchall(), con.execute(
            CUSTOMERS.format(schema="")
        ).fetchone()[0]
    finally:
        con.close()


def postgres_reader(url: str):
    import psycopg

    con = psycopg.connect(url, autocommit=True)  # read committed: one statement, one version

    def read(_: str) -> tuple[list, int]:
        rows = con.execute(
            f"select summary.*, customers.n from ({SUMMARY.format(schema='segflow.')}) as summary "
            f"cross join ({CUSTOMERS.format(schema='segflow.')}) as customers(n)"
        ).fetchall()
        return [row[:3] for row in rows], (rows[0][3] if rows else 0)

    return read


def main(engine: str, where: str, seconds: float) -> None:
    read = duckdb_read if engine == "duckdb" else postgres_reader(where)
    reads = errors = inconsistent = 0
    slowest = 0.0
    messages: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            rows, total = read(where)
            reads += 1
            if not rows or any(c != total or abs(s - 1) > 1e-9 for _, c, s in rows):
                inconsistent += 1
        except Exception as exc:  # noqa: BLE001 - every failure is what the test counts
            errors += 1
            messages.append(str(exc)[:200])
        slowest = max(slowest, time.monotonic() - started)
        time.sleep(0.02)
    print(
        json.dumps(
            {
                "reads": reads,
                "errors": errors,
                "inconsistent": inconsistent,
                "slowest": slowest,
                "messages": messages[:3],
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
