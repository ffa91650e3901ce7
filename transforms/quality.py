"""Data-quality suites (expectations/*.yml) validated with Great Expectations 1.x.

Column checks run in GE's own SQL execution engine, in the warehouse: each table's checks are one
suite on one query, whose counts GE computes in a few aggregate queries (the engine says how GE
reaches its tables: `Session.dq_sql_source`, one data source for a run). Table-level checks (uniqueness, reconciliation,
volume, freshness) are computed in SQL and validated by GE on the one-row result. Severity `error`
stops the run before publish.
"""

from __future__ import annotations

import ast
import contextlib
import html
import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path

import jinja2
import pandas as pd

from transforms import PROJECT_ROOT
from transforms.engines import DatabaseError, MissingRelationError, Session
from transforms.errors import SegflowError
from transforms.schema import ORDER_STATUSES
from transforms.settings import Settings, load_yaml

EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
SEVERITIES = ("error", "warning")
DATA_DOCS_RUNS = int(os.environ.get("SEGFLOW_DATA_DOCS_RUNS", "200"))  # suite results with a page

DQ_RESULTS_DDL = """
create table if not exists pub.dq_results (
    run varchar, suite varchar, expectation varchar, severity varchar, success boolean, observed varchar
)"""


@dataclass(frozen=True)
class Check:
    suite: str
    name: str
    type: str  # not_null | between | in_set | metric
    severity: str
    table: str | None = None
    column: str | None = None
    min: float | None = None
    max: float | None = None
    values: tuple | None = None
    sql: str | None = None
    optional: bool = False  # the tables may not exist yet (e.g. before the first pack export)
    # What the results say when the tables do not exist yet or the query finds nothing to compare.
    if_missing: str = "no table yet"


def _values(spec: dict, settings: Settings) -> tuple | None:
    source = spec.get("values_from")
    if source == "order_statuses":
        return ORDER_STATUSES
    if source == "channels":
        return tuple(settings.get("channels"))
    return tuple(spec["values"]) if "values" in spec else None


CHECK_KEYS = {
    "name",
    "type",
    "severity",
    "table",
    "column",
    "min",
    "max",
    "max_setting",
    "values",
    "values_from",
    "sql",
    "optional",
    "if_missing",
    "description",
}


def load_checks(settings: Settings, directory: Path = EXPECTATIONS_DIR) -> list[Check]:
    """Our suites plus the brand's own, from `<config>/expectations/*.yml`."""
    checks: list[Check] = []
    paths = sorted(directory.glob("*.yml")) + sorted((settings.config_dir / "expectations").glob("*.yml"))
    for path in paths:
        document = load_yaml(path)
        suite = document.get("suite", path.stem)
        for index, spec in enumerate(document.get("expectations") or [], start=1):
            severity = spec.get("severity", "error")
            if severity not in SEVERITIES or spec.get("type") not in (
                "not_null",
                "between",
                "in_set",
                "metric",
            ):
                raise SegflowError(f"{path} expectation {index}: type or severity not understood")
            unknown = set(spec) - CHECK_KEYS
            if unknown:
                raise SegflowError(
                    f"{path} expectation {index}: unknown key(s) {', '.join(sorted(unknown))}; "
                    f"known: {', '.join(sorted(CHECK_KEYS))}"
                )
            maximum = spec.get("max")
            if "max_setting" in spec:
                maximum = float(settings.get(spec["max_setting"]))
            name = spec.get("name") or f"{spec['type']}:{spec.get('table')}.{spec.get('column')}"
            checks.append(
                Check(
                    suite,
                    name,
                    spec["type"],
                    severity,
                    spec.get("table"),
                    spec.get("column"),
                    spec.get("min"),
                    maximum,
                    _values(spec, settings),
                    spec.get("sql"),
                    optional=bool(spec.get("optional", False)),
                    if_missing=str(spec.get("if_missing", "no table yet")),
                )
            )
        if document.get("columns_from"):
            checks += _column_tests(suite, document["table"], PROJECT_ROOT / document["columns_from"])
        if document.get("segments_from_config"):
            checks += _segment_values(suite, settings)
    return checks


