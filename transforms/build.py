"""`segflow build`: staging, identity, features, tags, segments, insights, checks, publish.

Everything is computed as known at the start of the as-of day in the business timezone. The
models run in the work file; the published file is replaced only after the checks pass, so a
failed build leaves the previous tables in place for readers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from transforms.errors import SegflowError
from transforms.ingest import ensure_raw_tables
from transforms.models import Model, ModelRun, Project, discover_sql_models
from transforms.settings import Settings
from transforms.warehouse import Warehouse


def sql_literal(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def render_variables(settings: Settings, as_of: date) -> dict:
    """What the SQL models see: the cut-off as SQL literals and the business settings."""
    cutoff = settings.start_of_day(as_of)
    return {
        "as_of": as_of,
        "as_of_date": f"date '{as_of.isoformat()}'",
        "as_of_ts": f"cast('{cutoff.isoformat()}' as timestamptz)",
        "timezone": sql_literal(settings.timezone),
        "date_before": lambda days: f"date '{(as_of - timedelta(days=int(days))).isoformat()}'",
        "lit": sql_literal,
        "trailing_windows_days": [int(d) for d in settings.get("features.trailing_windows_days")],
        "purpose_gift_min_share": float(settings.get("features.purpose_gift_min_share")),
        "purpose_self_max_share": float(settings.get("features.purpose_self_max_share")),
        "hour_bands": settings.get("features.hour_bands"),
        "max_links_per_identifier": int(settings.get("identity.max_links_per_identifier")),
        "identity_blocklist": settings.get("identity.blocklist") or [],
        "settings": settings,
    }


def python_models() -> list[Model]:
    from transforms.identity import stitch

    return [
        Model(
            name="int_identity",
            layer="intermediate",
            python=stitch,
            declared_deps=("int_identity_nodes", "int_identity_records"),
        )
    ]


# Models generated from the business YAML (segments, tags): each takes settings and the render
# variables and returns models.
MODEL_PROVIDERS: list[Callable[[Settings, dict], list[Model]]] = []
# Checks run between the build and publish stages: each returns failures that stop the publish.
CHECK_RUNNERS: list[Callable] = []


def load_project(settings: Settings, as_of: date) -> Project:
    variables = render_variables(settings, as_of)
    models = discover_sql_models() + python_models()
    for provider in _providers():
        models += provider(settings, variables)
    return Project(models, variables)


def _providers() -> list[Callable[[Settings, dict], list[Model]]]:
    from transforms.segments import segment_models
    from transforms.tags import tag_models

    return [segment_models, tag_models, *MODEL_PROVIDERS]


@dataclass
class BuildResult:
    as_of: date
    runs: list[ModelRun] = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=dict)
    checks: list[dict] = field(default_factory=list)
    published: list[str] = field(default_factory=list)


def build(settings: Settings, as_of: date, on_model=None, run_checks: bool = True) -> BuildResult:
    project = load_project(settings, as_of)
    warehouse = Warehouse(settings)
    result = BuildResult(as_of=as_of)
    with warehouse.work() as con:
        ensure_raw_tables(con)
        started = time.perf_counter()
        result.runs += project.run(con, "build", on_model)
        result.stages["models"] = time.perf_counter() - started
        if run_checks:
            started = time.perf_counter()
            for runner in CHECK_RUNNERS:
                result.checks += runner(con, settings, as_of, project)
            result.stages["checks"] = time.perf_counter() - started
            errors = [c for c in result.checks if not c["success"] and c["severity"] == "error"]
            if errors:
                first = errors[0]
                raise SegflowError(
                    f"{len(errors)} data-quality error(s), nothing published; first: {first['suite']} "
                    f"{first['expectation']}: {first['observed']} (see dq_results after `segflow check`)"
                )
        started = time.perf_counter()
        result.runs += project.run(con, "publish", on_model)
        result.published = warehouse.publish(con)
        result.stages["publish"] = time.perf_counter() - started
    return result
