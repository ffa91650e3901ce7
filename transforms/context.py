"""What every model is rendered with: the as-of cut-off as SQL literals, the business settings,
and the constants that number identity records. A leaf that build, identity and quality import."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

from transforms.errors import SegflowError
from transforms.identity_rules import do_not_link_rules
from transforms.schema import IDENTIFIER_TYPES
from transforms.settings import Settings, load_yaml
from transforms.sql import literal


def landed_files_sql(relation: str) -> str:
    """Each loaded file of a raw table with the lines of the files loaded before it.

    A record's key inside a build is line_offset + _line: unique, dense (no larger than the number
    of loaded lines, so identity stitching can index records by it in an array instead of hashing
    them) and in load order: ingest run, then file path, then line. So the row loaded last (the
    contract's tie-break between versions of a row) has the largest key.
    """
    return (
        "select _batch, _file, cast(coalesce(sum(max(_line)) over (order by max(_loaded_at), _file, _batch "
        "rows between unbounded preceding and 1 preceding), 0) as bigint) as line_offset "
        f"from {relation} group by _batch, _file"
    )


def version_rank_sql(version_at: str, version_no: str, cutoff: str) -> str:
    """The contract's rule for which version of an order is current as known at `cutoff`, as a
    rank (1 is current) within the versions of one order: the latest version updated before the
    cut-off; for an order first delivered after it (late data), its earliest version; versions of
    the same moment go to the one loaded last (the largest version_no, landed_files_sql)."""
    return (
        f"case when {version_at} < {cutoff} then 0 else 1 end, "
        f"case when {version_at} < {cutoff} then {version_at} end desc, "
        f"{version_at} asc, {version_no} desc"
    )


# Every record's kind is a digit of its record_key, so one integer names a record in the graph.
RECORD_KINDS = ("order", "contact", "event", "manual_tag")


# The staging models whose rows are identity records: the column that numbers a record inside one
# build, its kind, and when its identifiers were seen. Each carries a key column per identifier type.
IDENTITY_SOURCES = (
    {"model": "stg_orders", "record_no": "order_no", "kind": "order", "seen_at": "created_at"},
    {
        "model": "stg_contacts",
        "record_no": "record_no",
        "kind": "contact",
        "seen_at": "coalesce(signup_at, recorded_at)",
    },
    {"model": "stg_events", "record_no": "record_no", "kind": "event", "seen_at": "occurred_at"},
    {"model": "stg_manual_tags", "record_no": "record_no", "kind": "manual_tag", "seen_at": "tagged_at"},
)


def record_key_sql(column: str, kind: str) -> str:
    return f"{column} * {len(RECORD_KINDS)} + {RECORD_KINDS.index(kind)}"


def render_variables(settings: Settings, as_of: date) -> dict:
    """What the SQL models see: the cut-off as SQL literals and the business settings."""
    cutoff = settings.start_of_day(as_of)
    rules = do_not_link_rules(settings)
    return {
        "as_of": as_of,
        "as_of_date": f"date '{as_of.isoformat()}'",
        "as_of_ts": f"cast('{cutoff.isoformat()}' as timestamptz)",
        "timezone": literal(settings.timezone),
        "date_before": lambda days: f"date '{(as_of - timedelta(days=int(days))).isoformat()}'",
        "lit": literal,
        "landed_files": landed_files_sql,
        "version_rank_order": version_rank_sql,
        "record_key": record_key_sql,
        "trailing_windows_days": [int(d) for d in settings.get("features.trailing_windows_days")],
        "purpose_gift_min_share": float(settings.get("features.purpose_gift_min_share")),
        "purpose_self_max_share": float(settings.get("features.purpose_self_max_share")),
        "hour_bands": settings.get("features.hour_bands"),
        "identity_sources": IDENTITY_SOURCES,
        "identifier_types": list(IDENTIFIER_TYPES),
        "identifier_pairs": list(itertools.combinations(IDENTIFIER_TYPES, 2)),
        "max_links_per_identifier": int(settings.get("identity.max_links_per_identifier")),
        "identity_blocklist": settings.get("identity.blocklist") or [],
        "identity_never_link": [
            {"id_type": rule.identifiers[0][0], "id_value": rule.identifiers[0][1], "rule": rule.label}
            for rule in rules
            if len(rule.identifiers) == 1
        ],
        "identity_pair_rules": [rule for rule in rules if len(rule.identifiers) == 2],
        "date_after": lambda days: f"date '{(as_of + timedelta(days=int(days))).isoformat()}'",
        "one_year_before": f"date '{_one_year_before(as_of).isoformat()}'",
        "birthday_window": [
            ((as_of + timedelta(days=n)).month, (as_of + timedelta(days=n)).day) for n in range(7)
        ],
        "replenishment_within_days": int(settings.get("actions.replenishment_within_days")),
        "affinity_window_days": int(settings.get("affinity.window_days")),
        "funnel_stages": _funnel_stages(settings),
        "history_keep_daily_days": _history_keep_daily_days(settings),
    }


def _history_keep_daily_days(settings: Settings) -> int | None:
    days = settings.get("history.keep_daily_days")
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise SegflowError(
            f"{settings.config_dir / 'settings.yml'}: history.keep_daily_days must be a whole number "
            f"of days (0 or more) or null to keep every date, not {days!r}"
        )
    return days


def _one_year_before(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def _funnel_stages(settings: Settings) -> list[str]:
    funnel = (load_yaml(settings.config_file("segments.yml")).get("models") or {}).get("funnel") or {}
    return [str(stage) for stage in funnel.get("stages") or []] or ["(no funnel model)"]
