"""Audiences by what people bought, the cross-sell list and category affinity, on the hand-checked
fixture of tests/fixtures/cross_sell/README.md, on every served engine."""

from __future__ import annotations

import json
from datetime import date

import pytest

from tests.conftest import FIXTURES, cli, published_rows
from transforms.build import build
from transforms.engines import open_warehouse
from transforms.errors import SegflowError
from transforms.expressions import compile_expression
from transforms.ingest import ingest
from transforms.sql import ref

AS_OF = date(2026, 3, 10)
PHONES = {name: f"139000001{n:02d}" for n, name in enumerate("ABCDEFG", start=1)}
CROSS_SELL = {
    "list_days": 60,
    "content_days": 7,
    "items": [
        {
            "item": {"subcategory": "安全座椅"},
            "content": "安装指南",
            "related": [{"category": "汽车用品"}, {"subcategory": "儿童安全"}],
        }
    ],
}


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def shop(request):
    make = request.getfixturevalue("make_settings" if request.param == "duckdb" else "make_pg_settings")
    settings = make({"actions": {"cross_sell": CROSS_SELL}})
    for kind in ("products", "orders", "order_items"):
        ingest(settings, [FIXTURES / "cross_sell" / f"{kind}.csv"], kind)
    build(settings, AS_OF, run_checks=False)
    return settings


def names(settings) -> dict[str, str]:
    """customer_key -> the fixture's letter for the customer."""
    by_phone = {phone: name for name, phone in PHONES.items()}
    return {
        key: by_phone[phone]
        for key, phone in published_rows(
            settings, "select customer_key, id_value from customer_identifiers where id_type = 'phone'"
        )
    }


def selected(settings, expression: str) -> set[str]:
    """The customers an expression selects, read as a pack reads the published tables."""
    compiled = compile_expression(expression, "test")
    customer = names(settings)
    with open_warehouse(settings).read() as con:
        rows = con.execute(
            con.render(f"select f.customer_key from {ref('customer_features')} as f where {compiled.sql}")
        ).fetchall()
    return {customer[key] for (key,) in rows}


def test_bought_selects_buyers_as_of_the_date_by_level_and_window(shop):
    assert sorted(names(shop).values()) == ["A", "B", "C", "D", "E", "G"]  # F ordered after the cut-off
    assert selected(shop, "bought('subcategory', '安全座椅')") == {"A", "B", "C", "D"}
    assert selected(shop, "bought('subcategory', '安全座椅', 30)") == {"A", "B"}
    assert selected(shop, "not bought('subcategory', '安全座椅')") == {"E", "G"}  # E's order was refunded
    assert selected(shop, "bought('sku', 'SAFE-1')") == {"C", "G"}
    assert selected(shop, "bought('category', '汽车用品', 13)") == {"B"}
    assert selected(shop, "bought('category', '汽车用品', 12)") == set()
    assert selected(shop, "bought('category', '母婴') and not bought('category', '汽车用品')") == {
        "A",
        "D",
        "G",
    }


def test_the_cross_sell_list_holds_buyers_who_lack_a_related_category(shop):
    customer = names(shop)
    rows = published_rows(
        shop,
        "select customer_key, item_level, item, purchase_date, days_since_purchase, content, next_related, "
        "related_not_bought from action_cross_sell",
    )
    assert sorted((customer[key], *rest) for key, *rest in rows) == [
        ("A", "subcategory", "安全座椅", date(2026, 3, 7), 3, "安装指南", "汽车用品", "汽车用品, 儿童安全"),
        ("B", "subcategory", "安全座椅", date(2026, 2, 20), 18, None, "儿童安全", "儿童安全"),
    ]


