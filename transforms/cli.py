"""The `segflow` command line: every command is a thin call into the transforms package."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from transforms.errors import SegflowError
from transforms.settings import Settings


def print_table(rows: list[dict], columns: list[str] | None = None) -> None:
    if not rows:
        print("(none)")
        return
    columns = columns or list(rows[0])
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(_width(c), *(_width(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(_pad(c, w) for c, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(_pad(v, w) for v, w in zip(row, widths, strict=True)))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1 else f"{value:,.2f}"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def _width(text: str) -> int:
    # CJK characters take two terminal columns.
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def emit(
    args: argparse.Namespace, payload: dict, rows: list[dict] | None = None, columns: list[str] | None = None
):
    if args.json:
        print(json.dumps(payload, ensure_ascii=False, default=str))
    elif rows is not None:
        print_table(rows, columns)


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.load(args.config, args.warehouse)


# -- commands ------------------------------------------------------------------------------------
def cmd_ingest(args: argparse.Namespace) -> int:
    from transforms.ingest import ingest, results_as_dicts, summarize

    results = ingest(
        _settings(args),
        [Path(p) for p in args.paths],
        args.kind,
        Path(args.mapping) if args.mapping else None,
    )
    rows = results_as_dicts(results)
    summary = summarize(results)
    emit(
        args,
        {"files": rows, **summary},
        rows,
        ["file", "kind", "status", "rows_read", "rows_loaded", "rows_quarantined", "note"],
    )
    if not args.json:
        print(
            f"\n{summary['rows_loaded']} rows loaded, {summary['rows_quarantined']} quarantined "
            "(see table ingest_quarantine)"
        )
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from transforms.generate import generate

    result = generate(
        Path(args.out),
        orders=args.orders,
        days=args.days,
        last_day=date.fromisoformat(args.last_day),
        seed=args.seed,
        fmt=args.format,
    )
    payload = {k: str(v) for k, v in result.__dict__.items()}
    emit(args, payload, [payload])
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--warehouse", help="SQLAlchemy URL of the warehouse (env SEGFLOW_WAREHOUSE)")
    common.add_argument("--config", help="folder of the business config (env SEGFLOW_CONFIG)")
    common.add_argument("--json", action="store_true", help="print one JSON object instead of a table")

    parser = argparse.ArgumentParser(prog="segflow", description=__doc__, parents=[common])
    commands = parser.add_subparsers(dest="command", required=True)

    ingest = commands.add_parser("ingest", parents=[common], help="load landing files into the warehouse")
    ingest.add_argument("paths", nargs="+", help="files or folders (CSV, Parquet, JSON lines)")
    ingest.add_argument(
        "--kind",
        required=True,
        choices=["orders", "order_items", "contacts", "products", "events", "manual_tags"],
    )
    ingest.add_argument("--mapping", help="YAML mapping of a brand's columns and words to ours")
    ingest.set_defaults(func=cmd_ingest)

    generate = commands.add_parser(
        "generate", parents=[common], help="write deterministic sample landing files"
    )
    generate.add_argument("--out", default="data/landing")
    generate.add_argument("--orders", type=int, default=20_000)
    generate.add_argument("--days", type=int, default=365)
    generate.add_argument("--last-day", default="2026-06-30")
    generate.add_argument("--seed", type=int, default=7)
    generate.add_argument("--format", choices=["csv", "parquet"], default="csv")
    generate.set_defaults(func=cmd_generate)

    for register in _EXTRA_COMMANDS:
        register(commands, common)
    return parser


_EXTRA_COMMANDS: list = []


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except SegflowError as exc:
        print(f"segflow: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())


def cmd_build(args: argparse.Namespace) -> int:
    from transforms.build import build
    from transforms.settings import parse_as_of

    settings = _settings(args)
    as_of = parse_as_of(args.as_of, settings)

    def progress(run):
        if not args.json:
            rows = "" if run.rows is None else f"{run.rows:>12,} rows"
            print(f"  {run.relation:<45} {run.materialized:<12} {run.seconds:7.2f} s {rows}", flush=True)

    if not args.json:
        print(f"building as of {as_of} (facts before {as_of} 00:00 {settings.timezone})")
    result = build(settings, as_of, on_model=progress)
    payload = {
        "as_of": str(as_of),
        "stages_seconds": result.stages,
        "models": [r.__dict__ for r in result.runs],
        "checks_failed": [c for c in result.checks if not c["success"]],
        "published": result.published,
    }
    if args.json:
        emit(args, payload)
    else:
        warnings = [c for c in result.checks if not c["success"]]
        print(f"published {len(result.published)} tables; {len(warnings)} data-quality warning(s)")
    return 0


def _register_build(commands, common):
    build = commands.add_parser("build", parents=[common], help="build features, tags, segments and publish")
    build.add_argument("--as-of", help="YYYY-MM-DD: facts before the start of this day count (default today)")
    build.set_defaults(func=cmd_build)


_EXTRA_COMMANDS.append(_register_build)