def _column_tests(suite: str, table: str, model_doc: Path) -> list[Check]:
    """The tests declared beside a model (not_null, unique, min, accepted_values)."""
    checks = []
    for column in load_yaml(model_doc)["columns"]:
        for test in column.get("tests") or []:
            name = column["name"]
            if test == "not_null":
                checks.append(Check(suite, f"not_null:{name}", "not_null", "error", table, name))
            elif test == "unique":
                checks.append(
                    Check(
                        suite,
                        f"unique:{name}",
                        "metric",
                        "error",
                        sql=f"select count(*) - count(distinct {name}) from {table}",
                        max=0,
                    )
                )
            elif isinstance(test, dict) and "min" in test:
                checks.append(Check(suite, f"min:{name}", "between", "error", table, name, min=test["min"]))
            elif isinstance(test, dict) and "accepted_values" in test:
                checks.append(
                    Check(
                        suite,
                        f"accepted_values:{name}",
                        "in_set",
                        "error",
                        table,
                        name,
                        values=tuple(test["accepted_values"]),
                    )
                )
    return checks


def _segment_values(suite: str, settings: Settings) -> list[Check]:
    from transforms.segments import load_segment_models

    checks = []
    for model in load_segment_models(settings.config_file("segments.yml")):
        allowed = tuple(segment for segment, _ in model.segments()) + ("no_orders",)
        checks.append(
            Check(
                suite,
                f"accepted_segments:{model.name}",
                "metric",
                "error",
                sql="select count(*) from pub.customer_segments where model = "
                f"'{model.name}' and segment not in ({', '.join(repr(s) for s in allowed)})",
                max=0,
            )
        )
    return checks


@cache
def _gx():
    """One ephemeral GE context per process; imported lazily (it takes seconds)."""
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    try:
        context.variables.progress_bars = {"globally": False, "metric_calculations": False}
    except Exception:  # noqa: BLE001 - older/newer config shapes; progress bars are cosmetic
        pass
    batch_definition = (
        context.data_sources.add_pandas("segflow")
        .add_dataframe_asset("batch")
        .add_batch_definition_whole_dataframe("all")
    )
    return gx, context, batch_definition


def _expectation(gx, check: Check, column: str):
    if check.type == "not_null":
        return gx.expectations.ExpectColumnValuesToNotBeNull(column=column)
    if check.type == "in_set":
        return gx.expectations.ExpectColumnValuesToBeInSet(column=column, value_set=list(check.values))
    return gx.expectations.ExpectColumnValuesToBeBetween(
        column=column, min_value=check.min, max_value=check.max
    )


def _configuration_key(configuration) -> str:
    """An expectation's type and arguments: results come back without the ids of an unsaved suite."""
    arguments = {name: value for name, value in configuration.kwargs.items() if name != "batch_id"}
    return json.dumps([configuration.type, arguments], sort_keys=True, default=str)


def _counts(result) -> tuple[int, int]:
    """(unexpected, checked): a value check counts the values present, a not_null check every row."""
    counted = int(result.result.get("element_count") or 0)
    if result.expectation_config.type != "expect_column_values_to_not_be_null":
        counted -= int(result.result.get("missing_count") or 0)
    return int(result.result.get("unexpected_count") or 0), counted


def _failed_query_result(check: Check, message: str, success: bool = False):
    from great_expectations.core import ExpectationValidationResult

    gx, _, _ = _gx()
    return ExpectationValidationResult(
        success=success,
        expectation_config=_expectation(gx, check, check.name).configuration,
        # The data docs show it as the observed value ("no earlier run to compare with").
        result={"observed_value": message},
        exception_info={
            "raised_exception": not success,
            "exception_message": message,
            "exception_traceback": message,
        },
    )


def run_check(con: Session, check: Check, variables: dict) -> tuple[dict, object]:
    """(the dq_results row, GE's validation result for the data docs)."""
    if check.type == "metric":
        value, outcome = _metric_value(con, check, variables)
        return outcome or _validate_metrics([(check, value)])[0]
    with _warehouse_source(con) as source:
        return _run_table_checks(con, source, check.table, [check])[0]


def _metric_value(con: Session, check: Check, variables: dict) -> tuple[object, tuple[dict, object] | None]:
    """A metric's value, or its outcome where there is no value to validate (a failed query, or an
    optional check's table missing or empty)."""
    sql = jinja2.Template(check.sql).render(**variables)
    try:
        value = con.execute(sql).fetchall()[0][0]
    except MissingRelationError as exc:
        if check.optional:
            return None, _unvalidated(check, check.if_missing, success=True)
        return None, _unvalidated(check, f"query failed: {str(exc).splitlines()[0]}")
    except DatabaseError as exc:
        return None, _unvalidated(check, f"query failed: {str(exc).splitlines()[0]}")
    if value is None and check.optional:
        return None, _unvalidated(check, check.if_missing, success=True)
    return value, None


