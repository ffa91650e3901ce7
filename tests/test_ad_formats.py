"""Upload formats of ad platforms and WeCom on the features fixture: Alice (13900000001) and Bob
(13900000002) are the buyers reachable by phone (J1-J4 only carry the junk shop phone)."""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from datetime import UTC, date, datetime

import pytest
import yaml

from tests.conftest import published_rows
from transforms.errors import SegflowError
from transforms.files_out import ocean_engine_lines, wecom_lines
from transforms.ingest import ingest
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


ALICE_AND_BOB = {hashlib.sha256(phone.encode()).hexdigest() for phone in ("13900000001", "13900000002")}


def export_buyers_zip(settings, tmp_path, file_format: str, member: str) -> list[str]:
    """The buyers pack by phone exported in an ad platform's format (Alice and Bob, the four junk
    phone buyers suppressed): the lines of the one file in the zip, after checking the export
    reproduces byte for byte."""
    buyers = packs(settings, buyers=["phone"])["buyers"]
    done = export(settings, buyers, tmp_path, file_format, exported_at=T0)
    assert done.file.endswith(f".{file_format}.zip") and done.members == 2 and done.suppressed == 4
    with zipfile.ZipFile(done.file) as archive:
        assert archive.namelist() == [member]
        lines = archive.read(member).decode("ascii").splitlines()
    assert reproduce(settings, "buyers", done.export_id, tmp_path / "again").sha256 == done.sha256
    return lines


def test_tencent_ads_is_a_zip_of_sha256_phones_one_per_line(features_built, tmp_path):
    lines = export_buyers_zip(features_built, tmp_path, "tencent_ads", "SHA256_MOBILE_PHONE.txt")
    assert sorted(lines) == sorted(ALICE_AND_BOB) and len(lines) == 2


@pytest.mark.parametrize("file_format", ["tencent_ads", "ocean_engine"])
def test_ad_platform_formats_refuse_what_they_cannot_upload(features_built, tmp_path, file_format):
    defined = packs(features_built, by_unionid=["unionid"], buyers=["phone"])
    with pytest.raises(SegflowError, match="pack by_unionid needs phone in contact_fields"):
        export(features_built, defined["by_unionid"], tmp_path, file_format)
    with pytest.raises(SegflowError, match="--delta is not for this format"):
        export(features_built, defined["buyers"], tmp_path, file_format, delta=True)


