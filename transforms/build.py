"""`segflow build`: staging, identity, features, tags, segments, insights, checks, publish.

Everything is computed as known at the start of the as-of day in the business timezone. The
models run in the work file; the published file is replaced only after the checks pass, so a
failed build leaves the previous tables in place for readers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from transforms.context import render_variables
from transforms.engines import Session, Warehouse, open_warehouse
from transforms.errors import SegflowError
from transforms.failpoints import failpoint
from transforms.ingest import ensure_raw_tables
from transforms.ingest.keys import publish_quarantine
from transforms.models import Model, ModelRun, Project, discover_sql_models, materialize
from transforms.schema import PERSON_KINDS
from transforms.settings import Settings
from transforms.steps import STEPS


def python_models() -> list[Model]:
    from transforms.identity import record_labels, stitch

    return [
        Model(
            name="int_identity",
            layer="intermediate",
            python=stitch,
            declared_deps=(
                "int_identity_records",
                "int_identity_nodes",
                "int_identity_edges",
                "int_identity_junk",
            ),
        ),
        Model(
            name="int_record_labels",
            layer="intermediate",
            python=record_labels,
            declared_deps=("int_identity",),
        ),
    ]


def load_project(settings: Settings, as_of: date) -> Project:
    variables = render_variables(settings, as_of)
    models = discover_sql_models() + python_models()
    for provider in _providers():
        models += provider(settings, variables)
    return Project(models, variables)


def _providers() -> list[Callable[[Settings, dict], list[Model]]]:
    from transforms.actions import action_models
    from transforms.cross_sell import cross_sell_models
    from transforms.segments import segment_models
    from transforms.tags import tag_models

    return [segment_models, tag_models, action_models, cross_sell_models]


@dataclass
class BuildResult:
    as_of: date
    runs: list[ModelRun] = field(default_factory=list)
    step_seconds: dict[str, float] = field(default_factory=dict)
    checks: list[dict] = field(default_factory=list)
    published: list[str] = field(default_factory=list)
    # How each published table got there (Warehouse.publish): rewritten, appended or carried.
    publish_modes: dict[str, str] = field(default_factory=dict)
    # What the build did but a person should know (a do-not-link rule that cuts nothing yet).
    warnings: list[str] = field(default_factory=list)


def run_step(
    settings: Settings, as_of: date, step: str, on_model=None, result: BuildResult | None = None
) -> BuildResult:
    """Run one step of the pipeline against the work file. Every step can be rerun safely."""
    if step not in STEPS:
        raise SegflowError(f"unknown step '{step}'; steps are {', '.join(STEPS)}")
    project = load_project(settings, as_of)
    warehouse = open_warehouse(settings)
    result = result or BuildResult(as_of=as_of)
    started = time.perf_counter()
    with warehouse.work(f"build step {step} as of {as_of}") as con:
        ensure_raw_tables(con)
        if step == "staging":
            _refuse_an_empty_warehouse(con, warehouse)
        if step == "publish":
            _refuse_to_publish_no_customers(con, as_of)
        if step == "checks":
            from transforms.quality import run_checks

            result.checks = run_checks(con, settings, as_of)
            errors = [c for c in result.checks if not c["success"] and c["severity"] == "error"]
            if errors:
                first = errors[0]
                raise SegflowError(
                    f"{len(errors)} data-quality error(s) as of {as_of}, nothing published; first: "
                    f"{first['suite']} {first['expectation']} observed {first['observed']} (see dq_results)"
                )
        else:
            for model in project.order(step):
                run = materialize(con, model, project.variables)
                result.runs.append(run)
                failpoint(f"after:{model.name}")
                if on_model:
                    on_model(run)
            if step == "identity":
                from transforms.identity import unseen_rule_identifiers

                result.warnings += unseen_rule_identifiers(con, settings)
            if step == "publish":
                from transforms.quality import DQ_RESULTS_DDL

                con.execute(DQ_RESULTS_DDL)  # readers find the table even when checks were skipped
                publish_quarantine(con)
                result.publish_modes = warehouse.publish(con)
                result.published = sorted(result.publish_modes)
    result.step_seconds[step] = time.perf_counter() - started
    return result


def _refuse_an_empty_warehouse(con: Session, warehouse: Warehouse) -> None:
    landed = con.scalar(
        "select "
        + " + ".join(f"(select count(*) from (select 1 from raw.{kind} limit 1))" for kind in PERSON_KINDS),
    )
    if not landed:
        raise SegflowError(
            f"nothing ingested yet in {warehouse.location}: load orders or contacts with "
            "`segflow ingest PATH --kind orders` first"
        )


def _refuse_to_publish_no_customers(con: Session, as_of: date) -> None:
    """A build as of a day before every record would publish empty tables over full ones."""
    if not con.scalar("select count(*) from (select 1 from pub.customer_features limit 1)"):
        raise SegflowError(
            f"as of {as_of} no customer is known yet (every record ingested is dated on or after it): "
            "nothing published; build a later --as-of"
        )


def build(settings: Settings, as_of: date, on_model=None, run_checks: bool = True) -> BuildResult:
    """All steps in order: what `segflow build` and a daily DAG run do."""
    result = BuildResult(as_of=as_of)
    for step in STEPS:
        if step == "checks" and not run_checks:
            continue
        run_step(settings, as_of, step, on_model, result)
    return result
