"""An independent pandas computation of identity and the core customer features, to check the SQL against.

Written separately from sql/ and transforms/identity.py: it reads the raw tables and applies the
contract's rules (versions, cut-off, refunds, purchase days, identity stitching with junk
identifiers left out) in plain pandas, with scipy for the connected components.
"""

from __future__ import annotations

import hashlib
import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

COUNTED_STATUSES = {"paid", "shipped", "completed", "refunded", "partially_refunded"}
ID_TYPES = ("phone", "unionid", "email", "member_id", "external_userid")
ORDER_COLUMNS = (
    "order_id, status, amount, refund_amount, channel, is_gift, created_at, updated_at, paid_at, "
    "refunded_at, _loaded_at, _file, _line, _order_key, " + ", ".join(ID_TYPES)
)


def current_orders(raw: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    orders = raw[raw["created_at"] < cutoff].copy()
    orders["version_at"] = orders["updated_at"].fillna(orders["created_at"])
    orders["known"] = orders["version_at"] < cutoff
    # Load order (ingest run, file path, line) breaks ties: the row loaded last is the newer one.
    known = orders[orders["known"]].sort_values(["order_id", "version_at", "_loaded_at", "_file", "_line"])
    latest_known = known.groupby("order_id").tail(1)
    unknown = orders[~orders.groupby("order_id")["known"].transform("any")]
    earliest = unknown.sort_values(
        ["order_id", "version_at", "_loaded_at", "_file", "_line"],
        ascending=[True, True, False, False, False],
    )
    earliest = earliest.groupby("order_id").head(1)
    return pd.concat([latest_known, earliest], ignore_index=True)


def identity_records(con: duckdb.DuckDBPyConnection, orders: pd.DataFrame, cutoff: pd.Timestamp) -> dict:
    """Every record known before the cut-off that carries identifiers, with when it was seen.

    Orders are their current versions; contacts, events and manual tags are every row before the
    cut-off (a contact counts from its signup, or from its load when it has none).
    """
    known = {
        "contact": "coalesce(signup_at, _loaded_at)",
        "event": "occurred_at",
        "manual_tag": "tagged_at",
    }
    seen = {
        "contact": "coalesce(signup_at, updated_at, _loaded_at)",
        "event": "occurred_at",
        "manual_tag": "tagged_at",
    }
    tables = {"contact": "raw.contacts", "event": "raw.events", "manual_tag": "raw.manual_tags"}
    records = {"order": orders[[*ID_TYPES, "created_at"]].rename(columns={"created_at": "seen_at"})}
    for kind, table in tables.items():
        frame = con.sql(
            f"select {', '.join(ID_TYPES)}, {seen[kind]} as seen_at from {table} where {known[kind]} < ?",
            params=[cutoff.to_pydatetime()],
        ).df()
        frame["seen_at"] = pd.to_datetime(frame["seen_at"], utc=True)
        records[kind] = frame
    return records


def stitch(records: dict, max_links: int, blocklist: list[dict]) -> pd.DataFrame:
    """customer_identifiers as the contract defines it: (customer_key, id_type, id_value, first_seen_at).

    Identifiers on one record are one person, transitively. An identifier that shares records with
    more than max_links distinct other identifiers, or is blocklisted, is junk: it links nobody and
    belongs to nobody. A customer's key is md5 of its earliest-seen identifier ("type:value", first 16
    hex digits), ties broken by the type (a WeCom external_userid after every other) and the value.
    """
    pairs, first_record = [], 0
    for frame in records.values():
        frame = frame.reset_index(drop=True)
        for id_type in ID_TYPES:
            present = frame[frame[id_type].notna()]
            pairs.append(
                pd.DataFrame(
                    {
                        "record": present.index.to_numpy() + first_record,
                        "id_type": id_type,
                        "id_value": present[id_type].to_numpy(),
                        "seen_at": present["seen_at"].to_numpy(),
                    }
                )
            )
        first_record += len(frame)
    pairs = pd.concat(pairs, ignore_index=True)
    pairs["node"] = pairs.groupby(["id_type", "id_value"], sort=False).ngroup()
    nodes = pairs.groupby("node").agg(
        id_type=("id_type", "first"), id_value=("id_value", "first"), first_seen_at=("seen_at", "min")
    )

    edges = pairs[["record", "node"]].drop_duplicates()
    del pairs
    together = edges.merge(edges, on="record")
    together = together[together["node_x"] != together["node_y"]].drop_duplicates(["node_x", "node_y"])
    linked = together.groupby("node_x").size().reindex(nodes.index, fill_value=0)
    del together
    blocked = pd.Series(False, index=nodes.index)
    for entry in blocklist:
        blocked |= (nodes["id_type"] == entry["id_type"]) & (nodes["id_value"] == entry["id_value"])
    junk = (linked > max_links) | blocked

    # Records and identifiers are the two sides of one graph: a record joins its usable identifiers.
    usable = edges[~junk.reindex(edges["node"]).to_numpy()]
    graph = coo_matrix(
        (
            np.ones(len(usable), dtype=np.int8),
            (usable["node"].to_numpy(), len(nodes) + usable["record"].to_numpy()),
        ),
        shape=(len(nodes) + first_record, len(nodes) + first_record),
    )
    _, component = connected_components(graph, directed=False)
    identifiers = nodes[~junk].copy()
    identifiers["component"] = component[identifiers.index.to_numpy()]
    identifiers["wecom_only_if_alone"] = identifiers["id_type"] == "external_userid"
    earliest = identifiers.sort_values(
        ["component", "first_seen_at", "wecom_only_if_alone", "id_type", "id_value"]
    ).drop_duplicates("component")
    customer_key = pd.Series(
        [
            hashlib.md5(f"{t}:{v}".encode()).hexdigest()[:16]
            for t, v in zip(earliest["id_type"], earliest["id_value"], strict=True)
        ],
        index=earliest["component"].to_numpy(),
    )
    identifiers["customer_key"] = customer_key.reindex(identifiers["component"]).to_numpy()
    return identifiers[["customer_key", "id_type", "id_value", "first_seen_at"]].reset_index(drop=True)


def read_orders(con: duckdb.DuckDBPyConnection, cutoff: pd.Timestamp) -> pd.DataFrame:
    raw = con.sql(f"select {ORDER_COLUMNS} from raw.orders").df()
    for column in ("created_at", "updated_at", "paid_at", "refunded_at", "_loaded_at"):
        raw[column] = pd.to_datetime(raw[column], utc=True)
    return current_orders(raw, cutoff)


def cutoff_of(as_of: date, tz: str) -> pd.Timestamp:
    return pd.Timestamp(datetime(as_of.year, as_of.month, as_of.day, tzinfo=ZoneInfo(tz)))


def compute(
    con: duckdb.DuckDBPyConnection, orders: pd.DataFrame, identifiers: pd.DataFrame, as_of: date, tz: str
) -> pd.DataFrame:
    """The features of every customer with counted orders, from current order versions and identity."""
    cutoff = cutoff_of(as_of, tz)
    refund_at = orders["refunded_at"].fillna(orders["updated_at"]).fillna(orders["created_at"])
    refund_known = orders["status"].isin(["refunded", "partially_refunded"]) & (refund_at < cutoff)
    amount = orders["amount"].astype(float)
    refund = np.where(
        ~refund_known,
        0.0,
        np.where(
            orders["status"] == "refunded",
            amount,
            np.minimum(orders["refund_amount"].astype(float).fillna(0), amount),
        ),
    )
    orders = orders.assign(net=amount - refund)
    paid = orders["status"].isin(COUNTED_STATUSES) & (orders["paid_at"].isna() | (orders["paid_at"] < cutoff))
    fully_refunded = refund_known & ((orders["status"] == "refunded") | ((amount > 0) & (refund >= amount)))
    orders = orders[paid & ~fully_refunded].copy()
    orders["order_date"] = orders["created_at"].dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()
    as_of_day = pd.Timestamp(as_of)

    # Each order belongs to the customer of its usable identifiers (all in one customer).
    long = orders.melt(
        id_vars=["order_id"],
        value_vars=list(ID_TYPES),
        var_name="id_type",
        value_name="id_value",
    ).dropna(subset=["id_value"])
    owners = long.merge(identifiers, on=["id_type", "id_value"]).groupby("order_id")["customer_key"].min()
    orders = orders.merge(owners.rename("customer_key"), left_on="order_id", right_index=True)

    grouped = orders.groupby("customer_key")
    out = pd.DataFrame(
        {
            "order_count": grouped.size(),
            "purchase_days": grouped["order_date"].nunique(),
            "total_spend": grouped["net"].sum(),
            "first_order_date": grouped["order_date"].min(),
            "last_order_date": grouped["order_date"].max(),
        }
    )
    first = orders.sort_values(["customer_key", "created_at", "_order_key"]).groupby("customer_key").head(1)
    out["first_order_channel"] = first.set_index("customer_key")["channel"]
    out["first_order_amount"] = first.set_index("customer_key")["net"]
    window_start = as_of_day - pd.Timedelta(days=90)
    recent = orders[orders["order_date"] >= window_start].groupby("customer_key")
    out["orders_90d"] = recent.size().reindex(out.index, fill_value=0)
    out["spend_90d"] = recent["net"].sum().reindex(out.index, fill_value=0.0)
    out["recency_days"] = (as_of_day - out["last_order_date"]).dt.days
    out["tenure_days"] = (as_of_day - out["first_order_date"]).dt.days

    days = (
        orders[["customer_key", "order_date"]].drop_duplicates().sort_values(["customer_key", "order_date"])
    )
    days["interval"] = days.groupby("customer_key")["order_date"].diff().dt.days
    intervals = days.dropna(subset=["interval"]).groupby("customer_key")["interval"]
    out["avg_repurchase_interval_days"] = intervals.mean()
    out["median_repurchase_interval_days"] = intervals.median()
    out["last_repurchase_interval_days"] = intervals.last()
    last_month = (as_of - timedelta(days=1)).year * 12 + (as_of - timedelta(days=1)).month
    months = last_month - (out["first_order_date"].dt.year * 12 + out["first_order_date"].dt.month) + 1
    out["avg_monthly_spend"] = out["total_spend"] / months
    local_time = orders["created_at"].dt.tz_convert(tz)
    orders["hour_band"] = pd.cut(
        local_time.dt.hour,
        bins=[0, 6, 12, 18, 24],
        right=False,
        labels=["night", "morning", "afternoon", "evening"],
    ).astype(str)
    orders["weekday"] = local_time.dt.dayofweek + 1  # ISO: Monday is 1
    for column, target in (("hour_band", "preferred_hour_band"), ("weekday", "preferred_weekday")):
        habit = orders.groupby(["customer_key", column]).size().rename("orders").reset_index()
        habit = habit.sort_values(["customer_key", "orders", column], ascending=[True, False, True])
        out[target] = habit.groupby("customer_key").head(1).set_index("customer_key")[column]
    gifts = orders["is_gift"].fillna(False).astype(bool).groupby(orders["customer_key"]).sum()
    out["gift_order_share"] = gifts / out["order_count"]

    items = con.sql(
        "select order_id, sku, quantity, price from (select *, row_number() over (partition by order_id, sku "
        "order by _loaded_at desc, _file desc, _line desc) as r from raw.order_items) where r = 1"
    ).df()
    products = con.sql(
        "select sku, category, price_line, list_price from (select *, row_number() over (partition by sku "
        "order by _loaded_at desc, _file desc, _line desc) as r from raw.products) where r = 1"
    ).df()
    lines = (
        orders[["order_id", "customer_key"]].merge(items, on="order_id").merge(products, on="sku", how="left")
    )
    lines["quantity"] = lines["quantity"].fillna(1)
    lines["line_amount"] = (
        lines["price"].astype(float).fillna(lines["list_price"].astype(float)).fillna(0) * lines["quantity"]
    )
    for column, target in (("category", "favorite_category"), ("price_line", "favorite_price_line")):
        spend = (
            lines.dropna(subset=[column]).groupby(["customer_key", column])["line_amount"].sum().reset_index()
        )
        spend = spend.sort_values(["customer_key", "line_amount", column], ascending=[True, False, True])
        out[target] = spend.groupby("customer_key").head(1).set_index("customer_key")[column]
    out.index.name = "customer_key"
    return out.reset_index()


def reference(
    con: duckdb.DuckDBPyConnection, as_of: date, tz: str, max_links: int, blocklist: list[dict]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """Identity and features from the raw tables: (identifiers, features, seconds per part)."""
    seconds, started = {}, time.perf_counter()
    cutoff = cutoff_of(as_of, tz)
    orders = read_orders(con, cutoff)
    seconds["orders"] = time.perf_counter() - started
    identifiers = stitch(identity_records(con, orders, cutoff), max_links, blocklist)
    seconds["identity"] = time.perf_counter() - started - seconds["orders"]
    features = compute(con, orders, identifiers, as_of, tz)
    seconds["features"] = time.perf_counter() - started - seconds["orders"] - seconds["identity"]
    return identifiers, features, {part: round(value, 2) for part, value in seconds.items()}
