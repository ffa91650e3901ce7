"""`segflow report`: one self-contained HTML file with charts (inline SVG, no scripts, no CDN).

Reads only published tables, so it can run while a build is under way. Labels follow
`report.language` (zh or en) in settings.yml; models and segments are named and ordered as
segments.yml names and orders them (segment_summary's labels and sort order).
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path

from transforms.engines import open_warehouse
from transforms.settings import Settings

TEXT = {
    "zh": {
        "title": "用户分层运营报告",
        "as_of": "数据截至",
        "overview": "概览",
        "buyers": "购买客户",
        "customers": "客户数",
        "revenue": "累计净收入(元)",
        "repurchase_rate": "复购率(2个及以上购买日)",
        "churned_share": "流失占比(30天无单的购买客户)",
        "change": "较上次运行",
        "previous": "上次运行",
        "first_run": "首次运行,暂无对比",
        "customer_share": "客户占比",
        "revenue_share": "收入占比",
        "pareto": "帕累托曲线(客户累计占比 vs 收入累计占比)",
        "pareto_x": "客户累计占比 →",
        "pareto_y": "收入累计占比 →",
        "rfm": "RFM 热力图(R 分 × F 分,格内为客户数)",
        "funnel": "AARRR 漏斗(到达人数与上一阶段转化率)",
        "migration": "分群迁移矩阵:{model},{previous} → {current}(格内为客户数)",
        "channels": "渠道转化",
        "cohorts": "首单月份同期群复购率",
        "migration_none": "分群迁移矩阵",
        "no_previous": "只有一次运行,暂无迁移数据。",
        "new_customer": "新客户",
        "channel": "渠道",
        "contacts": "加粉数",
        "order_share": "下单占比",
        "median_days": "首单中位天数",
        "cohort": "首单月",
        "month": "首单后第 N 月",
        "from": "上次",
        "to": "本次",
        "stage": "阶段",
        "conversion": "转化率",
        "portrait": "人群画像:城市分布(重要价值 vs 全体)",
        "segment_of_portrait": "重要价值",
        "everyone": "全体",
        "unknown": "未知",
        "affinity": "品类关联:买了 A 的客户也买了 B(子类,提升度最高的 10 对,同买人数至少 {floor})",
        "affinity_none": "暂无同买人数达到 {floor} 的子类组合。",
        "category": "买了",
        "related_category": "也买了",
        "buyers_of_both": "同买人数",
        "confidence": "置信度",
        "lift": "提升度",
        "wave": "活动波次 {wave}:优先级、重叠与保留人数(按当前数据预演)",
        "wave_overlaps": "两两重叠(可触达客户)",
        "priority": "优先级",
        "pack": "人群包",
        "matched": "命中",
        "eligible": "可触达",
        "kept_members": "保留导出",
        "kept_holdout": "保留对照",
        "other_pack": "另一人群包",
        "customers_in_both": "重叠客户",
    },
    "en": {
        "title": "Customer segmentation report",
        "as_of": "As of",
        "overview": "Overview",
        "buyers": "buyers",
        "customers": "customers",
        "revenue": "net revenue to date (CNY)",
        "repurchase_rate": "repurchase rate (2+ purchase days)",
        "churned_share": "churned share (buyers with no order in 30 days)",
        "change": "since the previous run",
        "previous": "previous run",
        "first_run": "first run: nothing to compare with",
        "customer_share": "customer share",
        "revenue_share": "revenue share",
        "pareto": "Pareto curve (cumulative customers vs cumulative revenue)",
        "pareto_x": "customers →",
        "pareto_y": "revenue →",
        "rfm": "RFM heat map (R score x F score, customers per cell)",
        "funnel": "AARRR funnel (customers reaching each stage, conversion from the previous)",
        "migration": "Segment migration: {model}, {previous} → {current} (customers per cell)",
        "channels": "Channel conversion",
        "cohorts": "Monthly first-order cohorts: share buying again",
        "migration_none": "Segment migration",
        "no_previous": "Only one run so far: no migration yet.",
        "new_customer": "new customer",
        "channel": "channel",
        "contacts": "contacts",
        "order_share": "ordered",
        "median_days": "median days to first order",
        "cohort": "cohort",
        "month": "months after the first order",
        "from": "previous",
        "to": "now",
        "stage": "stage",
        "conversion": "conversion",
        "portrait": "Portrait by city (important value vs everyone)",
        "segment_of_portrait": "important value",
        "everyone": "everyone",
        "unknown": "unknown",
        "affinity": "Category affinity: buyers of A also bought B (subcategories, top 10 by lift, {floor}+ buyers of both)",
        "affinity_none": "No pair of subcategories has {floor} buyers of both yet.",
        "category": "bought",
        "related_category": "also bought",
        "buyers_of_both": "buyers of both",
        "confidence": "confidence",
        "lift": "lift",
        "wave": "Wave {wave}: priority, overlaps and what each pack keeps (planned on the current data)",
        "wave_overlaps": "Overlaps (customers each pair selects and can reach)",
        "priority": "priority",
        "pack": "pack",
        "matched": "matched",
        "eligible": "reachable",
        "kept_members": "kept members",
        "kept_holdout": "kept holdout",
        "other_pack": "other pack",
        "customers_in_both": "in both",
    },
}
# Pairs bought together by fewer customers are chance as often as not: the report leaves them out.
AFFINITY_FLOOR = 5
BLUE, ORANGE, GREY = "#3b6fb6", "#e08a2c", "#8a8f98"
# The report's reading order: the models a store manager asks about first, then the rest in the
# order of segments.yml.
LEADING_MODELS = ("value_frequency", "lifecycle", "rfm")
MIGRATION_MODEL = "value_frequency"


def esc(value) -> str:
    return html.escape("" if value is None else str(value))


def _bars(
    rows: list[dict],
    label: str,
    series: list[tuple[str, str, str]],
    counts: str | None = None,
    width: int = 720,
) -> str:
    """Horizontal grouped bars; series = (key, legend, colour) with shares 0..1. The first series'
    bar also shows the row's count (`counts`), so a share is never read without its size."""
    bar, gap, left = 12, 10, 190
    height = len(rows) * (bar * len(series) + gap) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    for index, (_, legend, colour) in enumerate(series):
        parts.append(f'<rect x="{left + index * 160}" y="4" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{left + 14 + index * 160}" y="13" font-size="11">{esc(legend)}</text>')
    y = 24
    for row in rows:
        parts.append(
            f'<text x="{left - 6}" y="{y + bar}" font-size="12" text-anchor="end">{esc(row[label])}</text>'
        )
        for index, (key, _, colour) in enumerate(series):
            value = float(row.get(key) or 0)
            length = max(1.0, value * (width - left - 110))
            text = f"{value:.1%}"
            if counts and index == 0 and row.get(counts) is not None:
                text += f" ({row[counts]:,})"
            parts.append(
                f'<rect x="{left}" y="{y}" width="{length:.1f}" height="{bar - 2}" fill="{colour}"/>'
            )
            parts.append(f'<text x="{left + length + 4:.1f}" y="{y + bar - 3}" font-size="10">{text}</text>')
            y += bar
        y += gap
    parts.append("</svg>")
    return "".join(parts)


