"""`pack export NAME --reproduce EXPORT_ID` writes the earlier file byte for byte, whatever was built,
loaded or configured since; it refuses, saying what is missing, when it cannot."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.conftest import cli, load_feature_fixture, write_csv
from transforms.build import build
from transforms.errors import SegflowError
from transforms.ingest import ingest
from transforms.packs import export, load_packs
from transforms.reproduce import reproduce

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
PACKS = {
    "packs": {
        "buyers": {"where": "order_count >= 1", "contact_fields": ["unionid", "phone"], "holdout_share": 0.3},
    }
}


def sha(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def shop(request):
    make = request.getfixturevalue("make_settings" if request.param == "duckdb" else "make_pg_settings")
    settings = make({"identity": {"max_links_per_identifier": 3}})
    load_feature_fixture(settings)
    build(settings, date(2026, 3, 10), run_checks=False)
    settings.config_file("packs.yml").write_text(yaml.safe_dump(PACKS), encoding="utf-8")
    return settings


def test_an_export_is_reproduced_byte_for_byte_after_new_data_and_config(shop, tmp_path):
    buyers = load_packs(shop)["buyers"]
    first = export(shop, buyers, tmp_path / "out", exported_at=T0)
    hashed = export(
        shop, buyers, tmp_path / "out", "parquet", hashed=True, exported_at=T0 + timedelta(hours=1)
    )
    sheet = export(shop, buyers, tmp_path / "out", "xlsx", exported_at=T0 + timedelta(hours=2))
    assert first.members > 0
    # The next day: Dan orders, Alice gets an e-mail, the pack changes; a delta is exported.
    more = write_csv(
        tmp_path / "orders_next.csv",
        "order_id,created_at,status,amount,phone,unionid,email",
        "D1,2026-03-10T10:00:00+08:00,paid,50,13900000004,oD,",
        "A9,2026-03-10T11:00:00+08:00,paid,60,13900000001,,alice@x.com",
    )
    ingest(shop, [more], "orders")
    build(shop, date(2026, 3, 11), run_checks=False)
    delta = export(shop, buyers, tmp_path / "out", delta=True, exported_at=T0 + timedelta(days=1))
    assert (delta.joined, delta.left) == (1, 0)  # Dan joined
    shop.config_file("packs.yml").write_text(
        yaml.safe_dump({"packs": {"buyers": {"where": "total_spend > 100000", "contact_fields": ["email"]}}}),
        encoding="utf-8",
    )
    for original in (first, hashed, sheet, delta):
        again = reproduce(shop, "buyers", original.export_id, tmp_path / "again")
        assert again.sha256 == original.sha256 == sha(original.file) == sha(again.file), original.export_id
        assert Path(again.file).name.startswith(f"{original.export_id}.reproduced")


def test_what_cannot_be_reproduced_is_refused_with_what_is_missing(make_settings, tmp_path):
    settings = make_settings({"identity": {"max_links_per_identifier": 3}, "history": {"keep_daily_days": 0}})
    load_feature_fixture(settings)
    build(settings, date(2026, 3, 10), run_checks=False)
    settings.config_file("packs.yml").write_text(yaml.safe_dump(PACKS), encoding="utf-8")
    first = export(settings, load_packs(settings)["buyers"], tmp_path, exported_at=T0)
    with pytest.raises(SegflowError, match="no export 'buyers-2026-03-10-9' in audience_pack_exports"):
        reproduce(settings, "buyers", "buyers-2026-03-10-9")
    with pytest.raises(SegflowError, match=f"export {first.export_id} is of pack buyers, not churned"):
        reproduce(settings, "churned", first.export_id)
    for day in (11, 12, 13):  # keep_daily_days 0 keeps the newest date and the one before it
        build(settings, date(2026, 3, day), run_checks=False)
    refused = cli(
        settings, "pack", "export", "buyers", "--reproduce", first.export_id, "--out", str(tmp_path / "x")
    )
    assert refused.returncode == 1
    assert "customer_identifiers_history no longer holds 2026-03-10" in refused.stderr
    assert not list((tmp_path / "x").glob("*.csv"))


def test_reproduce_on_the_command_line(make_settings, tmp_path):
    settings = make_settings({"identity": {"max_links_per_identifier": 3}})
    load_feature_fixture(settings)
    build(settings, date(2026, 3, 10), run_checks=False)
    settings.config_file("packs.yml").write_text(yaml.safe_dump(PACKS), encoding="utf-8")
    first = export(settings, load_packs(settings)["buyers"], tmp_path, exported_at=T0)
    done = cli(
        settings, "pack", "export", "buyers", "--reproduce", first.export_id, "--out", str(tmp_path / "again")
    )
    assert done.returncode == 0, done.stderr
    assert f"reproduced {first.export_id} byte for byte (SHA-256 {first.sha256})" in done.stdout
    mixed = cli(settings, "pack", "export", "buyers", "--reproduce", first.export_id, "--hash")
    assert mixed.returncode == 1 and "takes the pack's name and nothing else" in mixed.stderr
