"""`segflow whois` and do-not-link rules on the family-phone fixture (tests/fixtures/identity/README.md),
on every served engine."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from decimal import Decimal

import duckdb
import pytest
import yaml

from tests.conftest import FIXTURES, cli, published_rows
from transforms.build import build
from transforms.errors import SegflowError
from transforms.identifiers import normalise
from transforms.identity_rules import do_not_link_rules
from transforms.ingest import ingest
from transforms.ingest.columns import parse_expression
from transforms.mapping import Mapping
from transforms.schema import Column
from transforms.whois import NotFound, whois

BEFORE, AFTER = date(2026, 3, 10), date(2026, 3, 11)
PHONE = "13911110000"
PAIR_RULE = {
    "pair": [{"unionid": "oMum"}, {"unionid": "oSon"}],
    "reason": "mother and son share the family phone",
}


def key_of(id_type: str, id_value: str) -> str:
    return hashlib.md5(f"{id_type}:{id_value}".encode()).hexdigest()[:16]


FAMILY, MUM, SON = key_of("phone", PHONE), key_of("unionid", "oMum"), key_of("unionid", "oSon")


def with_rules(settings, *rules: dict):
    """The same warehouse with identity.do_not_link set to `rules` in the brand's settings.yml."""
    path = settings.config_dir / "settings.yml"
    values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    values.setdefault("identity", {})["do_not_link"] = list(rules)
    path.write_text(yaml.safe_dump(values, allow_unicode=True), encoding="utf-8")
    return type(settings).load(settings.config_dir, settings.warehouse_url)


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def family(request):
    make = request.getfixturevalue("make_settings" if request.param == "duckdb" else "make_pg_settings")
    settings = make()
    ingest(settings, [FIXTURES / "identity" / "orders.csv"], "orders")
    build(settings, BEFORE, run_checks=False)
    return settings


def customers(settings) -> dict[str, set]:
    grouped: dict[str, set] = {}
    for key, id_type, id_value in published_rows(
        settings, "select customer_key, id_type, id_value from customer_identifiers"
    ):
        grouped.setdefault(key, set()).add((id_type, id_value))
    return grouped


def path_of(answer: dict, id_type: str) -> list[tuple]:
    """Each hop of the path to the first identifier of that type: (from, to, the record's id)."""
    ident = next(i for i in answer["identifiers"] if i["id_type"] == id_type and not i["asked"])
    return [(h["from"]["id_value"], h["to"]["id_value"], h["record"]["record_id"]) for h in ident["path"]]


def test_a_family_phone_joins_two_people_until_a_rule_splits_them(family):
    # Before the rule: one customer, whichever identifier is asked about.
    assert customers(family) == {
        FAMILY: {("phone", PHONE), ("unionid", "oMum"), ("unionid", "oSon"), ("member_id", "M0001")}
    }
    for asked in (PHONE, "+86 139 1111 0000", "oMum", "oSon", "M0001", FAMILY):
        assert whois(family, asked)["customer_key"] == FAMILY, asked
    son = whois(family, "oSon", reveal=True)
    assert son["asked"] == {"id_type": "unionid", "id_value": "oSon"} and son["records"] == 3
    assert path_of(son, "unionid") == [("oSon", PHONE, "S1"), (PHONE, "oMum", "M1")]
    assert path_of(son, "member_id") == [
        ("oSon", PHONE, "S1"),
        (PHONE, "oMum", "M1"),
        ("oMum", "M0001", "M2"),
    ]
    hop = next(i for i in son["identifiers"] if i["id_type"] == "phone")["path"][0]["record"]
    assert (hop["kind"], hop["file"].endswith("identity/orders.csv"), hop["line"]) == ("order", True, 3)
    assert son["ignored_identifiers"] == [
        {
            "id_type": "email",
            "id_value": "test@test.com",
            "reason": "identity.blocklist",
            "records_of_this_customer": 1,
        }
    ]
    assert son["cut_links"] == [] and son["changes"] == []
    masked = whois(family, "oSon")
    assert {i["id_value"] for i in masked["identifiers"]} == {"oSon", "139****0000", "o****", "M****"}

    # The rule, then the next day's build: two customers, the family's key stays with the phone.
    ruled = with_rules(family, PAIR_RULE)
    build(ruled, AFTER, run_checks=False)
    assert customers(ruled) == {
        FAMILY: {("phone", PHONE), ("unionid", "oMum"), ("member_id", "M0001")},
        SON: {("unionid", "oSon")},
    }
    assert sorted(
        published_rows(ruled, "select customer_key, order_count, total_spend from customer_features")
    ) == sorted([(FAMILY, 2, Decimal("180.00")), (SON, 1, Decimal("50.00"))])
    assert published_rows(
        ruled, "select as_of_date, merged_key, surviving_key, identifiers, change from identity_merges"
    ) == [(AFTER, FAMILY, SON, 1, "split")]

    son = whois(ruled, "oSon")
    assert son["customer_key"] == SON and son["as_of"] == AFTER and son["records"] == 1
    (cut,) = son["cut_links"]
    assert (cut["record"]["record_id"], cut["id_type"], cut["id_value"], cut["customer_key"]) == (
        "S1",
        "phone",
        "139****0000",
        FAMILY,
    )
    assert cut["rules"] == [{"rule": 1, "reason": "mother and son share the family phone"}]
    assert [(c["as_of_date"], c["change"], c["merged_key"], c["surviving_key"]) for c in son["changes"]] == [
        (AFTER, "split", FAMILY, SON)
    ]
    phone = whois(ruled, PHONE)
    assert phone["customer_key"] == FAMILY and [c["customer_key"] for c in phone["cut_links"]] == [SON]
    # Point in time: as of the day before, the son was still part of the family customer.
    assert whois(ruled, "oSon", as_of=BEFORE)["customer_key"] == FAMILY