def _pareto(points: list[dict], t: dict, width: int = 460, height: int = 320) -> str:
    pad = 44
    scale_x = lambda v: pad + v * (width - 2 * pad)  # noqa: E731
    scale_y = lambda v: height - pad - v * (height - 2 * pad)  # noqa: E731
    path = " ".join(f"{scale_x(p['customer_share']):.1f},{scale_y(p['revenue_share']):.1f}" for p in points)
    ticks = []
    for share in (0, 0.25, 0.5, 0.75, 1):
        x, y = scale_x(share), scale_y(share)
        ticks.append(
            f'<line x1="{x:.1f}" y1="{height - pad}" x2="{x:.1f}" y2="{height - pad + 4}" stroke="{GREY}"/>'
            f'<text x="{x:.1f}" y="{height - pad + 15}" font-size="10" text-anchor="middle">{share:.0%}</text>'
            f'<line x1="{pad - 4}" y1="{y:.1f}" x2="{pad}" y2="{y:.1f}" stroke="{GREY}"/>'
            f'<text x="{pad - 6}" y="{y + 3:.1f}" font-size="10" text-anchor="end">{share:.0%}</text>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="{GREY}"/>'
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="{GREY}"/>'
        + "".join(ticks)
        + f'<line x1="{scale_x(0)}" y1="{scale_y(0)}" x2="{scale_x(1)}" y2="{scale_y(1)}" stroke="{GREY}" stroke-dasharray="4"/>'
        f'<line x1="{pad}" y1="{scale_y(0.8):.1f}" x2="{width - pad}" y2="{scale_y(0.8):.1f}" stroke="{ORANGE}" stroke-dasharray="2"/>'
        f'<polyline fill="none" stroke="{BLUE}" stroke-width="2" points="{scale_x(0)},{scale_y(0)} {path}"/>'
        f'<text x="{width / 2}" y="{height - 8}" font-size="11" text-anchor="middle">{esc(t["pareto_x"])}</text>'
        f'<text x="12" y="{height / 2}" font-size="11" transform="rotate(-90 12 {height / 2})" '
        f'text-anchor="middle">{esc(t["pareto_y"])}</text>'
        "</svg>"
    )


