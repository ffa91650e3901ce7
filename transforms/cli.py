"""The `segflow` command line: every command is a thin call into the transforms package."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

from transforms import PROJECT_ROOT
from transforms.console import print_table
from transforms.errors import SegflowError
from transforms.files_out import FORMATS
from transforms.settings import Settings


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


def cmd_dump(args: argparse.Namespace) -> int:
    from transforms.dump import dump

    result = dump(_settings(args), args.table, Path(args.out))
    emit(args, result, [result])
    return 0


def cmd_init_config(args: argparse.Namespace) -> int:
    from transforms.settings import init_config

    folder = Path(args.folder)
    written = init_config(folder)
    rows = [{"file": str(path)} for path in written]
    emit(args, {"folder": str(folder), "written": [r["file"] for r in rows]}, rows)
    if not args.json:
        print(f"\nuse it with --config {folder} or SEGFLOW_CONFIG={folder}")
    return 0


def _global_options(default: object) -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--warehouse", default=default, help="SQLAlchemy URL of the warehouse (env SEGFLOW_WAREHOUSE)"
    )
    options.add_argument(
        "--config", default=default, help="folder of the business config (env SEGFLOW_CONFIG)"
    )
    options.add_argument(
        "--json", action="store_true", default=default, help="print one JSON object instead of a table"
    )
    return options


def build_parser() -> argparse.ArgumentParser:
    # The global options are accepted before and after the command. A subcommand's own defaults
    # would overwrite what was given before it, so the subcommands set them only when given.
    parser = argparse.ArgumentParser(prog="segflow", description=__doc__, parents=[_global_options(None)])
    parser.set_defaults(json=False)
    common = _global_options(argparse.SUPPRESS)
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

    dump = commands.add_parser("dump", parents=[common], help="a published table to a Parquet or CSV file")
    dump.add_argument("table", help="a published table, e.g. customer_features")
    dump.add_argument("--out", required=True, help="FILE.parquet or FILE.csv")
    dump.set_defaults(func=cmd_dump)

    init = commands.add_parser(
        "init-config", parents=[common], help="copy the shipped business config into a folder of yours"
    )
    init.add_argument("folder", help="the brand's config folder (created if missing)")
    init.set_defaults(func=cmd_init_config)

    for register in (
        _register_build,
        _register_check_and_tags_report,
        _register_demo_and_airflow,
        _register_pack_and_actions,
        _register_report,
        _register_whois,
        _register_affinity,
    ):
        register(commands, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except SegflowError as exc:
        print(f"segflow: {exc}", file=sys.stderr)
        return 1


def cmd_build(args: argparse.Namespace) -> int:
    from transforms.build import build
    from transforms.settings import parse_as_of

    settings = _settings(args)
    as_of = parse_as_of(args.as_of, settings)

    def progress(run):
        if not args.json:
            rows = "" if run.rows is None else f"{run.rows:>12,} rows"
            print(f"  {run.relation:<45} {run.materialized:<12} {run.seconds:7.2f} s {rows}", flush=True)
            if run.removed_snapshots:
                print(
                    f"    removed snapshots as of {', '.join(run.removed_snapshots)} "
                    f"(history.keep_daily_days in settings.yml)",
                    flush=True,
                )

    if not args.json:
        print(f"building as of {as_of} (facts before {as_of} 00:00 {settings.timezone})")
    result = build(settings, as_of, on_model=progress)
    from transforms.quality import data_docs_dir

    payload = {
        "as_of": str(as_of),
        "steps_seconds": result.step_seconds,
        "models": [r.__dict__ for r in result.runs],
        "checks_failed": [c for c in result.checks if not c["success"]],
        "published": result.published,
        "warnings": result.warnings,
        "data_docs": str(data_docs_dir(settings) / "index.html"),
    }
    if args.json:
        emit(args, payload)
    else:
        warnings = [c for c in result.checks if not c["success"]]
        steps = ", ".join(f"{step} {seconds:.1f} s" for step, seconds in result.step_seconds.items())
        print(f"steps: {steps}; total {sum(result.step_seconds.values()):.1f} s")
        print(f"published {len(result.published)} tables; {len(warnings)} data-quality warning(s)")
        print(f"data docs: {data_docs_dir(settings) / 'index.html'}")
        for warning in result.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    return 0


def _register_build(commands, common):
    build = commands.add_parser("build", parents=[common], help="build features, tags, segments and publish")
    build.add_argument("--as-of", help="YYYY-MM-DD: facts before the start of this day count (default today)")
    build.set_defaults(func=cmd_build)


def cmd_check(args: argparse.Namespace) -> int:
    from transforms.build import run_step
    from transforms.settings import parse_as_of

    settings = _settings(args)
    as_of = parse_as_of(args.as_of, settings)
    try:
        result = run_step(settings, as_of, "checks")
        checks = result.checks
        failed_errors = 0
    except SegflowError:
        # The step refuses to pass on errors; on demand we still show every result.
        from transforms.engines import open_warehouse

        with open_warehouse(settings).work() as con:
            checks = con.fetch_dicts("select * from pub.dq_results where run = ?", [as_of.isoformat()])
        failed_errors = sum(1 for c in checks if not c["success"] and c["severity"] == "error")
    from transforms.quality import data_docs_dir

    data_docs = str(data_docs_dir(settings) / "index.html")
    emit(
        args,
        {"as_of": str(as_of), "checks": checks, "data_docs": data_docs},
        checks,
        ["suite", "expectation", "severity", "success", "observed"],
    )
    if not args.json:
        print(f"data docs: {data_docs}")
    if failed_errors:
        print(f"segflow: {failed_errors} data-quality error(s) as of {as_of}", file=sys.stderr)
        return 1
    return 0


def cmd_tags_report(args: argparse.Namespace) -> int:
    from transforms.tags import catalog_report

    report = catalog_report(_settings(args))
    emit(args, report, report["tags_detail"])
    if not args.json:
        print(
            f"\n{report['groups']} groups, {report['tags']} tags (limits {report['max_groups']} / {report['max_tags']})"
        )
        for warning in report["warnings"]:
            print(f"warning: {warning}")
    return 0


def _register_check_and_tags_report(commands, common):
    check = commands.add_parser("check", parents=[common], help="run the data-quality suites on demand")
    check.add_argument("--as-of", help="the run date the checks refer to (default today)")
    check.set_defaults(func=cmd_check)
    tags = commands.add_parser("tags", parents=[common], help="tag catalog governance")
    tag_commands = tags.add_subparsers(dest="tags_command", required=True)
    report = tag_commands.add_parser(
        "report", parents=[common], help="size, coverage, empty and overlapping tags"
    )
    report.set_defaults(func=cmd_tags_report)


def cmd_demo(args: argparse.Namespace) -> int:
    from transforms.demo import run_demo

    return run_demo(_settings(args), orders=args.orders, folder=args.dir.resolve())


def cmd_airflow(args: argparse.Namespace) -> int:
    from transforms import PROJECT_ROOT
    from transforms.airflow_runner import airflow_env, serve
    from transforms.pipeline import landing_dir

    settings = _settings(args)
    home = Path(args.home) if args.home else PROJECT_ROOT / "airflow_home"
    env = airflow_env(
        home,
        {
            "SEGFLOW_LANDING": str(landing_dir()),
            "SEGFLOW_WAREHOUSE": settings.warehouse_url,
            "SEGFLOW_CONFIG": str(settings.config_dir),
        },
    )
    return serve(home, env, args.port)


def _register_demo_and_airflow(commands, common):
    demo = commands.add_parser(
        "demo", parents=[common], help="generate sample data and run everything through Airflow"
    )
    demo.add_argument("--orders", type=int, default=20_000)
    demo.add_argument(
        "--dir", type=Path, default=PROJECT_ROOT, help="where the landing files, Airflow home and report go"
    )
    demo.set_defaults(func=cmd_demo)
    airflow = commands.add_parser(
        "airflow", parents=[common], help="the Airflow UI on 127.0.0.1 with our DAGs, until Ctrl-C"
    )
    airflow.add_argument("--port", type=int, default=8080, help="the UI's port on 127.0.0.1 (default 8080)")
    airflow.add_argument("--home", help="AIRFLOW_HOME (default airflow_home/ in the project)")
    airflow.set_defaults(func=cmd_airflow)


def cmd_pack_preview(args: argparse.Namespace) -> int:
    from transforms.packs import preview, resolve_pack

    settings = _settings(args)
    result = preview(settings, resolve_pack(settings, args.name, args.where))
    if args.json:
        emit(args, result)
        return 0
    print(
        f"pack {result['pack']} as of {result['as_of_date']}: {result['matched']} match, "
        f"{result['members']} to export, {result['holdout']} held out, {result['suppressed']} suppressed"
    )
    for reason, count in result["suppressed_by_reason"].items():
        print(f"  suppressed {reason}: {count}")
    for other, count in result["overlap_with_packs"].items():
        print(f"  overlap with {other}: {count}")
    print("\nsample (masked):")
    print_table(result["sample"])
    return 0


def cmd_pack_plan(args: argparse.Namespace) -> int:
    from transforms.campaigns import plan_wave, print_plan

    result = plan_wave(_settings(args), args.wave)
    if args.json:
        emit(args, result)
        return 0
    print_plan(result)
    return 0


def cmd_pack_export(args: argparse.Namespace) -> int:
    from transforms.packs import export, resolve_pack

    settings = _settings(args)
    name = args.name or args.name_option
    if args.reproduce:
        return _reproduce(args, settings, name)
    if args.where is not None and not name:
        raise SegflowError("pack export --where needs --name for the export's file and log")
    pack = resolve_pack(settings, name, args.where)
    result = export(settings, pack, Path(args.out) if args.out else None, args.format, args.hash, args.delta)
    emit(
        args,
        result.__dict__,
        [result.__dict__],
        ["export_id", "members", "suppressed", "holdout", "joined", "left", "file"],
    )
    return 0


def _reproduce(args: argparse.Namespace, settings, name: str | None) -> int:
    from transforms.reproduce import reproduce

    if not name or args.where or args.delta or args.hash:
        raise SegflowError(
            "pack export NAME --reproduce EXPORT_ID takes the pack's name and nothing else: the export "
            "recorded its format, hashing and delta"
        )
    result = reproduce(settings, name, args.reproduce, Path(args.out) if args.out else None)
    if not args.json:
        print(f"reproduced {result.export_id} byte for byte (SHA-256 {result.sha256}): {result.file}")
    else:
        emit(args, result.__dict__)
    return 0


def cmd_pack_lift(args: argparse.Namespace) -> int:
    from transforms.lift import lift

    result = lift(_settings(args), args.name, args.export, args.days, args.pre_days)
    if args.json:
        emit(args, result)
        return 0
    print(f"{result['export_id']}: {result['window']}")
    rows = [{"group": g, **result[g]} for g in ("contacted", "holdout")]
    print_table(rows)
    print(
        f"\nspend per customer lift, raw: {result['spend_per_customer_lift']} "
        f"(95% CI {result['spend_per_customer_lift_95ci']})"
    )
    print(
        f"spend per customer lift, CUPED (adjusted by pre-period spend, theta {result['cuped_theta']}): "
        f"{result['cuped_spend_per_customer_lift']} (95% CI {result['cuped_spend_per_customer_lift_95ci']})"
    )
    print(f"conversion lift: {result['conversion_lift']} (95% CI {result['conversion_lift_95ci']})")
    return 0


def cmd_unpaid_reminders(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from transforms.actions import unpaid_reminders

    at = datetime.fromisoformat(args.at) if args.at else datetime.now(UTC)
    if at.tzinfo is None:
        raise SegflowError(f"--at '{args.at}' needs a timezone offset, e.g. 2026-07-01T10:00:00+08:00")
    count = unpaid_reminders(_settings(args), at)
    emit(args, {"at": at.isoformat(), "reminders": count}, [{"at": at.isoformat(), "reminders": count}])
    return 0


def _register_pack_and_actions(commands, common):
    pack = commands.add_parser("pack", parents=[common], help="audience packs (人群包)")
    pack_commands = pack.add_subparsers(dest="pack_command", required=True)
    for name, func, text in (
        ("preview", cmd_pack_preview, "size, suppression, overlap, masked sample"),
        ("export", cmd_pack_export, "write the members file, manifest and log row"),
    ):
        command = pack_commands.add_parser(name, parents=[common], help=text)
        command.add_argument("name", nargs="?", help="a pack in packs.yml")
        command.add_argument("--where", help="an ad hoc pack in the safe expression language")
        if name == "export":
            command.add_argument("--name", dest="name_option", help="name for an ad hoc --where export")
            command.add_argument("--format", choices=FORMATS, default="csv")
            command.add_argument("--out", help="folder (default exports/)")
            command.add_argument("--hash", action="store_true", help="SHA-256 of normalised identifiers")
            command.add_argument(
                "--delta", action="store_true", help="only who joined and left since the last export"
            )
            command.add_argument(
                "--reproduce",
                metavar="EXPORT_ID",
                help="write that earlier export's file again, byte for byte",
            )
        command.set_defaults(func=func)
    plan = pack_commands.add_parser(
        "plan", parents=[common], help="a wave's overlaps and what each pack keeps after priority and caps"
    )
    plan.add_argument("wave", help="a wave in packs.yml")
    plan.set_defaults(func=cmd_pack_plan)
    lift = pack_commands.add_parser("lift", parents=[common], help="contacted vs holdout after an export")
    lift.add_argument("name")
    lift.add_argument("--export", required=True, help="export id (audience_pack_exports.export_id)")
    lift.add_argument("--days", type=int, default=30)
    lift.add_argument(
        "--pre-days", type=int, help="days before the export whose spend CUPED adjusts by (default --days)"
    )
    lift.set_defaults(func=cmd_pack_lift)

    actions = commands.add_parser("actions", parents=[common], help="action lists that run between builds")
    action_commands = actions.add_subparsers(dest="actions_command", required=True)
    reminders = action_commands.add_parser(
        "unpaid-reminders", parents=[common], help="unpaid orders that crossed a reminder mark"
    )
    reminders.add_argument("--at", help="ISO timestamp with offset (default now)")
    reminders.set_defaults(func=cmd_unpaid_reminders)


def cmd_report(args: argparse.Namespace) -> int:
    from transforms.report import write_report

    path = write_report(_settings(args), Path(args.out))
    emit(args, {"report": str(path)}, [{"report": str(path)}])
    return 0


def _register_report(commands, common):
    report = commands.add_parser("report", parents=[common], help="the offline HTML report with charts")
    report.add_argument("--out", default="reports/segflow_report.html")
    report.set_defaults(func=cmd_report)


def cmd_whois(args: argparse.Namespace) -> int:
    from transforms.settings import parse_as_of
    from transforms.whois import NotFound, print_answer, whois

    settings = _settings(args)
    as_of = parse_as_of(args.as_of, settings) if args.as_of else None
    try:
        answer = whois(settings, args.id, as_of, args.type, args.reveal)
    except NotFound as exc:  # an answer, not a failure of segflow: stdout, exit 1 as grep does
        emit(args, {"query": args.id, "found": False, "answer": str(exc)})
        if not args.json:
            print(exc)
        return 1
    if args.json:
        emit(args, {"found": True, **answer})
    else:
        print_answer(answer)
    return 0


def _register_whois(commands, common):
    whois = commands.add_parser(
        "whois",
        parents=[common],
        help="the customer an identifier belongs to, and the records that link them",
    )
    whois.add_argument(
        "id", help="a phone, unionid, email, member id or customer_key (normalised as ingest does)"
    )
    whois.add_argument("--as-of", help="YYYY-MM-DD: as that day's build saw it (default the latest build)")
    whois.add_argument(
        "--type",
        help="phone, unionid, email, member_id, external_userid or customer_key, when a value could be several",
    )
    whois.add_argument("--reveal", action="store_true", help="show the other identifiers unmasked")
    whois.set_defaults(func=cmd_whois)


def cmd_affinity(args: argparse.Namespace) -> int:
    from transforms.affinity import top_affinities

    result = top_affinities(_settings(args), args.category, args.top, args.level)
    if not args.json:
        print(f"buyers of {args.category} within affinity.window_days as of {result['as_of']} also bought:")
    columns = ["level", "related_category", "buyers_of_both", "support", "confidence", "lift"]
    emit(args, result, result["pairs"], columns)
    return 0


def _register_affinity(commands, common):
    affinity = commands.add_parser(
        "affinity",
        parents=[common],
        help="the categories a category's buyers also bought (category_affinity)",
    )
    affinity.add_argument("category", help="a category or subcategory, as in products")
    affinity.add_argument("--top", type=int, default=10, help="pairs per level (default 10)")
    affinity.add_argument("--level", help="category or subcategory (default both)")
    affinity.set_defaults(func=cmd_affinity)


if __name__ == "__main__":
    sys.exit(main())
