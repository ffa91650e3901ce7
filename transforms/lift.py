"""`segflow pack lift`: what an export's contacted members did against its holdout.

Two estimates of the spend per customer lift, each with a 95% interval:
- raw: the difference of the groups' mean spend in the N days after the export;
- CUPED (Deng et al., 2013): each customer's spend minus theta x (their spend in the N days before
  the export - the mean of it), theta = cov(pre, post) / var(pre) over both groups. The holdout is
  random, so the adjustment keeps the estimate unbiased and removes the part of the variance that
  pre-period spend predicts: the customers' habits, not the campaign.
The warehouse returns each group's sums (n, sum and sum of squares of both periods, their cross
products); the estimates are computed from those, never from rows in Python.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from transforms.engines import open_warehouse
from transforms.errors import SegflowError
from transforms.settings import Settings

Z95 = 1.959964


@dataclass(frozen=True)
class GroupSums:
    """One group's sums over its customers: y is spend after the export, x spend before it."""

    n: int
    sum_y: float
    sum_y2: float
    sum_x: float
    sum_x2: float
    sum_xy: float

    def mean_y(self) -> float:
        return self.sum_y / self.n

    def var(self, a: str, b: str) -> float:
        """Sample (co)variance of two of x, y within the group."""
        sums = {"x": self.sum_x, "y": self.sum_y}
        cross = {"xx": self.sum_x2, "yy": self.sum_y2, "xy": self.sum_xy, "yx": self.sum_xy}[a + b]
        return (cross - sums[a] * sums[b] / self.n) / (self.n - 1)


def estimate(contacted: GroupSums, holdout: GroupSums) -> dict:
    """Raw and CUPED spend per customer lift with 95% intervals (normal approximation)."""
    for group, name in ((contacted, "contacted"), (holdout, "holdout")):
        if group.n < 2:
            raise SegflowError(
                f"the {name} group has {group.n} customer(s): at least 2 are needed for an interval"
            )
    raw = contacted.mean_y() - holdout.mean_y()
    raw_var = contacted.var("y", "y") / contacted.n + holdout.var("y", "y") / holdout.n
    pooled = GroupSums(*(getattr(contacted, f) + getattr(holdout, f) for f in GroupSums.__dataclass_fields__))
    pre_var = pooled.var("x", "x")
    theta = pooled.var("x", "y") / pre_var if pre_var > 0 else 0.0
    mean_x = pooled.sum_x / pooled.n

    def adjusted(group: GroupSums) -> tuple[float, float]:
        mean = group.mean_y() - theta * (group.sum_x / group.n - mean_x)
        var = group.var("y", "y") + theta**2 * group.var("x", "x") - 2 * theta * group.var("x", "y")
        return mean, max(var, 0.0) / group.n

    (c_mean, c_var), (h_mean, h_var) = adjusted(contacted), adjusted(holdout)
    cuped = c_mean - h_mean
    return {
        "raw": {"lift": raw, "ci95": _interval(raw, raw_var)},
        "cuped": {"lift": cuped, "ci95": _interval(cuped, c_var + h_var), "theta": theta},
    }


def _interval(estimate: float, variance: float) -> list[float]:
    margin = Z95 * math.sqrt(max(variance, 0.0))
    return [estimate - margin, estimate + margin]


LIFT_SQL = """
with members as (
    select customer_key, in_holdout from pub.audience_pack_members where export_id = ?
),
periods as (
    select customer_key,
        sum(case when order_date >= ? then spend else 0 end) as post_spend,
        sum(case when order_date < ? then spend else 0 end) as pre_spend,
        sum(case when order_date >= ? then orders else 0 end) as post_orders
    from pub.customer_daily_spend
    where order_date >= ? and order_date < ?
        and customer_key in (select customer_key from members)
    group by customer_key
),
joined as (
    select members.in_holdout,
        cast(coalesce(periods.post_spend, 0) as double) as y,
        cast(coalesce(periods.pre_spend, 0) as double) as x,
        coalesce(periods.post_orders, 0) as orders
    from members left join periods on members.customer_key = periods.customer_key
)
select in_holdout, count(*), sum(y), sum(y * y), sum(x), sum(x * x), sum(x * y),
    sum(orders), sum(case when orders > 0 then 1 else 0 end)
from joined group by in_holdout
"""


def lift(settings: Settings, pack_name: str, export_id: str, days: int, pre_days: int | None = None) -> dict:
    """Orders, spend and conversion per group in the N days from the export's as-of date, with the
    raw and CUPED spend lift and the conversion lift. CUPED's pre-period is the `pre_days` (default
    N) days before the export: longer for packs that select on recent inactivity (a win-back pack's
    members spent nothing in the 30 days before it, which predicts nothing)."""
    pre_days = days if pre_days is None else pre_days
    if days < 1 or pre_days < 1:
        raise SegflowError(f"--days {days} --pre-days {pre_days}: at least 1 each")
    with open_warehouse(settings).read() as con:
        found = con.execute(
            "select as_of_date from pub.audience_pack_exports where pack = ? and export_id = ?",
            [pack_name, export_id],
        ).fetchall()
        if not found:
            raise SegflowError(f"no export '{export_id}' of pack '{pack_name}' in audience_pack_exports")
        start: date = found[0][0]
        before, after = (
            date.fromordinal(start.toordinal() - pre_days),
            date.fromordinal(start.toordinal() + days),
        )
        rows = con.execute(LIFT_SQL, [export_id, start, start, start, before, after]).fetchall()
    groups = {bool(r[0]): r for r in rows}
    if True not in groups or False not in groups:
        raise SegflowError(
            f"export {export_id} has no holdout group (holdout_share 0): lift cannot be measured"
        )
    sums = {key: GroupSums(int(r[1]), *(float(v or 0) for v in r[2:7])) for key, r in groups.items()}
    spend = estimate(sums[False], sums[True])

    def group(key: bool) -> dict:
        row, s = groups[key], sums[key]
        return {
            "customers": s.n,
            "orders": int(row[7] or 0),
            "revenue": round(s.sum_y, 2),
            "spend_per_customer": round(s.mean_y(), 4),
            "pre_period_spend_per_customer": round(s.sum_x / s.n, 4),
            "conversion": round(int(row[8] or 0) / s.n, 4),
        }

    contacted, holdout = group(False), group(True)
    conv = contacted["conversion"] - holdout["conversion"]
    conv_var = sum(g["conversion"] * (1 - g["conversion"]) / g["customers"] for g in (contacted, holdout))
    return {
        "pack": pack_name,
        "export_id": export_id,
        "window": f"{start} .. {days} days (pre-period: the {pre_days} days before)",
        "contacted": contacted,
        "holdout": holdout,
        "spend_per_customer_lift": round(spend["raw"]["lift"], 4),
        "spend_per_customer_lift_95ci": [round(v, 4) for v in spend["raw"]["ci95"]],
        "cuped_spend_per_customer_lift": round(spend["cuped"]["lift"], 4),
        "cuped_spend_per_customer_lift_95ci": [round(v, 4) for v in spend["cuped"]["ci95"]],
        "cuped_theta": round(spend["cuped"]["theta"], 6),
        "conversion_lift": round(conv, 4),
        "conversion_lift_95ci": [round(v, 4) for v in _interval(conv, conv_var)],
    }
