"""`make bench ORDERS=N`: generate N orders, time ingest (CSV and Parquet) and the build step by
step, and the pandas reference computing the same features. A benchmark, not a test: it prints
numbers (seconds, rows/second, peak memory per phase) and writes bench/out/results.json.

Each phase runs in a child process so its peak memory is its own (ru_maxrss from wait4). The
machine's speed moves by a fifth within an hour, so after the whole build the steps from raw to
customer_features run again `--repeat` times, each in its own process, and the median is the figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AS_OF = "2026-07-01"
# The models that do what the pandas reference does besides identity: current order versions from
# raw, orders and lines to customers, and the order and item features. The reference stitches
# identities too (as the identity step does) but computes no contacts, engagement or monthly spend.
REFERENCE_WORK_MODELS = (
    "stg_orders",
    "int_record_labels",
    "int_customer_orders",
    "int_customer_order_features",
    "int_customer_item_features",
)
# The steps from the raw tables to customer_features, as the DAG runs them.
THREE_STEPS = ("staging", "identity", "features")


def three_step_run(phase: dict) -> dict:
    """What a phase that ran the three steps says about them: seconds, per step, the reference's work."""
    steps = {step: phase["steps_seconds"][step] for step in THREE_STEPS}
    return {
        "seconds": round(sum(steps.values()), 2),
        "steps_seconds": steps,
        "reference_work_seconds": round(sum(phase["model_seconds"][m] for m in REFERENCE_WORK_MODELS), 2),
        "peak_rss_gb": phase["peak_rss_gb"],
    }


def child(code: str, env: dict | None = None) -> dict:
    """Run a phase in a fresh interpreter; return its JSON output plus wall seconds and peak RSS."""
    # What the previous phase wrote and nobody synced (the generator's landing files: 11 GB at 10M
    # orders) is flushed first, so its write-back does not slow the phase being timed.
    os.sync()
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
        text=True,
    )
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"phase failed (status {status}):\n{code}")
    # The phase's JSON ends its output; DuckDB's progress bar may precede it on the same line.
    last = out.strip().splitlines()[-1] if out.strip() else ""
    result = json.loads(last[last.find("{") :]) if "{" in last else {}
    result["wall_seconds"] = round(time.perf_counter() - started, 2)
    result["peak_rss_gb"] = round(usage.ru_maxrss / 1024 / 1024, 2)
    return result


