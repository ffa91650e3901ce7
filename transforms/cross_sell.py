"""`action_cross_sell`: after a purchase with no consumption cycle, the after-sales content first,
then related categories the buyer has never bought (settings: actions.cross_sell).

The list is one query over customer_purchased_items: each configured item's latest purchase per
buyer within list_days, and one flag per related entry saying whether the buyer ever bought it.
The related entries a buyer lacks are named in the order the config gives them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from transforms.errors import SegflowError
from transforms.models import Model
from transforms.schema import ITEM_LEVELS
from transforms.settings import Settings
from transforms.sql import literal, ref

Item = tuple[str, str]  # (level, value): ('subcategory', '茶具')


@dataclass(frozen=True)
class CrossSellItem:
    item: Item
    content: str | None
    content_days: int
    related: tuple[Item, ...]


def cross_sell_items(settings: Settings) -> tuple[int, list[CrossSellItem]]:
    """(list_days, the configured items), checked: a bad entry is one line naming it and its field."""
    where = f"{settings.config_dir / 'settings.yml'}: actions.cross_sell"
    config = settings.get("actions.cross_sell") or {}
    if not isinstance(config, dict):
        raise SegflowError(f"{where} must be a mapping with list_days, content_days and items")
    list_days = _days(config.get("list_days", 60), f"{where}.list_days")
    content_days = _days(config.get("content_days", 7), f"{where}.content_days")
    items = []
    for number, entry in enumerate(config.get("items") or [], start=1):
        at = f"{where}.items #{number}"
        if not isinstance(entry, dict) or "item" not in entry or not entry.get("related"):
            raise SegflowError(f"{at}: give `item` ({{subcategory: ...}}) and a list of `related` categories")
        unknown = set(entry) - {"item", "content", "content_days", "related"}
        if unknown:
            raise SegflowError(
                f"{at}: unknown field(s) {', '.join(sorted(unknown))}; fields are item, content, content_days, related"
            )
        if not isinstance(entry["related"], list):
            raise SegflowError(f"{at}.related: a list such as [{{subcategory: 白茶}}, {{category: 护肤}}]")
        content = entry.get("content")
        if content is not None and (not isinstance(content, str) or not content.strip()):
            raise SegflowError(f"{at}.content: the name of the after-sales content, as text")
        items.append(
            CrossSellItem(
                item=item_of(entry["item"], f"{at}.item"),
                content=content.strip() if content else None,
                content_days=_days(entry.get("content_days", content_days), f"{at}.content_days"),
                related=tuple(item_of(r, f"{at}.related") for r in entry["related"]),
            )
        )
    return list_days, items


def item_of(value: object, at: str) -> Item:
    if not isinstance(value, dict) or len(value) != 1:
        raise SegflowError(
            f"{at}: name one of {', '.join(ITEM_LEVELS)} and its value, e.g. {{subcategory: 白茶}}"
        )
    ((level, name),) = value.items()
    if level not in ITEM_LEVELS:
        raise SegflowError(f"{at}: unknown level '{level}'; levels are {', '.join(ITEM_LEVELS)}")
    if not isinstance(name, str | int) or not str(name).strip():
        raise SegflowError(f"{at}: {level} needs a value")
    return (level, str(name).strip())


def _days(value: object, at: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SegflowError(f"{at}: a whole number of days (0 or more), not {value!r}")
    return value


def cross_sell_models(settings: Settings, variables: dict) -> list[Model]:
    list_days, items = cross_sell_items(settings)
    as_of = variables["as_of_date"]
    purchases = ref("customer_purchased_items")
    related = sorted({r for item in items for r in item.related})
    flags = (
        ", ".join(
            f"max(case when {level} = {literal(name)} then 1 else 0 end) as owns_{index}"
            for index, (level, name) in enumerate(related)
        )
        or "0 as owns_nothing"
    )
    latest = " union all ".join(
        f"select customer_key, {number} as item_number, max(last_bought_date) as purchase_date "
        f"from {purchases} where {item.item[0]} = {literal(item.item[1])} group by customer_key"
        for number, item in enumerate(items)
    )

    def per_item(column: Callable[[CrossSellItem], str]) -> str:
        whens = " ".join(f"when {number} then {column(item)}" for number, item in enumerate(items))
        return f"case latest.item_number {whens} end"

    def lacking(item: CrossSellItem) -> list[str]:
        return [f"case when owned.owns_{related.index(r)} = 0 then {literal(r[1])} end" for r in item.related]

    days_since = f"date_diff('day', latest.purchase_date, {as_of})"
    sql = f"""
with latest as ({latest or "select cast(null as varchar) as customer_key, 0 as item_number, cast(null as date) as purchase_date where false"}),
owned as (
    select customer_key, {flags}
    from {purchases}
    where customer_key in (select customer_key from latest)
    group by customer_key
),
listed as (
    select
        latest.customer_key,
        {per_item(lambda item: literal(item.item[0]))} as item_level,
        {per_item(lambda item: literal(item.item[1]))} as item,
        latest.purchase_date,
        {days_since} as days_since_purchase,
        case when {days_since} <= {per_item(lambda item: str(item.content_days))}
            then {per_item(lambda item: literal(item.content) if item.content else "cast(null as varchar)")} end as content,
        {per_item(lambda item: f"concat_ws(', ', {', '.join(lacking(item))})")} as related_not_bought,
        {per_item(lambda item: f"coalesce({', '.join(lacking(item))})")} as next_related
    from latest
    inner join owned on latest.customer_key = owned.customer_key
    where {days_since} <= {list_days}
)
select
    {as_of} as as_of_date,
    listed.customer_key,
    listed.item_level,
    listed.item,
    listed.purchase_date,
    listed.days_since_purchase,
    listed.content,
    listed.next_related,
    listed.related_not_bought,
    f.preferred_hour_band,
    f.opted_out,
    f.marketing_consent
from listed
inner join {ref("customer_features")} as f on listed.customer_key = f.customer_key
where listed.next_related is not null
"""
    return [Model(name="action_cross_sell", layer="marts", sql=sql)]