def test_an_identifier_that_must_never_link_is_ignored_with_its_rule(make_settings):
    settings = make_settings()
    ingest(settings, [FIXTURES / "identity" / "orders.csv"], "orders")
    ruled = with_rules(
        settings,
        {"identifier": {"phone": "+86 13911110000"}, "reason": "the family phone"},
        {"pair": [{"unionid": "oMum"}, {"phone": "13700000000"}], "reason": "a number never loaded"},
    )
    built = cli(ruled, "build", "--as-of", BEFORE.isoformat())
    assert built.returncode == 0, built.stderr
    assert customers(ruled) == {
        MUM: {("unionid", "oMum"), ("member_id", "M0001")},
        SON: {("unionid", "oSon")},
    }
    assert sorted(
        published_rows(ruled, "select id_type, id_value, records, reason from identity_junk_identifiers")
    ) == [
        ("email", "test@test.com", 1, "identity.blocklist"),
        ("phone", PHONE, 2, "identity.do_not_link #1 (the family phone)"),
    ]
    # A rule naming an identifier never loaded is a warning, not an error.
    (warning,) = [line for line in built.stderr.splitlines() if line.startswith("warning:")]
    assert "identity.do_not_link #2" in warning and "137****0000" in warning and "cuts nothing" in warning
    with pytest.raises(
        NotFound,
        match=r"phone 13911110000 belongs to no customer.*link customers: identity.do_not_link #1 \(the family phone\); 2 record",
    ):
        whois(ruled, PHONE)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"pair": [{"unionid": "a"}], "reason": "x"}, r"#1: `pair` takes exactly two identifiers"),
        ({"identifier": {"wechat": "a"}, "reason": "x"}, r"#1 identifier: unknown identifier type 'wechat'"),
        (
            {"identifier": {"phone": "12345"}, "reason": "x"},
            r"#1 identifier: phone '12345' is not a value ingest",
        ),
        ({"identifier": {"phone": "13900000000"}}, r"#1: give a `reason`"),
        ({"identifier": {"phone": "13900000000"}, "pair": [], "reason": "x"}, r"#1: give either"),
        (
            {"pair": [{"email": "A@x.com"}, {"email": "a@x.com"}], "reason": "x"},
            r"#1: the pair names email a@x.com twice",
        ),
    ],
)
def test_a_bad_rule_is_one_line_naming_the_file_rule_and_field(make_settings, rule, message):
    settings = with_rules(make_settings(), rule)
    with pytest.raises(SegflowError, match=r"settings.yml: identity.do_not_link " + message):
        do_not_link_rules(settings)


def test_typed_values_are_normalised_as_ingest_normalises_them():
    samples = {
        "phone": [
            "+86 139 1111 0000",
            "008613911110000",
            "13911110000.0",
            "139-1111-0000",
            "1391111000",
            "02112345678",
            "",
        ],
        "email": [" Foo.Bar@Example.COM ", "no-at-sign", "a@b", ""],
        "unionid": [" oAbC ", ""],
        "member_id": ["M0001", "  "],
    }
    con = duckdb.connect()
    for id_type, values in samples.items():
        column = Column(id_type, id_type if id_type in ("phone", "email") else "text")
        sql = parse_expression(column, "nullif(trim(raw), '')", Mapping())
        for value in values:
            expected = con.execute(f"select {sql} from (select ? as raw)", [value]).fetchone()[0]
            assert normalise(id_type, value) == expected, (id_type, value)


def test_whois_on_the_command_line(family):
    human = cli(family, "whois", "oSon", "--as-of", BEFORE.isoformat())
    assert human.returncode == 0, human.stderr
    assert f"unionid oSon as of {BEFORE}: customer {FAMILY}, 4 identifier(s) on 3 record(s)" in human.stdout
    assert "unionid oSon -> phone 139****0000: order S1 (" in human.stdout
    assert "email t***@test.com: identity.blocklist (1 of its records)" in human.stdout
    assert PHONE not in human.stdout  # only the identifier asked about is shown whole
    revealed = cli(family, "whois", "oSon", "--reveal")
    assert PHONE in revealed.stdout
    answer = json.loads(cli(family, "--json", "whois", PHONE).stdout)
    assert answer["found"] is True and answer["customer_key"] == FAMILY
    for unknown, line in (
        (
            "13000000000",
            "13000000000: no phone or unionid or email or member_id or external_userid or customer_key of that value",
        ),
        (
            "test@test.com",
            "email test@test.com belongs to no customer as of 2026-03-10: it is not used to link",
        ),
    ):
        done = cli(family, "whois", unknown)
        assert done.returncode == 1 and done.stdout.startswith(line) and len(done.stdout.splitlines()) == 1, (
            done
        )
    bad_date = cli(family, "whois", "oSon", "--as-of", "2026-03-09")
    assert bad_date.returncode == 1 and "no identity snapshot as of 2026-03-09" in bad_date.stderr