def _unvalidated(check: Check, message: str, success: bool = False) -> tuple[dict, object]:
    """The outcome of a check GE had nothing to validate for, with `message` as what was observed."""
    return _outcome(check, success, message), _failed_query_result(check, message, success)


def _validate_metrics(values: list[tuple[Check, object]]) -> list[tuple[dict, object]]:
    """Metric values validated by GE, a suite's metrics as the columns of one one-row frame (one
    validation per suite instead of one per metric). Each column is named after its check: the data
    docs list checks by column."""
    gx, _, batch_definition = _gx()
    frames: list[dict[str, tuple[Check, object]]] = []
    by_suite: dict[str, int] = {}
    for check, value in values:
        index = by_suite.get(check.suite)
        if index is None or check.name in frames[index]:
            by_suite[check.suite] = index = len(frames)
            frames.append({})
        frames[index][check.name] = (check, value)
    results: dict[tuple[str, str], tuple[dict, object]] = {}
    for columns in frames:
        frame = pd.DataFrame(
            {name: [float(value) if value is not None else None] for name, (_, value) in columns.items()}
        )
        suite = gx.ExpectationSuite(
            name="segflow:metrics",
            expectations=[_expectation(gx, check, name) for name, (check, _) in columns.items()],
        )
        validation = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(suite)
        for result in validation.results:
            check, value = columns[result.expectation_config.kwargs["column"]]
            # Rounded: parallel float sums differ in the last bits from run to run.
            observed = f"{round(float(value), 9):g}" if value is not None else "null"
            results[check.suite, check.name] = (_outcome(check, _counts(result)[0] == 0, observed), result)
    return [results[check.suite, check.name] for check, _ in values]


@contextlib.contextmanager
def _warehouse_source(con: Session) -> Iterator[object]:
    """GE's SQL data source on the session's warehouse, for the block."""
    _, context, _ = _gx()
    with con.dq_sql_source() as source:
        add_source = getattr(context.data_sources, f"add_or_update_{source['type']}")
        yield add_source(
            name=f"warehouse_{source['type']}", **{k: v for k, v in source.items() if k != "type"}
        )


def _run_table_checks(con: Session, source, table: str, checks: list[Check]) -> list[tuple[dict, object]]:
    """A table's column checks as one GE suite validated on one query asset of `source`: GE's SQL
    engine computes the counts of all of them where the data is, bundling their aggregates into a
    few queries."""
    gx, _, _ = _gx()
    suite = gx.ExpectationSuite(
        name=f"segflow:{table}", expectations=[_expectation(gx, check, check.column) for check in checks]
    )
    columns = ", ".join(dict.fromkeys(check.column for check in checks))
    name = f"segflow:{table}"
    if any(asset.name == name for asset in source.assets):
        source.delete_asset(name)
    validation = con.dq_batch(source, name, table, f"select {columns} from {table}").validate(suite)
    by_key: dict[str, list] = {}
    for result in validation.results:
        by_key.setdefault(_configuration_key(result.expectation_config), []).append(result)
    outcomes = []
    for check, expectation in zip(checks, suite.expectations, strict=True):
        # identical checks get identical results
        result = by_key[_configuration_key(expectation.configuration)].pop()
        failure = _raised(result)
        if failure:
            outcomes.append(_unvalidated(check, f"query failed: {failure}"))
            continue
        unexpected, checked = _counts(result)
        outcomes.append(
            (_outcome(check, unexpected == 0, f"{unexpected} of {checked} rows unexpected"), result)
        )
    return outcomes


def _raised(result) -> str | None:
    """The first line of the error GE caught computing a result's metrics (a missing table, a
    failed query), which it reports beside empty counts instead of raising."""
    info = result.exception_info or {}
    # One entry for the expectation, or one per metric it needed.
    entries = [info] if "raised_exception" in info else list(info.values())
    for entry in entries:
        if isinstance(entry, dict) and entry.get("raised_exception"):
            return (str(entry.get("exception_message") or "unknown error").strip().splitlines() or ["?"])[0]
    return None


def _outcome(check: Check, success: bool, observed: str) -> dict:
    return {
        "suite": check.suite,
        "expectation": check.name,
        "severity": check.severity,
        "success": bool(success),
        "observed": observed,
    }


