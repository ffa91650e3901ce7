"""`segflow report`: one self-contained HTML file with charts (inline SVG, no scripts, no CDN).

Reads only published tables, so it can run while a build is under way. Labels follow
`report.language` (zh or en) in settings.yml.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from transforms.settings import Settings
from transforms.warehouse import Warehouse, fetch_dicts

TEXT = {
    "zh": {
        "title": "用户分层运营报告",
        "as_of": "数据截至",
        "customers": "客户数",
        "segments": "分群规模与收入占比",
        "customer_share": "客户占比",
        "revenue_share": "收入占比",
        "pareto": "帕累托曲线(客户累计占比 vs 收入累计占比)",
        "rfm": "RFM 热力图(R 分 × F 分,格内为客户数)",
        "funnel": "AARRR 漏斗",
        "migration": "分群迁移矩阵(上次运行 → 本次)",
        "channels": "渠道转化",
        "cohorts": "首单月份同期群复购率",
        "no_previous": "只有一次运行,暂无迁移数据。",
        "channel": "渠道",
        "contacts": "加粉数",
        "order_share": "下单占比",
        "median_days": "首单中位天数",
        "cohort": "首单月",
        "month": "第 N 月",
        "from": "从",
        "to": "到",
        "stage": "阶段",
        "conversion": "转化率",
        "portrait": "人群画像(重要价值 vs 全体)",
    },
    "en": {
        "title": "Customer segmentation report",
        "as_of": "As of",
        "customers": "customers",
        "segments": "Segment sizes and revenue shares",
        "customer_share": "customer share",
        "revenue_share": "revenue share",
        "pareto": "Pareto curve (cumulative customers vs cumulative revenue)",
        "rfm": "RFM heat map (R score x F score, customers per cell)",
        "funnel": "AARRR funnel",
        "migration": "Segment migration (previous run -> this run)",
        "channels": "Channel conversion",
        "cohorts": "Monthly first-order cohorts: share buying again",
        "no_previous": "Only one run so far: no migration yet.",
        "channel": "channel",
        "contacts": "contacts",
        "order_share": "ordered",
        "median_days": "median days to first order",
        "cohort": "cohort",
        "month": "month",
        "from": "from",
        "to": "to",
        "stage": "stage",
        "conversion": "conversion",
        "portrait": "Portrait (important value vs everyone)",
    },
}
BLUE, ORANGE, GREY = "#3b6fb6", "#e08a2c", "#8a8f98"


def esc(value) -> str:
    return html.escape("" if value is None else str(value))


def _bars(rows: list[dict], label: str, series: list[tuple[str, str, str]], width: int = 640) -> str:
    """Horizontal grouped bars; series = (key, legend, colour), values are shares 0..1."""
    bar, gap, left = 12, 10, 170
    height = len(rows) * (bar * len(series) + gap) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    for index, (_, legend, colour) in enumerate(series):
        parts.append(f'<rect x="{left + index * 140}" y="4" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{left + 14 + index * 140}" y="13" font-size="11">{esc(legend)}</text>')
    y = 24
    for row in rows:
        parts.append(
            f'<text x="{left - 6}" y="{y + bar}" font-size="12" text-anchor="end">{esc(row[label])}</text>'
        )
        for key, _, colour in series:
            value = float(row.get(key) or 0)
            length = max(1.0, value * (width - left - 60))
            parts.append(
                f'<rect x="{left}" y="{y}" width="{length:.1f}" height="{bar - 2}" fill="{colour}"/>'
            )
            parts.append(
                f'<text x="{left + length + 4:.1f}" y="{y + bar - 3}" font-size="10">{value:.1%}</text>'
            )
            y += bar
        y += gap
    parts.append("</svg>")
    return "".join(parts)


def _pareto(points: list[dict], width: int = 420, height: int = 300) -> str:
    pad = 36
    scale_x = lambda v: pad + v * (width - 2 * pad)  # noqa: E731
    scale_y = lambda v: height - pad - v * (height - 2 * pad)  # noqa: E731
    path = " ".join(f"{scale_x(p['customer_share']):.1f},{scale_y(p['revenue_share']):.1f}" for p in points)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="{GREY}"/>'
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="{GREY}"/>'
        f'<line x1="{scale_x(0)}" y1="{scale_y(0)}" x2="{scale_x(1)}" y2="{scale_y(1)}" stroke="{GREY}" stroke-dasharray="4"/>'
        f'<line x1="{pad}" y1="{scale_y(0.8):.1f}" x2="{width - pad}" y2="{scale_y(0.8):.1f}" stroke="{ORANGE}" stroke-dasharray="2"/>'
        f'<text x="{width - pad}" y="{scale_y(0.8) - 4:.1f}" font-size="10" text-anchor="end">80%</text>'
        f'<polyline fill="none" stroke="{BLUE}" stroke-width="2" points="{scale_x(0)},{scale_y(0)} {path}"/>'
        f'<text x="{width / 2}" y="{height - 8}" font-size="11" text-anchor="middle">customers →</text>'
        f'<text x="12" y="{height / 2}" font-size="11" transform="rotate(-90 12 {height / 2})" text-anchor="middle">revenue →</text>'
        "</svg>"
    )


def _heat_table(
    rows: list[dict],
    row_key: str,
    column_key: str,
    value_key: str,
    fmt: str,
    t: dict,
    row_title: str,
    column_title: str,
) -> str:
    row_values = sorted({r[row_key] for r in rows}, key=str)
    column_values = sorted({r[column_key] for r in rows}, key=str)
    cells = {(r[row_key], r[column_key]): r[value_key] for r in rows}
    top = max([float(v) for v in cells.values() if v is not None] or [1]) or 1
    head = "".join(f"<th>{esc(c)}</th>" for c in column_values)
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
        body.append(f"<tr><th>{esc(row_value)}</th>{''.join(tds)}</tr>")
    return f'<table class="heat"><tr><th>{esc(row_title)} \\ {esc(column_title)}</th>{head}</tr>{"".join(body)}</table>'


def _funnel(rows: list[dict], t: dict, width: int = 640) -> str:
    top = max([r["reached"] for r in rows] or [1]) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{len(rows) * 34 + 10}" role="img">'
    ]
    for index, row in enumerate(rows):
        length = max(2.0, (width - 260) * row["reached"] / top)
        x = 130 + (width - 260 - length) / 2
        y = 6 + index * 34
        conversion = (
            f"{row['conversion_from_previous']:.1%}" if row["conversion_from_previous"] is not None else ""
        )
        parts.append(f'<rect x="{x:.1f}" y="{y}" width="{length:.1f}" height="26" fill="{BLUE}" rx="3"/>')
        parts.append(
            f'<text x="124" y="{y + 17}" font-size="12" text-anchor="end">{esc(row["stage"])}</text>'
        )
        parts.append(
            f'<text x="{width - 120}" y="{y + 17}" font-size="11">{row["reached"]:,}  {conversion}</text>'
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


def build_report(settings: Settings) -> str:
    language = str(settings.get("report.language"))
    t = TEXT.get(language, TEXT["en"])
    with Warehouse(settings).read() as con:
        as_of = con.execute("select max(as_of_date) from customer_features").fetchall()[0][0]
        total = con.execute("select count(*) from customer_features").fetchall()[0][0]
        summary = fetch_dicts(
            con,
            "select model, segment, segment_label, customers, customer_share, revenue_share from segment_summary "
            "order by model, revenue_share desc nulls last, customers desc",
        )
        pareto = fetch_dicts(
            con,
            "with ranked as (select total_spend, row_number() over (order by total_spend desc, customer_key) as r, "
            "count(*) over () as n, sum(total_spend) over (order by total_spend desc, customer_key "
            "rows between unbounded preceding and current row) as running, sum(total_spend) over () as overall "
            "from customer_features where order_count > 0) "
            "select cast(r as double) / n as customer_share, cast(running / nullif(overall, 0) as double) as revenue_share "
            "from ranked where r % greatest(1, n // 100) = 0 or r = n order by r",
        )
        rfm = fetch_dicts(
            con,
            "select r_score, f_score, count(*) as customers from customer_segments where model = 'rfm' "
            "and r_score is not null group by 1, 2",
        )
        funnel = fetch_dicts(con, "select * from funnel_summary order by stage_order")
        migration = fetch_dicts(
            con,
            "select from_segment, to_segment, customers from segment_migration where model = 'value_frequency' "
            "and as_of_date = (select max(as_of_date) from segment_migration)",
        )
        channels = fetch_dicts(con, "select * from channel_conversion order by contacts desc")
        cohorts = fetch_dicts(
            con,
            "select strftime(cohort_month, '%Y-%m') as cohort, months_since_first, retention_rate "
            "from cohort_retention where months_since_first <= 6",
        )
        portrait = fetch_dicts(
            con,
            "with base as (select f.customer_key, coalesce(f.gender, '?') as gender, coalesce(f.city, '?') as city, "
            "coalesce(f.source_channel, '?') as source_channel, s.segment from customer_features as f "
            "join customer_segments as s on f.customer_key = s.customer_key and s.model = 'value_frequency') "
            "select 'city' as dimension, city as value, avg(case when segment = 'important_value' then 1.0 else 0 end) "
            "* count(*) / nullif((select count(*) from base where segment = 'important_value'), 0) as segment_share, "
            "count(*) * 1.0 / (select count(*) from base) as base_share from base group by city "
            "order by segment_share desc limit 8",
        )

    sections = [
        f"<h1>{esc(t['title'])}</h1><p>{esc(t['as_of'])} {esc(as_of)} · {total:,} {esc(t['customers'])}</p>"
    ]
    models = []
    for row in summary:
        if row["model"] not in models:
            models.append(row["model"])
    for model in models:
        rows = [r for r in summary if r["model"] == model]
        sections.append(f"<h2>{esc(t['segments'])}: {esc(model)}</h2>")
        sections.append(
            _bars(
                rows,
                "segment_label",
                [
                    ("customer_share", t["customer_share"], BLUE),
                    ("revenue_share", t["revenue_share"], ORANGE),
                ],
            )
        )
    sections.append(f"<h2>{esc(t['pareto'])}</h2>{_pareto(pareto)}")
    sections.append(
        f"<h2>{esc(t['rfm'])}</h2>{_heat_table(rfm, 'r_score', 'f_score', 'customers', ',.0f', t, 'R', 'F')}"
    )
    sections.append(f"<h2>{esc(t['funnel'])}</h2>{_funnel(funnel, t)}")
    sections.append(f"<h2>{esc(t['migration'])}</h2>")
    sections.append(
        _heat_table(migration, "from_segment", "to_segment", "customers", ",.0f", t, t["from"], t["to"])
        if migration
        else f"<p>{esc(t['no_previous'])}</p>"
    )
    sections.append(f"<h2>{esc(t['channels'])}</h2>")
    sections.append(_bars(channels, "source_channel", [("order_share", t["order_share"], BLUE)]))
    sections.append(
        _table(
            channels,
            [
                ("source_channel", t["channel"], ""),
                ("contacts", t["contacts"], ",d"),
                ("order_share", t["order_share"], ".1%"),
                ("median_days_to_first_order", t["median_days"], ".1f"),
            ],
        )
    )
    sections.append(f"<h2>{esc(t['cohorts'])}</h2>")
    sections.append(
        _heat_table(
            cohorts, "cohort", "months_since_first", "retention_rate", ".1%", t, t["cohort"], t["month"]
        )
    )
    sections.append(f"<h2>{esc(t['portrait'])}</h2>")
    sections.append(
        _bars(portrait, "value", [("segment_share", "important_value", ORANGE), ("base_share", "all", GREY)])
    )
    style = (
        "body{font-family:'Noto Sans CJK SC','PingFang SC','Microsoft YaHei',sans-serif;margin:24px;color:#222;max-width:980px}"
        "h1{font-size:22px}h2{font-size:16px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}"
        "table{border-collapse:collapse;font-size:12px;margin:6px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}"
        "th{background:#f4f5f7}svg{display:block;margin:6px 0}"
    )
    return (
        f'<!DOCTYPE html><html lang="{esc(language)}"><head><meta charset="utf-8"><title>{esc(t["title"])}</title>'
        f"<style>{style}</style></head><body>{''.join(sections)}</body></html>"
    )


def write_report(settings: Settings, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_text(build_report(settings), encoding="utf-8")
    os.replace(temporary, path)
    return path
