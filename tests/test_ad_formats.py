"""Upload formats of ad platforms on the features fixture: Alice (13900000001) and Bob (13900000002)
are the buyers reachable by phone (J1-J4 only carry the junk shop phone)."""

from __future__ import annotations

import hashlib
import zipfile
from datetime import UTC, datetime

import pytest
import yaml

from transforms.errors import SegflowError
from transforms.packs import export, load_packs
from transforms.reproduce import reproduce

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def packs(settings, **contact_fields):
    document = {
        "packs": {
            name: {"where": "order_count >= 1", "contact_fields": fields, "holdout_share": 0}
            for name, fields in contact_fields.items()
        }
    }
    settings.config_file("packs.yml").write_text(yaml.safe_dump(document), encoding="utf-8")
    return load_packs(settings)


def test_tencent_ads_is_a_zip_of_sha256_phones_one_per_line(features_built, tmp_path):
    buyers = packs(features_built, buyers=["phone"])["buyers"]
    done = export(features_built, buyers, tmp_path, "tencent_ads", exported_at=T0)
    assert done.file.endswith(".tencent_ads.zip") and done.members == 2 and done.suppressed == 4
    with zipfile.ZipFile(done.file) as archive:
        assert archive.namelist() == ["SHA256_MOBILE_PHONE.txt"]
        lines = archive.read("SHA256_MOBILE_PHONE.txt").decode("ascii").splitlines()
    expected = {hashlib.sha256(phone.encode()).hexdigest() for phone in ("13900000001", "13900000002")}
    assert sorted(lines) == sorted(expected) and len(lines) == 2
    again = reproduce(features_built, "buyers", done.export_id, tmp_path / "again")
    assert again.sha256 == done.sha256


def test_tencent_ads_refuses_what_it_cannot_upload(features_built, tmp_path):
    defined = packs(features_built, by_unionid=["unionid"], buyers=["phone"])
    with pytest.raises(SegflowError, match="pack by_unionid needs phone in contact_fields"):
        export(features_built, defined["by_unionid"], tmp_path, "tencent_ads")
    with pytest.raises(SegflowError, match="--delta is not for this format"):
        export(features_built, defined["buyers"], tmp_path, "tencent_ads", delta=True)