def data_docs_dir(settings: Settings) -> Path:
    from transforms.engines import open_warehouse

    return open_warehouse(settings).files_dir / "data_docs"


def write_data_docs(settings: Settings, as_of: date, checks: list[Check], results: list) -> Path:
    """GE's HTML data docs: one validation page per suite and run, an index of recent runs.

    Validation results are kept in a GE file project beside the warehouse (`gx/`), so the index
    shows the history of runs; pages are rendered for the newest DATA_DOCS_RUNS results only.
    """
    import great_expectations as gx
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    _gx()  # quiet logging, analytics off
    site = data_docs_dir(settings)
    context = gx.get_context(mode="file", project_root_dir=str(site.parent))
    site_config = {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site)},
        "site_index_builder": {
            "class_name": "DefaultSiteIndexBuilder",
            "validation_results_limit": DATA_DOCS_RUNS,
        },
    }
    if "segflow" not in (context.get_config().data_docs_sites or {}):
        context.add_data_docs_site("segflow", site_config)
    run_id = RunIdentifier(run_name=as_of.isoformat(), run_time=datetime.now(UTC))
    keys = []
    for suite in dict.fromkeys(check.suite for check in checks):
        suite_results = [r for check, r in zip(checks, results, strict=True) if check.suite == suite]
        tables = sorted({check.table or "metrics" for check in checks if check.suite == suite})
        passed = sum(1 for r in suite_results if r.success)
        validation = ExpectationSuiteValidationResult(
            success=passed == len(suite_results),
            results=suite_results,
            suite_name=suite,
            statistics={
                "evaluated_expectations": len(suite_results),
                "successful_expectations": passed,
                "unsuccessful_expectations": len(suite_results) - passed,
                "success_percent": 100.0 * passed / len(suite_results),
            },
            meta={
                "active_batch_definition": {"data_asset_name": ", ".join(tables)},
                "batch_kwargs": {"data_asset_name": ", ".join(tables)},
                "run_id": run_id.to_json_dict(),
                "great_expectations_version": gx.__version__,
                "as_of_date": str(as_of),
            },
        )
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite),
            run_id=run_id,
            batch_identifier="segflow",
        )
        context.validation_results_store.set(key, validation)
        keys.append(key)
    # Pages written since the last pass (every page, the first time) are made self-contained.
    stamp = site / ".segflow-self-contained"
    since = stamp.stat().st_mtime - 1 if stamp.exists() else 0
    context.build_data_docs(site_names=["segflow"], resource_identifiers=keys)
    for page in site.rglob("*.html"):
        if page.stat().st_mtime >= since:
            _make_page_self_contained(site, page)
    stamp.touch()
    return site / "index.html"


# GE's pages load jQuery, Bootstrap, Vega and fonts from five CDNs and its logo from S3 with the
# data context id in the URL. Offline, or where those hosts are blocked or slow (often so in
# mainland China), the index stayed empty (its table is filled by script) and every page waited
# on the blocked scripts. The pages are rewritten to need nothing from the network.
_EXTERNAL_ASSET = re.compile(
    r'<script\b[^>]*\bsrc="https?://[^"]*"[^>]*>\s*</script>\s*|<link\b[^>]*\bhref="https?://[^"]*"[^>]*>\s*'
)
_INLINE_SCRIPT = re.compile(r"<script>.*?</script>\s*", re.S)
_GX_WEB_ASSET = re.compile(r'https://great-expectations-web-assets\.[^"/]+/([\w.-]+)(?:\?[^"]*)?')
_INDEX_TABLE = re.compile(r'(<table\s+id="section-[\w-]+-body-table"[^>]*>)\s*</table>')
_INDEX_ROWS = re.compile(r"^\s*data: (\[.*\]),$", re.M)
_FILTER_TOOLBAR = re.compile(r'<div id="section-[\w-]+-body-table-toolbar".*?</div>\s*', re.S)
SELF_CONTAINED_MARK = '<meta name="segflow-self-contained" content="1">'
_OFFLINE_STYLE = """<style>
body { font-family: -apple-system, "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif;
  margin: 0 auto; max-width: 1200px; padding: 0 16px; color: #222; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border: 1px solid #ddd; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
.segflow-success { color: #1a7f37; font-weight: 600; }
.segflow-failed { color: #c62828; font-weight: 600; }
nav.navbar { height: auto !important; }
img { max-height: 40px; }
.text-success { color: #1a7f37; }
.text-danger { color: #c62828; }
.fa-check-circle::before { content: "\\2714"; }
.fa-times::before { content: "\\2718"; }
/* what only the removed scripts made work: filters, collapse toggles, tooltips, the GE footers */
.cooltip .top, footer, a[data-toggle="collapse"], .card:has(.btn-group-toggle) { display: none; }
</style>
"""