def test_category_affinity_counts_support_confidence_and_lift(shop):
    rows = published_rows(
        shop,
        "select level, category, related_category, buyers_of_category, buyers_of_related, buyers_of_both, "
        "customers, support, confidence, lift from category_affinity",
    )
    got = {(level, a, b): rest for level, a, b, *rest in rows}
    expected = {
        ("category", "母婴", "汽车用品"): (5, 2, 2, 5, 0.4, 0.4, 1.0),
        ("category", "汽车用品", "母婴"): (2, 5, 2, 5, 0.4, 1.0, 1.0),
        ("subcategory", "安全座椅", "车内收纳"): (4, 2, 2, 5, 0.4, 0.5, 1.25),
        ("subcategory", "车内收纳", "安全座椅"): (2, 4, 2, 5, 0.4, 1.0, 1.25),
        ("subcategory", "安全座椅", "儿童安全"): (4, 2, 1, 5, 0.2, 0.25, 0.625),
        ("subcategory", "儿童安全", "安全座椅"): (2, 4, 1, 5, 0.2, 0.5, 0.625),
        ("subcategory", "车内收纳", "儿童安全"): (2, 2, 1, 5, 0.2, 0.5, 1.25),
        ("subcategory", "儿童安全", "车内收纳"): (2, 2, 1, 5, 0.2, 0.5, 1.25),
        ("subcategory", "儿童安全", "纸尿裤"): (2, 1, 1, 5, 0.2, 0.5, 2.5),
        ("subcategory", "纸尿裤", "儿童安全"): (1, 2, 1, 5, 0.2, 1.0, 2.5),
    }
    assert got.keys() == expected.keys()
    for pair, values in expected.items():
        assert tuple(got[pair][:4]) == values[:4], pair
        assert got[pair][4:] == pytest.approx(values[4:]), pair


def test_affinity_and_a_bought_pack_on_the_command_line(make_settings):
    settings = make_settings({"actions": {"cross_sell": CROSS_SELL}})
    for kind in ("products", "orders", "order_items"):
        ingest(settings, [FIXTURES / "cross_sell" / f"{kind}.csv"], kind)
    build(settings, AS_OF, run_checks=False)
    human = cli(settings, "affinity", "安全座椅")
    assert human.returncode == 0, human.stderr
    lines = human.stdout.splitlines()
    assert lines[0] == "buyers of 安全座椅 within affinity.window_days as of 2026-03-10 also bought:"
    assert lines[3].split() == ["subcategory", "车内收纳", "2", "0.4", "0.5", "1.25"]
    assert lines[4].split() == ["subcategory", "儿童安全", "1", "0.2", "0.25", "0.625"]
    top = json.loads(cli(settings, "--json", "affinity", "母婴", "--top", "1").stdout)
    assert [(p["level"], p["related_category"], p["lift"]) for p in top["pairs"]] == [
        ("category", "汽车用品", 1.0)
    ]
    unknown = cli(settings, "affinity", "安全座")
    assert unknown.returncode == 1 and "did you mean 安全座椅" in unknown.stderr
    preview = json.loads(
        cli(settings, "--json", "pack", "preview", "--where", "bought('subcategory', '安全座椅', 30)").stdout
    )
    assert preview["matched"] == 2


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("bought('brand', 'x')", r"bought\(\) level 'brand' is not one of category, subcategory, sku"),
        ("bought('sku')", r"bought\('category' \| 'subcategory' \| 'sku', 'value'\[, within_days\]\)"),
        ("bought('sku', 'a', 0)", "within_days is a whole number of days, 1 or more"),
        ("bought('sku', 'a', '7')", "within_days is a whole number of days, 1 or more"),
        ("bought(sku, 'a')", "bought\\('category'"),
    ],
)
def test_a_bad_bought_is_refused_at_load_time(expression, message):
    with pytest.raises(SegflowError, match=message):
        compile_expression(expression, "packs.yml pack p")


@pytest.mark.parametrize(
    ("cross_sell", "message"),
    [
        (
            {"items": [{"item": {"brand": "x"}, "related": [{"category": "a"}]}]},
            r"items #1.item: unknown level 'brand'",
        ),
        ({"items": [{"item": {"sku": "x"}}]}, r"items #1: give `item`"),
        ({"items": [{"item": {"sku": "x"}, "related": [{"category": "a"}], "colour": 1}]}, "unknown field"),
        ({"list_days": -1, "items": []}, r"list_days: a whole number of days"),
    ],
)
def test_a_bad_cross_sell_entry_is_one_line_naming_it(make_settings, cross_sell, message):
    from transforms.cross_sell import cross_sell_items

    settings = make_settings({"actions": {"cross_sell": cross_sell}})
    with pytest.raises(SegflowError, match=r"settings.yml: actions.cross_sell.*" + message):
        cross_sell_items(settings)