def _heat_table(
    rows: list[dict],
    row_key: str,
    column_key: str,
    value_key: str,
    fmt: str,
    row_title: str,
    column_title: str,
    labels: dict | None = None,
    order: dict | None = None,
) -> str:
    """A table shaded by value; `labels` names row and column values, `order` sorts them."""
    labels, order = labels or {}, order or {}

    def sort_key(value):
        return (order.get(value, len(order)), str(value))

    row_values = sorted({r[row_key] for r in rows}, key=sort_key)
    column_values = sorted({r[column_key] for r in rows}, key=sort_key)
    cells = {(r[row_key], r[column_key]): r[value_key] for r in rows}
    top = max([float(v) for v in cells.values() if v is not None] or [1]) or 1
    head = "".join(f"<th>{esc(labels.get(c, c))}</th>" for c in column_values)
    body = []
    for row_value in row_values:
        tds = []
        for column_value in column_values:
            value = cells.get((row_value, column_value))
            if value is None:
                tds.append("<td></td>")
                continue
            alpha = 0.08 + 0.85 * float(value) / top
            text = format(float(value), fmt)
            tds.append(f'<td style="background:rgba(59,111,182,{alpha:.2f})">{text}</td>')
        body.append(f"<tr><th>{esc(labels.get(row_value, row_value))}</th>{''.join(tds)}</tr>")
    corner = f"{esc(row_title)} \\ {esc(column_title)}"
    return f'<table class="heat"><tr><th>{corner}</th>{head}</tr>{"".join(body)}</table>'


