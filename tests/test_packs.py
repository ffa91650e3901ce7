"""Audience packs: hand-computed members, suppression, holdout, manifest, delta, webhook, lift."""

from __future__ import annotations

import hashlib
import json
from datetime import date

import pyarrow.csv as pacsv
import pytest

from tests.conftest import published_rows
from transforms.build import build
from transforms.errors import SegflowError
from transforms.generate import generate
from transforms.ingest import ingest_landing
from transforms.lift import lift
from transforms.packs import export, preview, resolve_pack


@pytest.fixture
def small(features_built):
    return features_built


def keys_by_identifier(settings) -> dict[str, str]:
    return {
        value: key
        for key, value in published_rows(settings, "select customer_key, id_value from customer_identifiers")
    }


def test_members_match_a_hand_computed_set(small, tmp_path):
    ids = keys_by_identifier(small)
    pack = resolve_pack(small, "buyers", "order_count >= 1")
    result = export(small, pack, tmp_path)
    exported = pacsv.read_csv(result.file).column("customer_key").to_pylist()
    # Alice, Bob and the four walk-in buyers ordered; Carol (no orders) does not match.
    expected = {ids["oA"], ids["oB"], ids["oJ1"], ids["oJ2"], ids["oJ3"], ids["oJ4"]}
    assert set(exported) == expected and len(exported) == 6


def test_opted_out_and_unreachable_contacts_are_suppressed(small, tmp_path):
    ids = keys_by_identifier(small)
    everyone = resolve_pack(small, "everyone", "order_count >= 0")
    summary = preview(small, everyone)
    assert summary["suppressed_by_reason"] == {"opted_out": 1}  # Carol
    result = export(small, everyone, tmp_path)
    assert ids["13900000003"] not in pacsv.read_csv(result.file).column("customer_key").to_pylist()
    by_phone = resolve_pack(small, "sms", "order_count >= 1")
    by_phone = by_phone.__class__(**{**by_phone.__dict__, "contact_fields": ("phone",)})
    summary = preview(small, by_phone)
    # J1-J4 have no usable phone (only the junk shop phone); Alice and Bob do.
    assert summary["suppressed_by_reason"] == {"no_contact_field": 4}
    consenting = by_phone.__class__(**{**by_phone.__dict__, "require_consent": True})
    summary = preview(small, consenting)
    # Requiring consent: Bob and J1-J4 never said yes or no, so only Alice remains.
    assert summary["suppressed_by_reason"] == {"no_consent": 5}
    assert summary["members"] == 1
    assert [row["phone"] for row in summary["sample"]] == ["139****0001"]


def test_manifest_checksum_and_hashed_identifiers(small, tmp_path):
    pack = resolve_pack(small, "alice", "purchase_days = 5")
    result = export(small, pack, tmp_path, hashed=True)
    manifest = json.loads(open(result.manifest, encoding="utf-8").read())
    assert manifest["sha256"] == hashlib.sha256(open(result.file, "rb").read()).hexdigest()
    assert manifest["members"] == 1 and manifest["definition"]["where"] == "purchase_days = 5"
    row = pacsv.read_csv(result.file).to_pylist()[0]
    assert row["phone"] == hashlib.sha256(b"13900000001").hexdigest()
    assert row["unionid"] == hashlib.sha256(b"oA").hexdigest()
    logged = published_rows(small, "select export_id, members, sha256 from audience_pack_exports")
    assert logged == [(result.export_id, 1, result.sha256)]
    # Platforms that match on E.164 get the +86 form hashed.
    e164 = pack.__class__(**{**pack.__dict__, "hashed_phone_format": "e164"})
    row = pacsv.read_csv(export(small, e164, tmp_path, hashed=True).file).to_pylist()[0]
    assert row["phone"] == hashlib.sha256(b"+8613900000001").hexdigest()
    assert row["unionid"] == hashlib.sha256(b"oA").hexdigest()


def test_xlsx_and_parquet_exports_hold_the_same_members(small, tmp_path):
    import pyarrow.parquet as pq
    from openpyxl import load_workbook

    pack = resolve_pack(small, "buyers", "order_count >= 1")
    as_xlsx = export(small, pack, tmp_path, file_format="xlsx")
    as_parquet = export(small, pack, tmp_path, file_format="parquet")
    sheet = load_workbook(as_xlsx.file, read_only=True)["members"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("customer_key", "phone", "unionid", "email", "member_id")
    assert sorted(r[0] for r in rows[1:]) == sorted(
        pq.read_table(as_parquet.file).column("customer_key").to_pylist()
    )


@pytest.mark.parametrize(
    "where",
    ["order_count > 0; drop table customer_features", "phone is not null", "exists(select 1)", "has_tag(1)"],
)
def test_invalid_pack_expressions_are_refused(small, where):
    with pytest.raises(SegflowError, match="expression"):
        resolve_pack(small, "bad", where)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    from tests.conftest import write_config
    from transforms.settings import Settings

    folder = tmp_path_factory.mktemp("packs")
    settings = Settings.load(write_config(folder / "config"), f"duckdb:///{folder / 'wh' / 'segflow.duckdb'}")
    generate(folder / "landing", orders=20_000, last_day=date(2026, 6, 30))
    ingest_landing(settings, folder / "landing")
    build(settings, date(2026, 6, 1), run_checks=False)
    return settings


def test_holdout_is_stable_and_near_its_share_and_delta_follows_new_orders(generated, tmp_path):
    pack = resolve_pack(generated, "churned_winback", None)
    first = export(generated, pack, tmp_path)
    second = export(generated, pack, tmp_path)
    holdouts = published_rows(
        generated,
        "select export_id, list(customer_key order by customer_key) from audience_pack_members "
        "where in_holdout group by export_id order by export_id",
    )
    assert holdouts[0][1] == holdouts[1][1]
    assert (second.joined, second.left) == (0, 0)
    share = first.holdout / (first.holdout + first.members)
    assert 0.07 < share < 0.13, share

    build(generated, date(2026, 7, 1), run_checks=False)  # a month of new orders
    third = export(generated, pack, tmp_path, delta=True)
    assert third.joined > 0 and third.left > 0
    assert third.members == second.members + third.joined - third.left
    changes = pacsv.read_csv(third.file).column("change").to_pylist()
    assert changes.count("joined") == third.joined and changes.count("left") == third.left

    measured = lift(generated, "churned_winback", first.export_id, 30)
    assert measured["contacted"]["customers"] == first.members
    assert measured["holdout"]["customers"] == first.holdout
    low, high = measured["spend_per_customer_lift_95ci"]
    assert low <= measured["spend_per_customer_lift"] <= high
    longer = lift(generated, "churned_winback", first.export_id, 30, pre_days=180)
    assert longer["window"].endswith("(pre-period: the 180 days before)")
    assert longer["spend_per_customer_lift"] == measured["spend_per_customer_lift"]  # the outcome is the same
    assert longer["holdout"]["pre_period_spend_per_customer"] > 0  # churned for 30 days, not for 180
    low, high = longer["cuped_spend_per_customer_lift_95ci"]
    assert low <= longer["cuped_spend_per_customer_lift"] <= high