def _make_page_self_contained(site: Path, page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    if SELF_CONTAINED_MARK in text:
        return
    to_root = "../" * (len(page.relative_to(site).parts) - 1)
    match = _INDEX_ROWS.search(text)
    if match:  # the index: GE fills its table by script
        text = _INDEX_TABLE.sub(
            lambda table: table.group(1) + _index_rows_html(match.group(1)) + "</table>", text
        )
        text = _FILTER_TOOLBAR.sub("", text)
    text = _EXTERNAL_ASSET.sub("", text)
    text = _INLINE_SCRIPT.sub("", text)  # they drive the removed libraries
    text = _GX_WEB_ASSET.sub(lambda asset: f"{to_root}static/images/{asset.group(1)}", text)
    text = text.replace("</head>", f"{SELF_CONTAINED_MARK}\n{_OFFLINE_STYLE}</head>", 1)
    page.write_text(text, encoding="utf-8")


def _cell(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _index_rows_html(rows_literal: str) -> str:
    """The index's validation runs as a static table, newest first (GE fills it by script)."""
    rows = sorted(ast.literal_eval(rows_literal), key=lambda row: row["_run_time_sort"], reverse=True)
    head = "".join(f"<th>{title}</th>" for title in ("Status", "Run time", "Run name", "Asset", "Suite"))
    body = []
    for row in rows:
        status = row["_validation_success_text"]
        css = "segflow-success" if status == "Success" else "segflow-failed"
        cells = (
            f'<td class="{css}">{_cell(status)}</td>',
            f"<td>{_cell(row.get('run_time'))}</td>",
            f"<td>{_cell(row.get('run_name'))}</td>",
            f"<td>{_cell(row.get('asset_name'))}</td>",
            f'<td><a href="{_cell(row["_table_row_link_path"])}">'
            f"{_cell(row.get('_expectation_suite_name_sort'))}</a></td>",
        )
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody>"


def _run_all(con: Session, checks: list[Check], variables: dict) -> list[tuple[dict, object]]:
    """Every check's outcome, in the checks' order: the column checks of one table in one suite, the
    metrics of one suite in one frame."""
    outcomes: dict[int, tuple[dict, object]] = {}
    by_table: dict[str, list[int]] = {}
    metrics: list[tuple[int, Check, object]] = []
    for index, check in enumerate(checks):
        if check.type != "metric":
            by_table.setdefault(check.table, []).append(index)
            continue
        value, outcome = _metric_value(con, check, variables)
        if outcome:
            outcomes[index] = outcome
        else:
            metrics.append((index, check, value))
    validated = _validate_metrics([(check, value) for _, check, value in metrics])
    for (index, _, _), outcome in zip(metrics, validated, strict=True):
        outcomes[index] = outcome
    with _warehouse_source(con) as source:
        for table, indexes in by_table.items():
            table_checks = [checks[i] for i in indexes]
            for index, outcome in zip(
                indexes, _run_table_checks(con, source, table, table_checks), strict=True
            ):
                outcomes[index] = outcome
    return [outcomes[index] for index in range(len(checks))]


def run_checks(con: Session, settings: Settings, as_of: date) -> list[dict]:
    """Run every suite against the work file; record the results in pub.dq_results for this run
    and in GE's data docs."""
    from transforms.context import render_variables

    variables = render_variables(settings, as_of)
    checks = load_checks(settings)
    outcomes = _run_all(con, checks, variables)
    results = [row for row, _ in outcomes]
    con.execute(DQ_RESULTS_DDL)
    con.execute("delete from pub.dq_results where run = ?", [as_of.isoformat()])
    if results:
        frame = pd.DataFrame(results).assign(run=as_of.isoformat())
        with con.registered("dq_frame", frame):
            con.execute("insert into pub.dq_results by name select * from dq_frame")
        write_data_docs(settings, as_of, checks, [result for _, result in outcomes])
    return results
