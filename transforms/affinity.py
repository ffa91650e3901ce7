"""`segflow affinity CATEGORY`: the categories its buyers also bought, from category_affinity."""

from __future__ import annotations

import difflib

from transforms.engines import open_warehouse
from transforms.errors import SegflowError
from transforms.settings import Settings

COLUMNS = [
    "level",
    "category",
    "related_category",
    "buyers_of_category",
    "buyers_of_related",
    "buyers_of_both",
    "customers",
    "support",
    "confidence",
    "lift",
]


def top_affinities(settings: Settings, category: str, top: int = 10, level: str | None = None) -> dict:
    """The `top` related categories of `category` (a category or a subcategory, or one `level`),
    by lift, then confidence, then buyers of both."""
    if level not in (None, "category", "subcategory"):
        raise SegflowError(f"--level {level}: levels are category and subcategory")
    if top < 1:
        raise SegflowError(f"--top {top}: at least 1")
    levels = [level] if level else ["category", "subcategory"]
    placeholders = ", ".join("?" for _ in levels)
    with open_warehouse(settings).read() as con:
        as_of = con.scalar("select max(as_of_date) from category_affinity")
        rows = con.fetch_dicts(
            f"select {', '.join(COLUMNS)} from category_affinity "
            f"where category = ? and level in ({placeholders}) "
            "order by level, lift desc, confidence desc, buyers_of_both desc, related_category",
            [category, *levels],
        )
        if not rows:
            known = [
                r[0]
                for r in con.execute("select distinct category from category_affinity order by 1").fetchall()
            ]
    if not rows:
        nearest = difflib.get_close_matches(category, known, n=3, cutoff=0.3)
        hint = f"; did you mean {', '.join(nearest)}?" if nearest else ""
        raise SegflowError(
            f"no buyers of '{category}' bought another {' or '.join(levels)} within affinity.window_days "
            f"as of {as_of}{hint}"
        )
    kept = []
    for name in levels:
        kept += [row for row in rows if row["level"] == name][:top]
    return {"category": category, "as_of": as_of, "pairs": kept}
