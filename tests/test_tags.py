"""Tags from every source on hand-checked customers; rejected expressions; catalog errors; history."""

from __future__ import annotations

import shutil
from datetime import date

import pytest

from tests.conftest import FIXTURES, load_feature_fixture, published_rows
from transforms.build import build
from transforms.errors import SegflowError
from transforms.expressions import compile_expression
from transforms.ingest import ingest
from transforms.sql import render_refs
from transforms.tags import load_catalog

AS_OF = date(2026, 3, 10)


@pytest.fixture
def tagged(make_settings):
    settings = make_settings({"identity": {"max_links_per_identifier": 3}})
    shutil.copy(FIXTURES / "tags" / "tags.yml", settings.config_dir / "tags.yml")
    load_feature_fixture(settings)
    ingest(settings, [FIXTURES / "tags" / "events.csv"], "events")
    ingest(settings, [FIXTURES / "tags" / "manual_tags.csv"], "manual_tags")
    build(settings, AS_OF, run_checks=False)
    return settings


def tags_of(settings, id_type, id_value) -> set[tuple[str, str, str]]:
    rows = published_rows(
        settings,
        "select t.tag_group, t.tag, t.source from customer_tags as t join customer_identifiers as i using (customer_key) "
        "where i.id_type = ? and i.id_value = ?",
        [id_type, id_value],
    )
    return set(rows)


def test_every_source_gives_the_expected_tags(tagged):
    assert tags_of(tagged, "unionid", "oA") == {
        ("月均", "低", "rule"),
        ("首单渠道", "小程序", "rule"),
        ("复购", "高频", "rule"),
        ("兴趣", "送礼", "rule"),
        ("兴趣", "爱茶", "rule"),
        ("肤质", "干皮", "questionnaire"),
        ("内容", "白茶爱好者", "content"),
        ("销售备注", "VIP", "manual"),
    }
    assert tags_of(tagged, "email", "bob@x.com") == {
        ("月均", "中", "rule"),
        ("首单渠道", "小程序", "rule"),
        ("复购", "有复购", "rule"),
        ("兴趣", "爱茶", "rule"),
        ("肤质", "混合皮", "questionnaire"),
    }
    assert tags_of(tagged, "phone", "13900000003") == set()
    assert tags_of(tagged, "unionid", "oJ1") == {("月均", "低", "rule"), ("首单渠道", "offline", "rule")}


def test_wide_view_and_report(tagged):
    wide = published_rows(
        tagged,
        'select w."月均", w."复购", w."肤质" from customer_tags_wide as w join customer_identifiers as i using (customer_key) '
        "where i.id_value = 'oA'",
    )
    assert wide == [("低", "高频", "干皮")]
    report = {
        (group, tag): (members, warning)
        for group, tag, members, warning in published_rows(
            tagged, "select tag_group, tag, members, warning from tag_report"
        )
    }
    assert report[("月均", "高")] == (0, "empty tag")
    assert report[("复购", "高频")] == (1, None)
    # Alice matched both ordered rules; the earlier took her and the report flags the overlap.
    assert report[("复购", "有复购")] == (1, "rule overlaps an earlier rule")
    overlap = published_rows(tagged, "select overlapping_customers from tag_report where tag = '有复购'")
    assert overlap == [(1,)]


def test_tag_history_records_gains_and_losses(tagged):
    build(tagged, date(2026, 3, 20), run_checks=False)
    changes = published_rows(
        tagged,
        "select h.tag, h.change from customer_tag_history as h join customer_identifiers as i using (customer_key) "
        "where h.as_of_date = date '2026-03-20' and i.id_value = 'bob@x.com' and h.tag_group = '销售备注'",
    )
    assert changes == [("团购", "gained")]


@pytest.mark.parametrize(
    ("expression", "offending"),
    [
        ("total_spend > 0; drop table customer_features", ";"),
        ("(select max(total_spend) from customer_features) > 0", "select"),
        ("total_spend > 0 or 1 in (select 1)", "select"),
        ("salary > 1000", "unknown column 'salary'"),
        ("read_csv('/etc/passwd') is not null", "unknown function 'read_csv'"),
        ("f.total_spend > 0", "unknown column 'f.total_spend'"),
        ("cast(total_spend as blob) > 0", "cast to"),
        ("in_segment('rfm')", "in_segment('model', 'segment')"),
        ("total_spend >", "does not parse"),
    ],
)
def test_expressions_are_refused(expression, offending):
    with pytest.raises(SegflowError) as error:
        compile_expression(expression, "tags.yml tag 测试")
    message = str(error.value)
    assert message.startswith("tags.yml tag 测试: expression") and offending in message


def test_allowed_expression_compiles_to_sql():
    compiled = compile_expression(
        "order_count >= 2 and days_since(last_order_date) between 30 and 60 and has_tag('价格带', '高端线')",
        "packs.yml pack demo",
    )
    # The helper reads the tags model through ref(), which the model runner or a reader resolves.
    assert "f.order_count >= 2" in compiled.sql and "{{ ref('customer_tags') }}" in compiled.sql
    assert "pub.customer_tags as t" in render_refs(compiled.sql, lambda model: f"pub.{model}").lower()
    assert compiled.tags == (("价格带", "高端线"),)


def test_bad_catalog_lists_every_error(tmp_path):
    catalog = tmp_path / "tags.yml"
    catalog.write_text(
        "categories:\n"
        "  - name: 测试\n"
        "    groups:\n"
        "      - {name: A, source: rules, tags: [{tag: x, when: 'nope > 1'}]}\n"
        "      - {name: B, source: bands, feature: total_spend, bands: [0, 10], labels: [a, b]}\n"
        "      - {name: C, source: telepathy}\n",
        encoding="utf-8",
    )
    with pytest.raises(SegflowError) as error:
        load_catalog(catalog)
    message = str(error.value)
    assert message.startswith("3 error(s) in the tag catalog")
    assert "group A tag x" in message and "group B" in message and "group C" in message
