"""Identity and the SQL features against the independent pandas reference, column by column, on generated data."""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest

from tests.reference_features import reference
from transforms.build import build
from transforms.engines import open_warehouse
from transforms.generate import generate
from transforms.ingest import ingest_landing

AS_OF = date(2026, 6, 20)


@pytest.mark.slow
def test_features_match_pandas_reference(make_settings, tmp_path):
    settings = make_settings({"ingest": {"max_quarantine_share": 0.5}})
    generate(tmp_path / "landing", orders=100_000, days=90, last_day=date(2026, 6, 30), seed=11)
    ingest_landing(settings, tmp_path / "landing")
    build(settings, AS_OF, run_checks=False)
    warehouse = open_warehouse(settings)
    published = duckdb.connect(str(warehouse.published_path), read_only=True)
    sql_features = published.sql("select * from customer_features where order_count > 0").df()
    sql_identifiers = published.sql(
        "select customer_key, id_type, id_value, first_seen_at from customer_identifiers"
    ).df()
    sql_junk = published.sql("select id_type, id_value from identity_junk_identifiers").df()
    published.close()
    with warehouse.work() as con:
        identifiers, reference_features, _ = reference(
            con.con,  # the reference reads raw tables with DuckDB's own API
            AS_OF,
            settings.timezone,
            int(settings.get("identity.max_links_per_identifier")),
            settings.get("identity.blocklist") or [],
        )

    # Identity: every usable identifier in the same customer, under the same key. The generated
    # data has a shared shop phone (junk) and people whose contacts and orders merge histories.
    assert not sql_junk.empty
    assert set(sql_junk["id_value"]).isdisjoint(identifiers["id_value"])
    assert sql_identifiers["customer_key"].nunique() < len(sql_identifiers)
    identity = sql_identifiers.merge(
        identifiers, on=["id_type", "id_value"], how="outer", suffixes=("_sql", "_ref"), indicator=True
    )
    assert (identity["_merge"] == "both").all(), identity["_merge"].value_counts()
    assert (identity["customer_key_sql"] == identity["customer_key_ref"]).all(), identity[
        identity["customer_key_sql"] != identity["customer_key_ref"]
    ].head()
    assert (
        pd.to_datetime(identity["first_seen_at_sql"], utc=True)
        == pd.to_datetime(identity["first_seen_at_ref"], utc=True)
    ).all()

    assert len(sql_features) > 5_000
    merged = sql_features.merge(
        reference_features, on="customer_key", how="outer", suffixes=("_sql", "_ref"), indicator=True
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
