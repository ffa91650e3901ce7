"""Action lists (touchpoints) that need more than a static model: check-in routing and unpaid-order reminders."""

from __future__ import annotations

from datetime import datetime, timedelta

from transforms.context import landed_files_sql, version_rank_sql
from transforms.engines import open_warehouse
from transforms.errors import SegflowError
from transforms.expressions import compile_expression
from transforms.models import Model
from transforms.rules import Rule, first_match
from transforms.schema import IDENTIFIER_TYPES
from transforms.settings import Settings
from transforms.sql import literal, ref
from transforms.tags import with_customer_key


def checkin_routes(settings: Settings) -> list[Rule]:
    rules, errors = [], []
    for index, route in enumerate(settings.get("actions.checkin_routes") or [], start=1):
        where = f"{settings.config_dir / 'settings.yml'} actions.checkin_routes {index}"
        try:
            rules.append(
                Rule(str(route["group"]), str(route["group"]), compile_expression(str(route["when"]), where))
            )
        except (KeyError, TypeError):
            errors.append(f"{where}: give `group` and `when`")
        except SegflowError as exc:
            errors.append(str(exc))
    if errors:
        raise SegflowError(" | ".join(errors))
    return rules


def action_models(settings: Settings, variables: dict) -> list[Model]:
    routes = checkin_routes(settings)
    days = int(settings.get("actions.checkin_group_days"))
    route = first_match(routes, str(settings.get("actions.checkin_default_group")))
    sql = (
        f"select {variables['as_of_date']} as as_of_date, f.customer_key, checkins.joined_date as checkin_joined_date, "
        f"{route} as route_to_group, f.order_count, f.favorite_subcategory, f.opted_out, f.marketing_consent "
        f"from {ref('customer_features')} as f inner join ("
        + with_customer_key(
            f"select customer_no, min(event_date) as joined_date from {ref('int_customer_events')} "
            "where event_type = 'checkin' group by customer_no",
            "joined_date",
        )
        + ") as checkins on f.customer_key = checkins.customer_key "
        f"where checkins.joined_date = {variables['date_before'](days)}"
    )
    return [
        Model(
            name="action_checkin_routing",
            layer="marts",
            sql=sql,
        )
    ]


def unpaid_reminders(settings: Settings, at: datetime) -> int:
    """Write `action_unpaid_reminders`: unpaid orders that crossed a reminder mark in the last run interval."""
    every = timedelta(minutes=int(settings.get("actions.reminder_every_minutes")))
    marks = [int(m) for m in settings.get("actions.unpaid_reminder_minutes")]
    windows = " union all ".join(
        f"select {m} as reminder_minutes, cast({literal((at - timedelta(minutes=m) - every).isoformat())} as timestamptz) "
        f"as created_after, cast({literal((at - timedelta(minutes=m)).isoformat())} as timestamptz) as created_until"
        for m in marks
    )
    lookups = " ".join(
        f"left join {ref('customer_identifiers')} as by_{kind} on by_{kind}.id_type = '{kind}' "
        f"and by_{kind}.id_value = unpaid.{kind}"
        for kind in IDENTIFIER_TYPES
    )
    customer_key = ", ".join(f"by_{kind}.customer_key" for kind in IDENTIFIER_TYPES)
    # As known one microsecond after `at`: the order versions updated at `at` itself count.
    cutoff = f"cast({literal((at + timedelta(microseconds=1)).isoformat())} as timestamptz)"
    sql = f"""
create or replace table pub.action_unpaid_reminders as
with landed_files as ({landed_files_sql("raw.orders")}),
version_keys as (
    select orders.*, coalesce(orders.updated_at, orders.created_at) as version_at,
        landed_files.line_offset + orders._line as version_no
    from raw.orders as orders
    inner join landed_files on orders._batch = landed_files._batch and orders._file = landed_files._file
    where orders.created_at < {cutoff}
),
versions as (
    select *, row_number() over (
        partition by order_id order by {version_rank_sql("version_at", "version_no", cutoff)}
    ) as version_rank
    from version_keys
),
unpaid as (select * from versions where version_rank = 1 and status = 'created')
select cast({literal(at.isoformat())} as timestamptz) as reminder_at, marks.reminder_minutes,
    unpaid.order_id, unpaid.created_at, unpaid.amount, unpaid.channel,
    coalesce({customer_key}) as customer_key,
    unpaid.phone, unpaid.unionid
from unpaid
inner join ({windows}) as marks
    on unpaid.created_at > marks.created_after and unpaid.created_at <= marks.created_until
{lookups}
order by marks.reminder_minutes, unpaid.order_id
"""
    warehouse = open_warehouse(settings)
    with warehouse.work() as con:
        from transforms.ingest import ensure_raw_tables

        ensure_raw_tables(con)
        if not con.table_exists("pub", "customer_identifiers"):  # before the first build: nobody known yet
            sql = sql.replace(
                f"coalesce({customer_key}) as customer_key", "cast(null as varchar) as customer_key"
            )
            sql = sql.replace(lookups, "")
        con.execute(con.render(sql))
        count = con.scalar("select count(*) from pub.action_unpaid_reminders")
        warehouse.publish(con, tables=["action_unpaid_reminders"])
    return count