def _funnel(rows: list[dict], width: int = 720) -> str:
    top = max([r["reached"] for r in rows] or [1]) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{len(rows) * 34 + 10}" role="img">'
    ]
    for index, row in enumerate(rows):
        length = max(2.0, (width - 300) * row["reached"] / top)
        x = 150 + (width - 300 - length) / 2
        y = 6 + index * 34
        conversion = (
            f"{row['conversion_from_previous']:.1%}" if row["conversion_from_previous"] is not None else ""
        )
        parts.append(f'<rect x="{x:.1f}" y="{y}" width="{length:.1f}" height="26" fill="{BLUE}" rx="3"/>')
        parts.append(
            f'<text x="144" y="{y + 17}" font-size="12" text-anchor="end">{esc(row["stage_label"])}</text>'
        )
        parts.append(
            f'<text x="{width - 140}" y="{y + 17}" font-size="11">{row["reached"]:,}  {conversion}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    head = "".join(f"<th>{esc(title)}</th>" for _, title, _ in columns)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{format(r[k], f) if r[k] is not None and f else esc(r[k])}</td>" for k, _, f in columns
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


HEADLINE_SQL = """
select count(case when order_count > 0 then 1 end) as buyers, count(*) as customers,
    coalesce(sum(total_spend), 0) as revenue,
    avg(case when order_count > 0 then (case when purchase_days >= 2 then 1.0 else 0.0 end) end)
        as repurchase_rate,
    avg(case when order_count > 0 then (case when recency_days > 30 then 1.0 else 0.0 end) end)
        as churned_share
from {relation}
"""


def _overview(headline: dict, previous: dict | None, previous_date, t: dict) -> str:
    """The headline figures and their change since the previous run (shares in percentage points)."""
    figures = (
        ("buyers", False),
        ("customers", False),
        ("revenue", False),
        ("repurchase_rate", True),
        ("churned_share", True),
    )
    rows = []
    for key, is_share in figures:
        value = headline[key]
        shown = "" if value is None else f"{float(value):.1%}" if is_share else f"{float(value):,.0f}"
        change = ""
        if previous and previous.get(key) is not None and value is not None:
            diff = float(value) - float(previous[key])
            change = f"{diff * 100:+.1f} pp" if is_share else f"{diff:+,.0f}"
        rows.append(f"<tr><th>{esc(t[key])}</th><td>{shown}</td><td>{esc(change)}</td></tr>")
    compared = f"{t['change']} ({t['previous']} {previous_date})" if previous else t["first_run"]
    return f"<table><tr><th></th><th></th><th>{esc(compared)}</th></tr>{''.join(rows)}</table>"


def _channel_section(channels: list[dict], channel_labels: dict, t: dict) -> list[str]:
    channels = [
        {**row, "channel_label": channel_labels.get(row["source_channel"], row["source_channel"])}
        for row in channels
    ]
    sections = [f"<h2>{esc(t['channels'])}</h2>"]
    sections.append(
        _bars(channels, "channel_label", [("order_share", t["order_share"], BLUE)], counts="contacts")
    )
    sections.append(
        _table(
            channels,
            [
                ("channel_label", t["channel"], ""),
                ("contacts", t["contacts"], ",d"),
                ("order_share", t["order_share"], ".1%"),
                ("median_days_to_first_order", t["median_days"], ".1f"),
            ],
        )
    )
    return sections


def _migration_section(
    migration: list[dict], labels: dict, orders: dict, model_labels: dict, as_of, t: dict
) -> list[str]:
    """Who moved between the value x frequency quadrants since the previous run, named and ordered."""
    if not migration:
        return [f"<h2>{esc(t['migration_none'])}</h2><p>{esc(t['no_previous'])}</p>"]
    migration_labels = {
        segment: label for (model, segment), label in labels.items() if model == MIGRATION_MODEL
    }
    migration_labels["(new customer)"] = t["new_customer"]
    order = {segment: rank for (model, segment), rank in orders.items() if model == MIGRATION_MODEL}
    order["(new customer)"] = -1
    title = t["migration"].format(
        model=model_labels.get(MIGRATION_MODEL, MIGRATION_MODEL),
        previous=migration[0]["previous_as_of_date"],
        current=as_of,
    )
    return [
        f"<h2>{esc(title)}</h2>",
        _heat_table(
            migration,
            "from_segment",
            "to_segment",
            "customers",
            ",.0f",
            t["from"],
            t["to"],
            labels=migration_labels,
            order=order,
        ),
    ]


def _page(language: str, t: dict, sections: list[str]) -> str:
    style = (
        "body{font-family:'Noto Sans CJK SC','PingFang SC','Microsoft YaHei',sans-serif;margin:24px;color:#222;max-width:980px}"
        "h1{font-size:22px}h2{font-size:16px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}"
        "h3{font-size:14px}table{border-collapse:collapse;font-size:12px;margin:6px 0}"
        "td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f4f5f7}svg{display:block;margin:6px 0}"
    )
    return (
        f'<!DOCTYPE html><html lang="{esc(language)}"><head><meta charset="utf-8"><title>{esc(t["title"])}</title>'
        f"<style>{style}</style></head><body>{''.join(sections)}</body></html>"
    )


@dataclass(frozen=True)
class ReportData:
    """What the report shows, read from the published tables in one session."""

    as_of: object
    headline: dict
    previous_date: object
    previous: dict | None
    summary: list[dict]
    catalog: list[dict]
    pareto: list[dict]
    rfm: list[dict]
    funnel: list[dict]
    migration: list[dict]
    channels: list[dict]
    cohorts: list[dict]
    portrait: list[dict]
    affinity: list[dict]


def _report_data(settings: Settings, unknown: str) -> ReportData:
    """Everything the report shows, read from the published tables in one session."""
    with open_warehouse(settings).read() as con:
        as_of = con.execute("select max(as_of_date) from customer_features").fetchall()[0][0]
        headline = con.fetch_dicts(HEADLINE_SQL.format(relation="customer_features"))[0]
        previous_date = con.execute(
            "select max(as_of_date) from customer_features_history where as_of_date < ?", [as_of]
        ).fetchall()[0][0]
        previous = (
            con.fetch_dicts(
                HEADLINE_SQL.format(relation="customer_features_history") + " where as_of_date = ?",
                [previous_date],
            )[0]
            if previous_date
            else None
        )
        summary = con.fetch_dicts(
            "select model, coalesce(model_label, model) as model_label, model_order, segment, segment_label, "
            "segment_order, customers, customer_share, revenue_share from segment_summary "
            "order by model_order nulls last, model, segment_order nulls last, customers desc",
        )
        catalog = con.fetch_dicts("select model, segment, segment_label, segment_order from segment_catalog")
        pareto = con.fetch_dicts(
            "with ranked as (select total_spend, row_number() over (order by total_spend desc, customer_key) as r, "
            "count(*) over () as n, sum(total_spend) over (order by total_spend desc, customer_key "
            "rows between unbounded preceding and current row) as running, sum(total_spend) over () as overall "
            "from customer_features where order_count > 0) "
            "select cast(r as double) / n as customer_share, cast(running / nullif(overall, 0) as double) as revenue_share "
            "from ranked where r % greatest(1, n // 100) = 0 or r = n order by r",
        )
        rfm = con.fetch_dicts(
            "select r_score, f_score, count(*) as customers from customer_segments where model = 'rfm' "
            "and r_score is not null group by 1, 2",
        )
        funnel = con.fetch_dicts("select * from funnel_summary order by stage_order")
        migration = con.fetch_dicts(
            "select previous_as_of_date, from_segment, to_segment, customers from segment_migration "
            "where model = ? and as_of_date = (select max(as_of_date) from segment_migration)",
            [MIGRATION_MODEL],
        )
        channels = con.fetch_dicts("select * from channel_conversion order by contacts desc")
        cohorts = con.fetch_dicts(
            "select strftime(cohort_month, '%Y-%m') as cohort, months_since_first, retention_rate "
            "from cohort_retention where months_since_first <= 6",
        )
        portrait = con.fetch_dicts(
            "with base as (select f.customer_key, coalesce(f.city, ?) as city, s.segment from customer_features as f "
            "join customer_segments as s on f.customer_key = s.customer_key and s.model = 'value_frequency') "
            "select 'city' as dimension, city as value, avg(case when segment = 'important_value' then 1.0 else 0 end) "
            "* count(*) / nullif((select count(*) from base where segment = 'important_value'), 0) as segment_share, "
            "count(*) * 1.0 / (select count(*) from base) as base_share from base group by city "
            "order by segment_share desc limit 8",
            [unknown],
        )
        affinity = con.fetch_dicts(
            "select category, related_category, buyers_of_both, confidence, lift from category_affinity "
            "where level = 'subcategory' and buyers_of_both >= ? "
            "order by lift desc, buyers_of_both desc, category, related_category limit 10",
            [AFFINITY_FLOOR],
        )
    return ReportData(
        as_of=as_of,
        headline=headline,
        previous_date=previous_date,
        previous=previous,
        summary=summary,
        catalog=catalog,
        pareto=pareto,
        rfm=rfm,
        funnel=funnel,
        migration=migration,
        channels=channels,
        cohorts=cohorts,
        portrait=portrait,
        affinity=affinity,
    )


def build_report(settings: Settings) -> str:
    language = str(settings.get("report.language"))
    t = TEXT.get(language, TEXT["en"])
    channel_labels = (settings.values.get("report") or {}).get("channel_labels") or {}
    channel_labels = channel_labels if language == "zh" else {}
    data = _report_data(settings, t["unknown"])

    labels = {(c["model"], c["segment"]): c["segment_label"] for c in data.catalog}
    orders = {(c["model"], c["segment"]): c["segment_order"] for c in data.catalog}
    model_labels = {r["model"]: r["model_label"] for r in data.summary}

    def model_bars(model: str) -> str:
        rows = [r for r in data.summary if r["model"] == model]
        series = [
            ("customer_share", t["customer_share"], BLUE),
            ("revenue_share", t["revenue_share"], ORANGE),
        ]
        return f"<h2>{esc(model_labels[model])}</h2>" + _bars(
            rows, "segment_label", series, counts="customers"
        )

    sections = [
        f"<h1>{esc(t['title'])}</h1><p>{esc(t['as_of'])} {esc(data.as_of)}</p>",
        f"<h2>{esc(t['overview'])}</h2>{_overview(data.headline, data.previous, data.previous_date, t)}",
    ]
    for model in LEADING_MODELS:
        if model in model_labels:
            sections.append(model_bars(model))
    if data.rfm:
        sections.append(
            f"<h2>{esc(t['rfm'])}</h2>{_heat_table(data.rfm, 'r_score', 'f_score', 'customers', ',.0f', 'R', 'F')}"
        )
    stage_labels = {segment: label for (model, segment), label in labels.items() if model == "funnel"}
    funnel = [{**row, "stage_label": stage_labels.get(row["stage"], row["stage"])} for row in data.funnel]
    sections.append(f"<h2>{esc(t['funnel'])}</h2>{_funnel(funnel)}")
    sections.append(f"<h2>{esc(t['cohorts'])}</h2>")
    sections.append(
        _heat_table(
            data.cohorts, "cohort", "months_since_first", "retention_rate", ".1%", t["cohort"], t["month"]
        )
    )
    sections += _channel_section(data.channels, channel_labels, t)
    for model in model_labels:
        if model not in LEADING_MODELS and model != "funnel":  # the funnel has its own chart above
            sections.append(model_bars(model))
            if model == "abc":
                sections.append(f"<h3>{esc(t['pareto'])}</h3>{_pareto(data.pareto, t)}")
    sections += _migration_section(data.migration, labels, orders, model_labels, data.as_of, t)
    sections.append(f"<h2>{esc(t['portrait'])}</h2>")
    sections.append(
        _bars(
            data.portrait,
            "value",
            [("segment_share", t["segment_of_portrait"], ORANGE), ("base_share", t["everyone"], GREY)],
        )
    )
    sections.append(f"<h2>{esc(t['affinity'].format(floor=AFFINITY_FLOOR))}</h2>")
    affinity_columns = [
        (key, t[key], fmt)
        for key, fmt in (
            ("category", ""),
            ("related_category", ""),
            ("buyers_of_both", ",.0f"),
            ("confidence", ".1%"),
            ("lift", ".2f"),
        )
    ]
    sections.append(
        _table(data.affinity, affinity_columns)
        if data.affinity
        else f"<p>{esc(t['affinity_none'].format(floor=AFFINITY_FLOOR))}</p>"
    )
    sections += _wave_section(settings, t)
    return _page(language, t, sections)


def _wave_section(settings: Settings, t: dict) -> list[str]:
    """The plan of the wave exported last (or the first wave): suppression by reason per pack."""
    from transforms.campaigns import latest_wave, plan_wave

    wave = latest_wave(settings)
    if wave is None:
        return []
    plan = plan_wave(settings, wave)
    reasons = sorted({reason for p in plan["packs"] for reason in p["suppressed_by_reason"]})
    rows = [{**p, **{r: p["suppressed_by_reason"].get(r, 0) for r in reasons}} for p in plan["packs"]]
    counts = [(key, t[key], ",.0f") for key in ("matched", "eligible")]
    kept = [(key, t[key], ",.0f") for key in ("kept_members", "kept_holdout")]
    columns = [("priority", t["priority"], ""), ("pack", t["pack"], ""), *counts]
    columns += [(r, r, ",.0f") for r in reasons] + kept
    overlaps = [
        ("pack", t["pack"], ""),
        ("other_pack", t["other_pack"], ""),
        ("customers_in_both", t["customers_in_both"], ",.0f"),
    ]
    return [
        f"<h2>{esc(t['wave'].format(wave=wave))}</h2>",
        _table(rows, columns),
        f"<h3>{esc(t['wave_overlaps'])}</h3>",
        _table(plan["overlaps"], overlaps),
    ]


def write_report(settings: Settings, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_text(build_report(settings), encoding="utf-8")
    os.replace(temporary, path)
    return path
