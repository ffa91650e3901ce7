"""Data-quality suites (expectations/*.yml) validated with Great Expectations 1.x.

GE's SQL engine returns empty metrics on DuckDB, so tables are validated through GE's pandas
engine on Arrow batches of a bounded size (never a whole large table in memory at once), and
table-level checks (uniqueness, reconciliation, volume, freshness) are computed in SQL and
validated by GE on the one-row result. Severity `error` stops the run before publish.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

import duckdb
import jinja2
import pandas as pd

from transforms import PROJECT_ROOT
from transforms.errors import SegflowError
from transforms.schema import ORDER_STATUSES
from transforms.settings import Settings, load_yaml

EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
BATCH_ROWS = int(os.environ.get("SEGFLOW_DQ_BATCH_ROWS", "1000000"))
SEVERITIES = ("error", "warning")

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


def _validate(frame: pd.DataFrame, check: Check, column: str) -> tuple[int, int]:
    """(unexpected, checked) for one batch, validated by GE."""
    gx, _, batch_definition = _gx()
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(_expectation(gx, check, column))
    return int(result.result.get("unexpected_count") or 0), int(result.result.get("element_count") or 0)


def _run_check(con: duckdb.DuckDBPyConnection, check: Check, variables: dict) -> dict:
    if check.type == "metric":
        sql = jinja2.Template(check.sql).render(**variables)
        try:
            value = con.execute(sql).fetchall()[0][0]
        except duckdb.CatalogException as exc:
            if check.optional:
                return _outcome(check, True, "no table yet")
            return _outcome(check, False, f"query failed: {str(exc).splitlines()[0]}")
        except duckdb.Error as exc:
            return _outcome(check, False, f"query failed: {str(exc).splitlines()[0]}")
        frame = pd.DataFrame({"value": [float(value) if value is not None else None]})
        unexpected, _ = _validate(frame, check, "value")
        # Rounded: parallel float sums differ in the last bits from run to run.
        return _outcome(
            check, unexpected == 0, f"{round(float(value), 9):g}" if value is not None else "null"
        )
    column = check.column
    where = f"where {column} is not null" if check.type != "not_null" else ""
    reader = con.sql(f"select {column} from {check.table} {where}").to_arrow_reader(BATCH_ROWS)
    unexpected = checked = 0
    for record_batch in reader:
        if record_batch.num_rows == 0:
            continue
        bad, seen = _validate(record_batch.to_pandas(), check, column)
        unexpected += bad
        checked += seen
    return _outcome(check, unexpected == 0, f"{unexpected} of {checked} rows unexpected")


def _outcome(check: Check, success: bool, observed: str) -> dict:
    return {
        "suite": check.suite,
        "expectation": check.name,
        "severity": check.severity,
        "success": bool(success),
        "observed": observed,
    }


def run_checks(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: date) -> list[dict]:
    """Run every suite against the work file; record the results in pub.dq_results for this run."""
    from transforms.build import render_variables

    variables = render_variables(settings, as_of)
    results = [_run_check(con, check, variables) for check in load_checks(settings)]
    con.execute(DQ_RESULTS_DDL)
    con.execute("delete from pub.dq_results where run = ?", [as_of.isoformat()])
    if results:
        frame = pd.DataFrame(results).assign(run=as_of.isoformat())
        con.register("dq_frame", frame)
        con.execute("insert into pub.dq_results by name select * from dq_frame")
        con.unregister("dq_frame")
    return results
