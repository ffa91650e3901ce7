"""`make bench ENGINE=postgres|spark ORDERS=N`: the same generated Parquet landing ingested and built
on DuckDB and on a local PostgreSQL or a local Spark session, side by side in one run, with one
hand-written query of the core features timed on each engine as the yardstick (target: the whole
build within 10x that query).

Per engine and phase: seconds, order rows/s for ingest, each build step's seconds, peak memory of
the segflow process (ru_maxrss) and of the PostgreSQL server or Spark's JVM (their processes'
resident memory sampled every 0.2 s, shared memory counted once).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import psutil

from transforms.engines import local_postgres

# The bench server is tuned as the yardstick query was: 512MB per sort or hash, two
# parallel workers per query, buffers a quarter of the machine's 24 GB... capped for a shared box.
BENCH_SERVER = {
    "shared_buffers": "2GB",
    "work_mem": "512MB",
    "max_parallel_workers_per_gather": "2",
    "effective_cache_size": "12GB",
}

# The core features straight from the raw order versions, written by hand for each engine: the
# latest version of each order, counted when paid and not fully refunded, per phone.
CORE_QUERY = """
with versions as (
    select phone, order_id, created_at, amount, coalesce(refund_amount, 0) as refund_amount, status,
        row_number() over (partition by order_id order by updated_at desc, _file desc, _line desc) as version
    from raw.orders
),
counted as (
    select phone, order_id, created_at, amount - refund_amount as net_amount
    from versions
    where version = 1 and status in ('paid', 'completed', 'partially_refunded') and phone is not null
)
select count(*) from (
    select phone, min(created_at) as first_order_at, max(created_at) as last_order_at, count(*) as orders,
        count(distinct cast(created_at as date)) as purchase_days, sum(net_amount) as spend
    from counted group by phone
) as features
"""


class ServerMemory:
    """Peak resident memory of a PostgreSQL server's processes (its postmaster and children), or of
    this process's descendants when no folder is given (a phase's interpreter and Spark's JVM),
    while the block runs."""

    def __init__(self, folder: Path | None):
        if folder is None:
            self.postmaster = psutil.Process()
        else:
            pid_file = folder / "data" / "postmaster.pid"
            self.postmaster = psutil.Process(int(pid_file.read_text().splitlines()[0]))
        self.peak = 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                processes = [self.postmaster, *self.postmaster.children(recursive=True)]
                private, shared = 0, 0
                for process in processes:
                    try:
                        memory = process.memory_info()
                    except psutil.Error:
                        continue
                    private += memory.rss - memory.shared
                    shared = max(shared, memory.shared)
                self.peak = max(self.peak, private + shared)
            except psutil.Error:
                pass
            self._stop.wait(0.2)

    def __enter__(self) -> ServerMemory:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def compare(
    child,
    setup: str,
    root: Path,
    out: Path,
    landing: Path,
    order_rows: int,
    as_of: str,
    other: str,
    skip_duckdb: bool = False,
) -> dict:
    """Ingest, build and the core query on DuckDB and `other` (postgres or spark); `child` runs a
    phase in its own process."""
    pg_folder = out / "postgres"
    results: dict = {}
    urls = {} if skip_duckdb else {"duckdb": f"duckdb:///{out / 'wh_compare' / 'segflow.duckdb'}"}
    if other == "postgres":
        urls["postgres"] = local_postgres.start(pg_folder, BENCH_SERVER)
    else:
        urls["spark"] = f"spark://{out / 'spark'}"
    try:
        for engine, url in urls.items():
            config = {"SEGFLOW_WAREHOUSE": url}
            phases: dict = {}
            ingest = setup.format(root=str(root), url=url) + (
                "from transforms.ingest import ingest_landing, summarize\n"
                "t = time.perf_counter()\n"
                f"s = summarize(ingest_landing(settings, Path({str(landing)!r})))\n"
                "s['seconds'] = round(time.perf_counter() - t, 2)\n"
                "print(json.dumps(s))"
            )
            build = setup.format(root=str(root), url=url) + (
                "from transforms.build import BuildResult, run_step\nfrom transforms.steps import STEPS\n"
                f"as_of = date.fromisoformat({as_of!r})\n"
                "result = BuildResult(as_of=as_of)\n"
                "for step in STEPS:\n"
                "    run_step(settings, as_of, step, result=result)\n"
                "print(json.dumps({'steps_seconds': {k: round(v, 2) for k, v in result.step_seconds.items()},"
                " 'slowest_models': sorted([(r.name, round(r.seconds, 2)) for r in result.runs], key=lambda x: -x[1])[:8]}))"
            )
            core = setup.format(root=str(root), url=url) + (
                "from transforms.engines import open_warehouse\n"
                "with open_warehouse(settings).work() as con:\n"
                "    t = time.perf_counter()\n"
                f"    customers = con.scalar({CORE_QUERY!r})\n"
                "print(json.dumps({'seconds': round(time.perf_counter() - t, 2), 'customers': customers}))"
            )
            for phase, code in (("ingest", ingest), ("build", build), ("core_query", core)):
                if engine != "duckdb":
                    with ServerMemory(pg_folder if engine == "postgres" else None) as server:
                        phases[phase] = child(code, config)
                    phases[phase]["server_peak_gb"] = round(server.peak / 1e9, 2)
                else:
                    phases[phase] = child(code, config)
                print(f"{engine} {phase}: {phases[phase]}", flush=True)
            phases["ingest"]["order_rows_per_second"] = round(order_rows / phases["ingest"]["seconds"])
            build_seconds = sum(phases["build"]["steps_seconds"].values())
            phases["build"]["seconds"] = round(build_seconds, 2)
            phases["build_over_core_query"] = round(
                build_seconds / max(phases["core_query"]["seconds"], 0.01), 1
            )
            results[engine] = phases
    finally:
        if other == "postgres":
            local_postgres.stop(pg_folder)
    (out / "engines.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(table(results))
    return results


def table(results: dict) -> str:
    engines = list(results)
    rows = [("ingest seconds", lambda r: r["ingest"]["seconds"])]
    rows.append(("ingest order rows/s", lambda r: r["ingest"]["order_rows_per_second"]))
    rows.append(("ingest peak segflow GB", lambda r: r["ingest"]["peak_rss_gb"]))
    rows.append(("ingest peak server/JVM GB", lambda r: r["ingest"].get("server_peak_gb", "")))
    for step in results[engines[0]]["build"]["steps_seconds"]:
        rows.append((f"build: {step} s", lambda r, step=step: r["build"]["steps_seconds"][step]))
    rows.append(("build seconds", lambda r: r["build"]["seconds"]))
    rows.append(("build peak segflow GB", lambda r: r["build"]["peak_rss_gb"]))
    rows.append(("build peak server/JVM GB", lambda r: r["build"].get("server_peak_gb", "")))
    rows.append(("core features query s", lambda r: r["core_query"]["seconds"]))
    rows.append(("build / core query", lambda r: r["build_over_core_query"]))
    lines = ["| | " + " | ".join(engines) + " |", "|---|" + "---:|" * len(engines)]
    lines += [
        f"| {label} | " + " | ".join(str(value(results[e])) for e in engines) + " |" for label, value in rows
    ]
    return "\n".join(lines)
