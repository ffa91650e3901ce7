"""Deterministic sample data for a tea and skin-care brand, written as daily landing files.

Vectorised with numpy: the same seed and size always give the same files. Orders arrive late,
twice, and change status after they were first delivered; people appear under several
identifiers; a shop phone is shared by many buyers; some contacts never order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.generate_events import write_events
from transforms.landing_files import ids, maybe, pick, timestamps, write_daily

SHOP_PHONE = "13800000000"
CHANNELS = np.array(["wecom", "miniprogram", "tmall", "douyin", "offline", "referral"])
CHANNEL_WEIGHTS = np.array([0.22, 0.28, 0.2, 0.15, 0.1, 0.05])
CITIES = np.array(["上海", "北京", "杭州", "广州", "深圳", "成都", "南京", "武汉", "苏州", "西安"])
OCCUPATIONS = np.array(["学生", "白领", "自由职业", "教师", "医生", "企业主"])
LIFE_STAGES = np.array(["单身", "新婚", "宝妈", "有娃家庭", "空巢"])
TOPICS = np.array(["白茶", "乌龙", "绿茶", "护肤", "面膜", "送礼", "冲泡技巧"])
QUESTIONS = {
    "年龄段": np.array(["18-24", "25-34", "35-44", "45+"]),
    "身份": np.array(["学生", "上班族", "宝妈"]),
    "肤质": np.array(["油皮", "干皮", "混合皮", "敏感肌"]),
}
# sku, name, category, subcategory, price_line, list_price, consumption cycle in days (0: none)
PRODUCTS = [
    ("TEA-JAS-P", "特级茉莉花茶", "茶", "茉莉花茶", "premium", 298, 30),
    ("TEA-JAS-V", "茉莉花茶", "茶", "茉莉花茶", "value", 88, 30),
    ("TEA-OOL-P", "大红袍礼盒", "茶", "乌龙茶", "premium", 588, 45),
    ("TEA-OOL-V", "铁观音", "茶", "乌龙茶", "value", 128, 30),
    ("TEA-WHT-P", "白毫银针", "茶", "白茶", "premium", 468, 60),
    ("TEA-WHT-V", "寿眉", "茶", "白茶", "value", 98, 30),
    ("TEA-GRN-P", "明前龙井", "茶", "绿茶", "premium", 398, 30),
    ("TEA-GRN-V", "碧螺春", "茶", "绿茶", "value", 108, 30),
    ("TEA-BLK-P", "正山小种礼盒", "茶", "红茶", "premium", 358, 45),
    ("TEA-BLK-V", "滇红", "茶", "红茶", "value", 78, 30),
    ("SKN-MSK-P", "修护面膜(10片)", "护肤", "面膜", "premium", 268, 30),
    ("SKN-MSK-V", "补水面膜(5片)", "护肤", "面膜", "value", 69, 15),
    ("SKN-SER-P", "精华液", "护肤", "精华", "premium", 520, 60),
    ("SKN-CLN-V", "洁面乳", "护肤", "洁面", "value", 89, 60),
    ("GFT-SET-P", "茶具礼盒", "礼品", "茶具", "premium", 699, 0),
]


@dataclass(frozen=True)
class GenerateResult:
    out_dir: Path
    orders: int
    order_rows: int
    contacts: int
    people: int
    days: int
    first_day: date
    last_day: date


# Above this many orders the data is generated in independent parts (distinct people and order ids,
# one seed each) so memory stays bounded by the part, not the total: 100M orders fit on one machine.
ORDERS_PER_PART = 5_000_000


def generate(
    out_dir: Path,
    orders: int = 20_000,
    days: int = 365,
    last_day: date = date(2026, 6, 30),
    seed: int = 7,
    fmt: str = "csv",
) -> GenerateResult:
    out_dir.mkdir(parents=True, exist_ok=True)
    first_day = last_day - timedelta(days=days - 1)
    parts = -(-orders // ORDERS_PER_PART)
    if parts == 1:
        return _generate_part(out_dir, orders, days, first_day, last_day, seed, fmt, Part())
    results = []
    for number in range(parts):
        part_orders = orders // parts + (1 if number < orders % parts else 0)
        part = Part(
            number=number,
            person_offset=sum(r.people for r in results),
            order_offset=sum(r.orders for r in results),
            file_suffix=f"_part{number:03d}",
        )
        results.append(
            _generate_part(out_dir, part_orders, days, first_day, last_day, seed + number, fmt, part)
        )
    return GenerateResult(
        out_dir=out_dir,
        orders=orders,
        order_rows=sum(r.order_rows for r in results),
        contacts=sum(r.contacts for r in results),
        people=sum(r.people for r in results),
        days=days,
        first_day=first_day,
        last_day=last_day,
    )


@dataclass(frozen=True)
class Part:
    """Which slice of a large data set is generated: its people and order ids do not overlap others'."""

    number: int = 0
    person_offset: int = 0
    order_offset: int = 0
    file_suffix: str = ""