SETUP = """
import json, time, sys
sys.path.insert(0, {root!r})
from datetime import date
from pathlib import Path
from transforms.settings import Settings
settings = Settings.load(None, {url!r})
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--out", default=str(ROOT / "bench" / "out"))
    parser.add_argument("--skip-csv", action="store_true")
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of the steps raw -> customer_features after the build"
    )
    parser.add_argument(
        "--engine",
        choices=("duckdb", "postgres", "spark"),
        default="duckdb",
        help="postgres or spark: the same data on DuckDB and on a local PostgreSQL or Spark session, side by "
        "side (bench/engine_compare.py)",
    )
    parser.add_argument(
        "--skip-duckdb", action="store_true", help="with --engine: measure only the other engine"
    )
    parser.add_argument(
        "--landing", help="with --engine: a Parquet landing folder generated before, instead of a new one"
    )
    args = parser.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    results: dict = {"orders": args.orders}
    if args.engine != "duckdb":
        compare_engines(args, out)
        return

    formats = ["parquet"] + ([] if args.skip_csv else ["csv"])
    for file_format in formats:
        code = SETUP.format(root=str(ROOT), url="duckdb:///unused") + (
            "from transforms.generate import generate\n"
            "t = time.perf_counter()\n"
            f"r = generate(Path({str(out / ('landing_' + file_format))!r}), orders={args.orders}, days={args.days}, "
            f"last_day=date(2026, 6, 30), fmt={file_format!r})\n"
            "print(json.dumps({'seconds': round(time.perf_counter() - t, 2), 'order_rows': r.order_rows}))"
        )
        results[f"generate_{file_format}"] = child(code)
        print(f"generate {file_format}: {results[f'generate_{file_format}']}", flush=True)

    for file_format in formats:
        url = f"duckdb:///{out / ('wh_' + file_format) / 'segflow.duckdb'}"
        code = SETUP.format(root=str(ROOT), url=url) + (
            "from transforms.ingest import ingest_landing, summarize\n"
            "t = time.perf_counter()\n"
            f"s = summarize(ingest_landing(settings, Path({str(out / ('landing_' + file_format))!r})))\n"
            "s['seconds'] = round(time.perf_counter() - t, 2)\n"
            "print(json.dumps(s))"
        )
        phase = child(code, {"SEGFLOW_WAREHOUSE": url})
        order_rows = results[f"generate_{file_format}"]["order_rows"]
        phase["order_rows_per_second"] = round(order_rows / phase["seconds"])
        results[f"ingest_{file_format}"] = phase
        print(f"ingest {file_format}: {phase}", flush=True)

    url = f"duckdb:///{out / 'wh_parquet' / 'segflow.duckdb'}"
    code = SETUP.format(root=str(ROOT), url=url) + (
        "from transforms.build import BuildResult, run_step\nfrom transforms.steps import STEPS\n"
        f"as_of = date.fromisoformat({AS_OF!r})\n"
        "result = BuildResult(as_of=as_of)\n"
        "for step in STEPS:\n"
        "    run_step(settings, as_of, step, result=result)\n"
        "from transforms.build import load_project\n"
        "project = load_project(settings, as_of)\n"
        "needed, pending = set(), ['customer_features']\n"
        "while pending:\n"
        "    name = pending.pop()\n"
        "    if name not in needed:\n"
        "        needed.add(name)\n"
        "        pending.extend(project.models[name].deps)\n"
        "import duckdb\n"
        "from transforms.engines import open_warehouse\n"
        "con = duckdb.connect(str(open_warehouse(settings).published_path), read_only=True)\n"
        "customers = con.execute('select count(*) from customer_features').fetchall()[0][0]\n"
        "print(json.dumps({'steps_seconds': {k: round(v, 2) for k, v in result.step_seconds.items()}, 'customers': customers,"
        " 'model_seconds': {r.name: round(r.seconds, 2) for r in result.runs},"
        " 'customer_features_path_seconds': round(sum(r.seconds for r in result.runs if r.name in needed), 2),"
        " 'slowest_models': sorted([(r.name, round(r.seconds, 2)) for r in result.runs], key=lambda x: -x[1])[:8]}))"
    )
    build = child(code)
    steps = build["steps_seconds"]
    # The three steps as the DAG runs them. Their models include customer_identifiers,
    # customer_monthly_spend and customer_content_engagement, which customer_features does not read:
    # customer_features_path_seconds counts only customer_features and the models it reads.
    build["raw_to_customer_features_seconds"] = three_step_run(build)["seconds"]
    build["tags_share_of_features"] = round(steps["tags"] / steps["features"], 3)
    build["segments_and_insights_seconds"] = round(steps["segments"] + steps["insights"], 2)
    results["build"] = build
    print(f"build: { {k: v for k, v in build.items() if k != 'model_seconds'} }", flush=True)

    # Reruns of one as-of date rebuild the same tables, so each run does the work of the first.
    code = SETUP.format(root=str(ROOT), url=url) + (
        "from transforms.build import BuildResult, run_step\n"
        f"as_of = date.fromisoformat({AS_OF!r})\n"
        "result = BuildResult(as_of=as_of)\n"
        f"for step in {THREE_STEPS!r}:\n"
        "    run_step(settings, as_of, step, result=result)\n"
        "print(json.dumps({'steps_seconds': {k: round(v, 2) for k, v in result.step_seconds.items()},"
        " 'model_seconds': {r.name: round(r.seconds, 2) for r in result.runs}}))"
    )
    runs = []
    for _ in range(args.repeat):
        runs.append(three_step_run(child(code)))
        print(f"raw -> customer_features: {runs[-1]}", flush=True)
    # --repeat 0: the build's own run of the three steps (its peak memory is the whole build's).
    runs = runs or [three_step_run(build)]
    three_steps = {
        "seconds_median": round(statistics.median(r["seconds"] for r in runs), 2),
        "seconds_runs": [r["seconds"] for r in runs],
        "peak_rss_gb_max": max(r["peak_rss_gb"] for r in runs),
        "reference_work_seconds_median": round(
            statistics.median(r["reference_work_seconds"] for r in runs), 2
        ),
        "runs": runs,
    }
    results["raw_to_customer_features"] = three_steps

    if not args.skip_pandas:
        code = SETUP.format(root=str(ROOT), url=url) + (
            f"sys.path.insert(0, {str(ROOT)!r})\n"
            "from tests.reference_features import reference\n"
            "from transforms.engines import open_warehouse\n"
            "t = time.perf_counter()\n"
            "with open_warehouse(settings).work() as con:\n"
            f"    ids, frame, parts = reference(con.con, date.fromisoformat({AS_OF!r}), settings.timezone,\n"
            "        int(settings.get('identity.max_links_per_identifier')), settings.get('identity.blocklist') or [])\n"
            "print(json.dumps({'seconds': round(time.perf_counter() - t, 2), 'parts_seconds': parts,\n"
            "    'identifiers': len(ids), 'customers_with_orders': len(frame)}))"
        )
        results["pandas_reference"] = child(code)
        # Both sides go from the raw tables to every customer's identity and order features.
        results["speedup_vs_pandas"] = round(
            results["pandas_reference"]["seconds"] / three_steps["seconds_median"], 1
        )
        # Without identity on either side: the reference's orders and features parts against the
        # models that do that work (REFERENCE_WORK_MODELS).
        parts = results["pandas_reference"]["parts_seconds"]
        results["speedup_vs_pandas_without_identity"] = round(
            (parts["orders"] + parts["features"]) / three_steps["reference_work_seconds_median"], 1
        )
        print(f"pandas reference: {results['pandas_reference']}", flush=True)

    (out / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(json.dumps(results, indent=2))


def compare_engines(args: argparse.Namespace, out: Path) -> None:
    from engine_compare import compare  # beside this file

    if args.landing:
        landing = Path(args.landing).resolve()
        code = SETUP.format(root=str(ROOT), url="duckdb:///unused") + (
            "import pyarrow.dataset as ds\n"
            f"print(json.dumps({{'order_rows': ds.dataset({str(landing / 'orders')!r}).count_rows()}}))"
        )
    else:
        landing = out / "landing_parquet"
        code = SETUP.format(root=str(ROOT), url="duckdb:///unused") + (
            "from transforms.generate import generate\n"
            f"r = generate(Path({str(landing)!r}), orders={args.orders}, days={args.days}, "
            "last_day=date(2026, 6, 30), fmt='parquet')\n"
            "print(json.dumps({'order_rows': r.order_rows}))"
        )
    order_rows = child(code)["order_rows"]
    compare(child, SETUP, ROOT, out, landing, order_rows, AS_OF, args.engine, args.skip_duckdb)


if __name__ == "__main__":
    main()
