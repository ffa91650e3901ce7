"""An independent pandas computation of the core customer features, to check the SQL against.

Written separately from sql/: it reads the raw tables and the published identifier map, and
applies the contract's rules (versions, cut-off, refunds, purchase days) in plain pandas.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import pandas as pd

COUNTED_STATUSES = {"paid", "shipped", "completed", "refunded", "partially_refunded"}


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


def compute(con: duckdb.DuckDBPyConnection, identifiers: pd.DataFrame, as_of: date, tz: str) -> pd.DataFrame:
    cutoff = pd.Timestamp(datetime(as_of.year, as_of.month, as_of.day, tzinfo=ZoneInfo(tz)))
    raw = con.sql("select * from raw.orders").df()
    for column in ("created_at", "updated_at", "paid_at", "refunded_at", "_loaded_at"):
        raw[column] = pd.to_datetime(raw[column], utc=True)
    orders = current_orders(raw, cutoff)

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
    orders["net"] = amount - refund
    paid = orders["status"].isin(COUNTED_STATUSES) & (orders["paid_at"].isna() | (orders["paid_at"] < cutoff))
    orders = orders[paid & (orders["net"] > 0)].copy()
    orders["order_date"] = orders["created_at"].dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()
    as_of_day = pd.Timestamp(as_of)

    # Each order belongs to the customer of any of its usable identifiers.
    long = orders.melt(
        id_vars=["order_id"],
        value_vars=["phone", "unionid", "email", "member_id"],
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
