"""The SQL features against the independent pandas reference, column by column, on generated data."""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest

from tests.reference_features import compute
from transforms.build import build
from transforms.generate import generate
from transforms.ingest import ingest_landing
from transforms.warehouse import Warehouse

AS_OF = date(2026, 6, 20)


@pytest.mark.slow
def test_features_match_pandas_reference(make_settings, tmp_path):
    settings = make_settings({"ingest": {"max_quarantine_share": 0.5}})
    generate(tmp_path / "landing", orders=100_000, days=90, last_day=date(2026, 6, 30), seed=11)
    ingest_landing(settings, tmp_path / "landing")
    build(settings, AS_OF, run_checks=False)
    warehouse = Warehouse(settings)
    published = duckdb.connect(str(warehouse.published_path), read_only=True)
    sql_features = published.sql("select * from customer_features where order_count > 0").df()
    identifiers = published.sql("select customer_key, id_type, id_value from customer_identifiers").df()
    published.close()
    with warehouse.work() as con:
        reference = compute(con, identifiers, AS_OF, settings.timezone)

    assert len(sql_features) > 5_000
    merged = sql_features.merge(
        reference, on="customer_key", how="outer", suffixes=("_sql", "_ref"), indicator=True
    )
    assert (merged["_merge"] == "both").all(), merged["_merge"].value_counts()
    exact = [
        "order_count",
        "purchase_days",
        "orders_90d",
        "recency_days",
        "tenure_days",
        "first_order_channel",
        "favorite_category",
        "favorite_price_line",
        "preferred_hour_band",
        "preferred_weekday",
    ]
    for column in exact:
        left = merged[f"{column}_sql"].astype(object).where(merged[f"{column}_sql"].notna(), None)
        right = merged[f"{column}_ref"].astype(object).where(merged[f"{column}_ref"].notna(), None)
        mismatched = (left.astype(str) != right.astype(str)).sum()
        assert mismatched == 0, f"{column}: {mismatched} customers differ"
    for column in ("first_order_date", "last_order_date"):
        assert (pd.to_datetime(merged[f"{column}_sql"]) == pd.to_datetime(merged[f"{column}_ref"])).all(), (
            column
        )
    numeric = [
        "total_spend",
        "spend_90d",
        "first_order_amount",
        "avg_repurchase_interval_days",
        "median_repurchase_interval_days",
        "last_repurchase_interval_days",
        "avg_monthly_spend",
        "gift_order_share",
    ]
    for column in numeric:
        left = merged[f"{column}_sql"].astype(float).to_numpy()
        right = merged[f"{column}_ref"].astype(float).to_numpy()
        assert np.allclose(left, right, rtol=1e-9, atol=0.005, equal_nan=True), column