def dmp_data_class():
    """Ocean Engine's DmpData message, built from its published .proto (toutiao.dmp, proto2) with
    protobuf's own runtime: an independent reader of what segflow writes by hand."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    proto = descriptor_pb2.FieldDescriptorProto
    source = descriptor_pb2.FileDescriptorProto(
        name="toutiao_dmp.proto", package="toutiao.dmp", syntax="proto2"
    )
    item = source.message_type.add(name="IdItem")
    item.field.add(name="timestamp", number=1, label=proto.LABEL_OPTIONAL, type=proto.TYPE_UINT32)
    item.field.add(
        name="dataType",
        number=2,
        label=proto.LABEL_REQUIRED,
        type=proto.TYPE_ENUM,
        type_name=".toutiao.dmp.IdItem.DataType",
    )
    item.field.add(name="id", number=3, label=proto.LABEL_REQUIRED, type=proto.TYPE_STRING)
    item.field.add(name="tags", number=4, label=proto.LABEL_REPEATED, type=proto.TYPE_STRING)
    data_type = item.enum_type.add(name="DataType")
    for name, number in [
        ("IMEI", 0),
        ("IDFA", 1),
        ("UID", 2),
        ("IMEI_MD5", 4),
        ("IDFA_MD5", 5),
        ("MOBILE_HASH_SHA256", 6),
        ("OAID", 7),
        ("OAID_MD5", 8),
    ]:
        data_type.value.add(name=name, number=number)
    data = source.message_type.add(name="DmpData")
    data.field.add(
        name="idList",
        number=1,
        label=proto.LABEL_REPEATED,
        type=proto.TYPE_MESSAGE,
        type_name=".toutiao.dmp.IdItem",
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(source)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("toutiao.dmp.DmpData"))


def decode_dmp_lines(lines):
    DmpData = dmp_data_class()
    decoded = []
    for line in lines:
        message = DmpData()
        message.ParseFromString(base64.b64decode(line, validate=True))
        assert message.IsInitialized()  # both required fields present
        decoded.append([(item.dataType, item.id, item.HasField("timestamp")) for item in message.idList])
    return decoded


def test_ocean_engine_is_a_zip_of_base64_dmp_data_lines(features_built, tmp_path):
    lines = export_buyers_zip(features_built, tmp_path, "ocean_engine", "MOBILE_HASH_SHA256.txt")
    # Alice and Bob on one line, as MOBILE_HASH_SHA256 (6), no timestamp: the platform's upload time.
    [items] = decode_dmp_lines(lines)
    assert sorted(items) == sorted((6, value, False) for value in ALICE_AND_BOB)


def test_ocean_engine_puts_at_most_ten_thousand_ids_on_a_line():
    hashes = [hashlib.sha256(f"139{number:08d}".encode()).hexdigest() for number in range(10_001)]
    decoded = decode_dmp_lines(ocean_engine_lines(hashes))
    assert [len(items) for items in decoded] == [10_000, 1]
    assert [value for items in decoded for _, value, _ in items] == hashes


def test_wecom_is_one_group_message_body_per_line(make_settings, tmp_path):
    """WeCom gave Alice (unionid oA) and Bob (oB) external ids when staff added them; Carol (a WeCom
    id only) and Dan (first seen as a WeCom add with his unionid) have no order."""
    from tests.conftest import load_feature_fixture
    from transforms.build import build

    settings = make_settings({"identity": {"max_links_per_identifier": 3}})
    load_feature_fixture(settings)
    wecom_adds = tmp_path / "wecom_contacts.csv"
    wecom_adds.write_text(
        "unionid,external_userid,source_channel,signup_at\n"
        "oA,wmAlice000000000000000000001,wecom,2026-01-02T10:00:00+08:00\n"
        "oB,wmBob00000000000000000000002,wecom,2026-01-21T10:00:00+08:00\n"
        ",wmCarol000000000000000000003,wecom,2026-02-02T10:00:00+08:00\n"
        "oD,wmDan00000000000000000000004,wecom,2026-02-03T10:00:00+08:00\n",
        encoding="utf-8",
    )
    ingest(settings, [wecom_adds], "contacts")
    build(settings, date(2026, 3, 10), run_checks=False)
    # Dan's first record is a WeCom add with his unionid: the unionid names him, as it would have
    # without the WeCom id; Carol has nothing else.
    keys = dict(published_rows(settings, "select id_value, customer_key from customer_identifiers"))
    assert keys["wmDan00000000000000000000004"] == keys["oD"] == hashlib.md5(b"unionid:oD").hexdigest()[:16]
    assert (
        keys["wmCarol000000000000000000003"]
        == hashlib.md5(b"external_userid:wmCarol000000000000000000003").hexdigest()[:16]
    )
    buyers = packs(settings, buyers=["external_userid"])["buyers"]
    done = export(settings, buyers, tmp_path / "out", "wecom", exported_at=T0)
    assert done.file.endswith(".wecom.jsonl") and done.members == 2 and done.suppressed == 4
    lines = open(done.file, encoding="utf-8").read().splitlines()
    [message] = [json.loads(line) for line in lines]  # one message, in customer_key order
    assert message["chat_type"] == "single" and sorted(message["external_userid"]) == [
        "wmAlice000000000000000000001",
        "wmBob00000000000000000000002",
    ]
    again = reproduce(settings, "buyers", done.export_id, tmp_path / "again")
    assert again.sha256 == done.sha256
    with pytest.raises(SegflowError, match="pack buyers needs external_userid in contact_fields"):
        export(settings, buyers, tmp_path / "out", "wecom", hashed=True)
    by_phone = packs(settings, by_phone=["phone"])["by_phone"]
    with pytest.raises(SegflowError, match="pack by_phone needs external_userid in contact_fields"):
        export(settings, by_phone, tmp_path / "out", "wecom")


def test_wecom_puts_at_most_ten_thousand_customers_in_a_message():
    ids = [f"wm{number:026d}" for number in range(10_001)]
    messages = [json.loads(line) for line in wecom_lines(ids)]
    assert [len(message["external_userid"]) for message in messages] == [10_000, 1]
    assert [value for message in messages for value in message["external_userid"]] == ids
