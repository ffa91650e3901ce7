"""Segment models on hand-checked customers: exact segment per customer and model."""

from __future__ import annotations

from datetime import date

import pytest

from tests.conftest import published_rows, write_csv
from transforms.build import build
from transforms.ingest import ingest

AS_OF = date(2026, 3, 10)


@pytest.fixture(scope="module")
def built(segments_built):
    return segments_built


def segments(settings, model: str) -> dict[str, str]:
    rows = published_rows(
        settings,
        "select i.id_value, s.segment from customer_segments as s join customer_identifiers as i using (customer_key) "
        "where s.model = ? and i.id_type = 'unionid'",
        [model],
    )
    return dict(rows)


def test_value_frequency_quadrant_boundaries(built):
    assert segments(built, "value_frequency") == {
        "u300": "general_value",
        "u600": "important_value",
        "u450": "unclassified",
        "u1x600": "important_development",
        "u1x300": "general_development",
        "u5x40": "unclassified",
        "u5x200": "important_value",
        "uchurn": "general_development",
        "udormant": "no_recent_orders",
        "usemi": "general_development",
        "ureact": "general_development",
        "unever": "no_recent_orders",
        "uvisitor": "no_recent_orders",
    }


def test_rule_report_names_the_gaps_and_overlaps(built):
    rows = published_rows(
        built,
        "select rule, matching_customers, taken_by_earlier_rule from segment_rule_report "
        "where model = 'value_frequency' order by rule_order",
    )
    # Gap first (rule_order 0): u450 and u5x40. 一般发展 overlaps 一般价值 on u300 and the
    # three no-recent-order customers (udormant, unever, uvisitor: 0 orders, 0 spend) rule 1 took.
    assert rows[0] == ("unclassified", 2, 0)
    assert dict((r[0], r[2]) for r in rows[1:])["general_development"] == 4


def test_lifecycle(built):
    lifecycle = segments(built, "lifecycle")
    names = ("uchurn", "udormant", "usemi", "ureact", "u1x300", "u300", "unever")
    assert {k: lifecycle[k] for k in names} == {
        "uchurn": "churned",
        "udormant": "dormant",
        "usemi": "semi_churned",
        "ureact": "reactivated",
        "u1x300": "first_time_buyer",
        "u300": "repeat_buyer",
        "unever": "never_purchased",
    }


def test_funnel_stages(built):
    funnel = segments(built, "funnel")
    assert {k: funnel[k] for k in ("u300", "u600", "u450", "unever", "uvisitor")} == {
        "u300": "advocate",  # referred someone and bought
        "u600": "member",  # has a member id
        "u450": "customer",
        "unever": "prospect",
        "uvisitor": "visitor",
    }


def test_abc_and_rfm(built):
    abc = segments(built, "abc")
    # Spend: u5x200 1000, u1x600 600, u600 600, u450 450, u300 300, u1x300 300, u5x40 200, ...
    assert abc["u5x200"] == "A" and abc["unever"] == "C"
    scores = dict(
        published_rows(
            built,
            "select i.id_value, s.m_score from customer_segments as s join customer_identifiers as i using (customer_key) "
            "where s.model = 'rfm' and i.id_type = 'unionid'",
        )
    )
    assert scores["u600"] == scores["u1x600"]  # equal spend, equal score
    assert scores["u5x200"] == 5 and scores["unever"] is None


def test_one_row_per_customer_and_model_and_summary_reconciles(built):
    assert published_rows(
        built,
        "select count(*) from (select customer_key, model from customer_segments group by 1, 2 having count(*) > 1)",
    ) == [(0,)]
    customers = published_rows(built, "select count(*) from customer_features")[0][0]
    for model, total, share, revenue_share in published_rows(
        built,
        "select model, sum(customers), sum(customer_share), sum(revenue_share) from segment_summary group by model",
    ):
        assert total == customers, model
        assert share == pytest.approx(1.0) and revenue_share == pytest.approx(1.0), model


def test_ties_at_the_best_end_score_5_and_ties_at_the_worst_end_score_1(make_settings, tmp_path):
    # Three buyers ordered yesterday (R ties at the best end), one on 03-01 twice, one on 02-01.
    orders = write_csv(
        tmp_path / "orders.csv",
        "order_id,created_at,paid_at,status,amount,unionid",
        *(f"Y{n},2026-03-09T10:00:00+08:00,2026-03-09T10:00:00+08:00,paid,100,uy{n}" for n in (1, 2, 3)),
        "M1,2026-03-01T09:00:00+08:00,2026-03-01T09:00:00+08:00,paid,200,umid",
        "M2,2026-03-01T11:00:00+08:00,2026-03-01T11:00:00+08:00,paid,200,umid",
        "O1,2026-02-01T10:00:00+08:00,2026-02-01T10:00:00+08:00,paid,100,uold",
    )
    settings = make_settings()
    ingest(settings, [orders], "orders")
    build(settings, AS_OF, run_checks=False)
    rows = published_rows(
        settings,
        "select i.id_value, s.r_score, s.f_score, s.m_score, s.segment from customer_segments as s "
        "join customer_identifiers as i using (customer_key) where s.model = 'rfm' order by 1",
    )
    assert rows == [
        ("umid", 2, 5, 5, "at_risk"),
        ("uold", 1, 1, 1, "lost"),
        ("uy1", 5, 1, 1, "new"),
        ("uy2", 5, 1, 1, "new"),
        ("uy3", 5, 1, 1, "new"),
    ]