def _generate_part(
    out_dir: Path, orders: int, days: int, first_day: date, last_day: date, seed: int, fmt: str, part: Part
) -> GenerateResult:
    rng = np.random.default_rng(seed)
    n_people = max(60, orders // 7)
    person = np.arange(n_people)
    number = person + part.person_offset  # what identifiers are made of; `person` indexes arrays

    # -- people and their identifiers --------------------------------------------------------
    # 7919 is coprime to the 6e9-number span 130..189, so phones stay unique and 11 digits for any size.
    phones = (13_000_000_001 + number * 7919 % 6_000_000_000).astype(np.int64).astype(str)
    has_phone = rng.random(n_people) < 0.85
    has_unionid = rng.random(n_people) < 0.7
    has_email = rng.random(n_people) < 0.25
    has_member = rng.random(n_people) < 0.35
    has_unionid |= ~(has_phone | has_email | has_member)
    unionids = ids("oU", number)
    emails = np.char.add(ids("user", number, 6), "@example.com")
    members = ids("M", number, 7)
    pref_channel = pick(rng, CHANNELS, n_people, CHANNEL_WEIGHTS)
    # Buyers: 75% of people; weights make a minority of heavy buyers.
    is_buyer = rng.random(n_people) < 0.75
    is_buyer[0] = True
    buyers = person[is_buyer]
    weights = rng.pareto(1.6, len(buyers)) + 0.3
    weights /= weights.sum()
    signup_day = rng.integers(0, days, n_people)
    # Orders spread evenly over the period; a buyer signed up up to a month before their first order.
    buyer = rng.choice(buyers, size=orders, p=weights)
    order_day = rng.integers(0, days, orders)
    first_order_day = np.full(n_people, days)
    np.minimum.at(first_order_day, buyer, order_day)
    lead = rng.integers(0, 31, n_people)
    signup_day = np.minimum(signup_day, np.maximum(first_order_day - lead, 0))

    people = People(
        number=number,
        person=person,
        is_buyer=is_buyer,
        has_phone=has_phone,
        has_unionid=has_unionid,
        has_email=has_email,
        has_member=has_member,
        phones=phones,
        unionids=unionids,
        emails=emails,
        members=members,
        pref_channel=pref_channel,
        signup_day=signup_day,
    )
    nc = _write_contacts(rng, people, out_dir, first_day, fmt, part.file_suffix)

    # -- products ----------------------------------------------------------------------------
    products = pa.table(
        {
            "sku": [p[0] for p in PRODUCTS],
            "product_name": [p[1] for p in PRODUCTS],
            "category": [p[2] for p in PRODUCTS],
            "subcategory": [p[3] for p in PRODUCTS],
            "price_line": [p[4] for p in PRODUCTS],
            "list_price": [float(p[5]) for p in PRODUCTS],
            "cycle_days": [p[6] or None for p in PRODUCTS],
        }
    )
    if part.number == 0:  # one catalog for the whole data set
        write_daily(products, np.zeros(len(PRODUCTS), dtype=np.int64), out_dir, "products", first_day, fmt)

    facts = _order_facts(rng, people, buyer, order_day, orders, days, first_day, part)
    order_rows = _write_order_versions(
        rng, facts, people, orders, days, out_dir, first_day, fmt, part.file_suffix
    )
    items = pa.table(
        {
            "order_id": pa.array(facts.order_ids[facts.item_order]),
            "sku": pa.array(np.array([p[0] for p in PRODUCTS])[facts.sku_index]),
            "quantity": pa.array(facts.quantity),
            "price": pa.array(facts.list_price),
        }
    )
    write_daily(
        items, facts.arrival_day[facts.item_order], out_dir, "order_items", first_day, fmt, part.file_suffix
    )

    # -- engagement events --------------------------------------------------------------------
    write_events(rng, out_dir, first_day, days, fmt, people, part.file_suffix)

    return GenerateResult(
        out_dir=out_dir,
        orders=orders,
        order_rows=order_rows,
        contacts=nc,
        people=n_people,
        days=days,
        first_day=first_day,
        last_day=last_day,
    )


@dataclass(frozen=True)
class People:
    """Everyone in a part: their identifiers, preferred channel, whether they buy, when they signed up."""

    number: np.ndarray
    person: np.ndarray
    is_buyer: np.ndarray
    has_phone: np.ndarray
    has_unionid: np.ndarray
    has_email: np.ndarray
    has_member: np.ndarray
    phones: np.ndarray
    unionids: np.ndarray
    emails: np.ndarray
    members: np.ndarray
    pref_channel: np.ndarray
    signup_day: np.ndarray


@dataclass(frozen=True)
class OrderFacts:
    """What each order of a part is (final status, amounts, identifiers) before versions are written."""

    order_ids: object
    created: object
    paid_at: object
    paid_mask: object
    first_status: object
    final_visible: object
    changes_later: object
    change_day: object
    changed_at: object
    arrival_day: object
    refund_amount: object
    amount: object
    channel: object
    is_gift: object
    order_phone: object
    use_unionid: object
    use_email: object
    use_member: object
    shop: object
    buyer: object
    item_order: object
    sku_index: object
    quantity: object
    list_price: object


def _write_contacts(rng, people: People, out_dir: Path, first_day: date, fmt: str, suffix: str) -> int:
    """Contact records: most people, some twice under different identifiers; returns how many."""
    n_people = len(people.person)
    # -- contacts: most people, some twice under different identifiers -------------------------
    has_contact = rng.random(n_people) < 0.85
    has_contact |= ~people.is_buyer
    contact_person = people.person[has_contact]
    twice = contact_person[(rng.random(len(contact_person)) < 0.1) & people.has_unionid[contact_person]]
    contact_rows = np.concatenate([contact_person, twice])
    second = np.concatenate([np.zeros(len(contact_person), bool), np.ones(len(twice), bool)])
    nc = len(contact_rows)
    consent_roll = rng.random(nc)
    contacts = pa.table(
        {
            # A second contact row carries only the unionid (a WeCom add), the first all identifiers.
            "phone": pa.array(
                np.where(people.has_phone[contact_rows] & ~second, people.phones[contact_rows], None)
            ),
            "unionid": pa.array(
                np.where(people.has_unionid[contact_rows], people.unionids[contact_rows], None)
            ),
            "email": pa.array(
                np.where(people.has_email[contact_rows] & ~second, people.emails[contact_rows], None)
            ),
            "member_id": pa.array(
                np.where(people.has_member[contact_rows] & ~second, people.members[contact_rows], None)
            ),
            # WeCom's id of the person as the brand's external contact, given when staff add them.
            "external_userid": pa.array(
                np.where(second, np.char.add("wmDemo", np.char.zfill(contact_rows.astype(str), 22)), None)
            ),
            "source_channel": pa.array(people.pref_channel[contact_rows]),
            "signup_at": timestamps(
                people.signup_day[contact_rows], rng.integers(0, 86400, nc), first_day, "UTC"
            ),
            "gender": pa.array(maybe(rng, pick(rng, np.array(["女", "男"]), nc, [0.68, 0.32]), 0.9)),
            "birthday": pa.array(
                (np.datetime64("1970-01-01") + rng.integers(0, 365 * 35, nc).astype("timedelta64[D]")).astype(
                    "datetime64[D]"
                )
            ),
            "city": pa.array(pick(rng, CITIES, nc)),
            "occupation": pa.array(maybe(rng, pick(rng, OCCUPATIONS, nc), 0.6)),
            "life_stage": pa.array(maybe(rng, pick(rng, LIFE_STAGES, nc), 0.5)),
            "opted_out": pa.array(rng.random(nc) < 0.05),
            "marketing_consent": pa.array(
                np.where(consent_roll < 0.7, "true", np.where(consent_roll < 0.75, "false", None))
            ),
        }
    )
    write_daily(contacts, people.signup_day[contact_rows], out_dir, "contacts", first_day, fmt, suffix)

    return nc


def _order_facts(
    rng, people: People, buyer, order_day, orders: int, days: int, first_day: date, part: Part
) -> OrderFacts:
    """Each order's channel, identifiers, lines, amount and status history, drawn in a fixed order."""
    # -- orders ------------------------------------------------------------------------------
    hour_mix = rng.choice(24, size=orders, p=_hour_weights())
    order_second = hour_mix * 3600 + rng.integers(0, 3600, orders)
    channel = np.where(
        rng.random(orders) < 0.7, people.pref_channel[buyer], pick(rng, CHANNELS, orders, CHANNEL_WEIGHTS)
    )
    order_ids = ids("O", np.arange(orders) + 1 + part.order_offset, 9)
    # Which identifier an order carries depends on the channel it came through.
    wants_unionid = np.isin(channel, ["wecom", "miniprogram"])
    use_member = (channel == "offline") & people.has_member[buyer]
    use_unionid = ~use_member & wants_unionid & people.has_unionid[buyer]
    use_phone = ~use_member & ~use_unionid & people.has_phone[buyer]
    # Buyers lacking the channel's usual identifier order under another one they have.
    use_unionid |= ~(use_member | use_unionid | use_phone) & people.has_unionid[buyer]
    use_member |= ~(use_member | use_unionid | use_phone) & people.has_member[buyer]
    use_email = ~(use_member | use_unionid | use_phone)
    # Mini-program orders also record the phone the buyer gave: this links unionid and phone.
    also_phone = use_unionid & people.has_phone[buyer] & (rng.random(orders) < 0.5)
    order_phone = np.where(use_phone | also_phone, people.phones[buyer], None).astype(object)
    # A shop phone typed in by staff for walk-in buyers: the junk identifier to guard against.
    shop = rng.random(orders) < 0.004
    order_phone[shop] = SHOP_PHONE

    # Items: 1-3 lines per order, skewed towards tea.
    n_items = rng.choice([1, 2, 3], size=orders, p=[0.6, 0.3, 0.1])
    item_order = np.repeat(np.arange(orders), n_items)
    sku_index = rng.choice(len(PRODUCTS), size=len(item_order), p=_product_weights())
    quantity = rng.choice([1, 2, 3], size=len(item_order), p=[0.75, 0.2, 0.05])
    list_price = np.array([p[5] for p in PRODUCTS], dtype=np.float64)[sku_index]
    line_amount = list_price * quantity
    gross = np.bincount(item_order, weights=line_amount, minlength=orders)
    amount = np.round(gross * rng.uniform(0.85, 1.0, orders), 2)
    amount[rng.random(orders) < 0.005] = 0.0  # free samples (0元试用): orders with zero spend
    is_gift = rng.random(orders) < np.where(np.isin(channel, ["tmall", "wecom"]), 0.2, 0.08)

    # Final status and when it was reached.
    roll = rng.random(orders)
    recent = order_day >= days - 2
    status = np.select(
        [roll < 0.05, roll < 0.10, roll < 0.14, roll < 0.17, recent & (roll < 0.5)],
        ["created", "cancelled", "refunded", "partially_refunded", "paid"],
        default="completed",
    )
    refund_amount = np.where(
        status == "refunded",
        amount,
        np.where(status == "partially_refunded", np.round(amount * 0.3, 2), np.nan),
    )
    change_lag = rng.integers(1, 15, orders)
    change_day = order_day + change_lag
    changes_later = np.isin(status, ["completed", "refunded", "partially_refunded"]) & (change_day < days)
    first_status = np.where(changes_later, "paid", status)
    first_status = np.where(
        ~changes_later & np.isin(status, ["refunded", "partially_refunded", "completed"]),
        "paid",
        first_status,
    )
    final_visible = np.where(changes_later, status, first_status)

    created = timestamps(order_day, order_second, first_day, "UTC")
    paid_at = timestamps(order_day, order_second + 120, first_day, "UTC")
    paid_mask = ~np.isin(first_status, ["created", "cancelled"])
    changed_at = timestamps(change_day, rng.integers(0, 86400, orders), first_day, "UTC")
    arrival_day = np.minimum(order_day + (rng.random(orders) < 0.02) * rng.integers(1, 4, orders), days - 1)

    return OrderFacts(
        order_ids=order_ids,
        created=created,
        paid_at=paid_at,
        paid_mask=paid_mask,
        first_status=first_status,
        final_visible=final_visible,
        changes_later=changes_later,
        change_day=change_day,
        changed_at=changed_at,
        arrival_day=arrival_day,
        refund_amount=refund_amount,
        amount=amount,
        channel=channel,
        is_gift=is_gift,
        order_phone=order_phone,
        use_unionid=use_unionid,
        use_email=use_email,
        use_member=use_member,
        shop=shop,
        buyer=buyer,
        item_order=item_order,
        sku_index=sku_index,
        quantity=quantity,
        list_price=list_price,
    )


def _order_rows(
    facts: OrderFacts,
    people: People,
    index: np.ndarray,
    version_status: np.ndarray,
    updated: pa.Array,
    with_refund: bool,
) -> pa.Table:
    """One delivered version of the orders at `index`."""
    refund = facts.refund_amount[index] if with_refund else np.full(len(index), np.nan)
    return pa.table(
        {
            "order_id": pa.array(facts.order_ids[index]),
            "created_at": facts.created.take(pa.array(index)),
            "updated_at": updated,
            "paid_at": pa.array(
                np.where(
                    facts.paid_mask[index],
                    facts.paid_at.take(pa.array(index)).to_numpy(zero_copy_only=False),
                    None,
                ),
                type=pa.timestamp("s", tz="UTC"),
            ),
            "status": pa.array(version_status),
            "amount": pa.array(facts.amount[index]),
            "refund_amount": pa.array(refund, mask=np.isnan(refund)),
            "refunded_at": pa.array(
                np.where(with_refund & ~np.isnan(refund), updated.to_numpy(zero_copy_only=False), None),
                type=pa.timestamp("s", tz="UTC"),
            ),
            "channel": pa.array(facts.channel[index]),
            "is_gift": pa.array(facts.is_gift[index]),
            "phone": pa.array(facts.order_phone[index]),
            "unionid": pa.array(
                np.where(
                    (facts.use_unionid[index] | facts.shop[index]) & people.has_unionid[facts.buyer[index]],
                    people.unionids[facts.buyer[index]],
                    None,
                )
            ),
            "email": pa.array(np.where(facts.use_email[index], people.emails[facts.buyer[index]], None)),
            "member_id": pa.array(
                np.where(facts.use_member[index], people.members[facts.buyer[index]], None)
            ),
        }
    )


def _write_order_versions(
    rng,
    facts: OrderFacts,
    people: People,
    orders: int,
    days: int,
    out_dir: Path,
    first_day: date,
    fmt: str,
    suffix: str,
) -> int:
    """Every delivered version of every order (first, later status changes, re-sent deliveries, a
    few corrupt rows as real exports have) as daily files; returns how many rows."""
    everyone = np.arange(orders)
    first_updated = pa.array(
        np.where(
            facts.paid_mask,
            facts.paid_at.to_numpy(zero_copy_only=False),
            facts.created.to_numpy(zero_copy_only=False),
        ),
        type=pa.timestamp("s", tz="UTC"),
    )
    first_versions = _order_rows(facts, people, everyone, facts.first_status, first_updated, False)
    later = everyone[facts.changes_later]
    second_versions = _order_rows(
        facts, people, later, facts.final_visible[later], facts.changed_at.take(pa.array(later)), True
    )
    # A re-sent delivery: 1% of first versions arrive again the next day, unchanged.
    resent = everyone[(rng.random(orders) < 0.01) & (facts.arrival_day < days - 1)]
    all_orders = pa.concat_tables([first_versions, second_versions, first_versions.take(pa.array(resent))])
    # Exports are never clean: about 1 row in 2,000 has a negative amount or lost its order id.
    corrupt = rng.random(all_orders.num_rows) < 0.0005
    negative = corrupt & (rng.random(all_orders.num_rows) < 0.5)
    amounts = all_orders.column("amount").to_numpy(zero_copy_only=False).copy()
    amounts[negative] = -amounts[negative]
    order_ids_kept = pc.if_else(
        pa.array(corrupt & ~negative),
        pa.scalar(None, pa.string()),
        all_orders.column("order_id").combine_chunks(),
    )
    all_orders = all_orders.set_column(
        all_orders.schema.get_field_index("amount"), "amount", pa.array(amounts)
    )
    all_orders = all_orders.set_column(
        all_orders.schema.get_field_index("order_id"), "order_id", order_ids_kept
    )
    all_days = np.concatenate([facts.arrival_day, facts.change_day[later], facts.arrival_day[resent] + 1])
    write_daily(all_orders, all_days, out_dir, "orders", first_day, fmt, suffix)

    return all_orders.num_rows


def _hour_weights() -> np.ndarray:
    weights = np.array(
        [1, 0.5, 0.3, 0.2, 0.2, 0.3, 0.8, 1.5, 2, 2.5, 3, 3, 3.5, 3, 2.5, 2.5, 2.5, 3, 3.5, 4.5, 5.5, 6, 5, 3]
    )
    return weights / weights.sum()


def _product_weights() -> np.ndarray:
    weights = np.array([3, 6, 2, 5, 2, 5, 2, 4, 2, 5, 3, 6, 1.5, 3, 0.8])
    return weights / weights.sum()
