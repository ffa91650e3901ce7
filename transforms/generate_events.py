"""Sample engagement events and manual tags: content views, questionnaires, campaigns, check-ins, referrals."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from transforms.landing_files import pick, timestamps, write_daily

TOPICS = np.array(["白茶", "乌龙", "绿茶", "护肤", "面膜", "送礼", "冲泡技巧"])


QUESTIONS = {
    "年龄段": np.array(["18-24", "25-34", "35-44", "45+"]),
    "身份": np.array(["学生", "上班族", "宝妈"]),
    "肤质": np.array(["油皮", "干皮", "混合皮", "敏感肌"]),
}


MANUAL_TAGS = np.array(["VIP关怀", "偏好电话沟通", "价格敏感", "团购意向"])


def write_events(rng, out_dir, first_day, days, fmt, people, suffix: str):
    """`people`: the part's People (identifiers and signup days), as generate draws them."""
    has_unionid, has_phone, has_email = people.has_unionid, people.has_phone, people.has_email
    unionids, phones, emails, members = people.unionids, people.phones, people.emails, people.members
    n_people, signup_day = len(people.person), people.signup_day
    who_id = np.where(has_unionid, unionids, None).astype(object)
    who_phone = np.where(~has_unionid & has_phone, phones, None).astype(object)
    # Everyone without unionid or phone has an email or a member id (see generate()).
    who_email = np.where(~has_unionid & ~has_phone & has_email, emails, None).astype(object)
    who_member = np.where(~has_unionid & ~has_phone & ~has_email, members, None).astype(object)
    frames, event_days = [], []

    def add(kind_name, people, day, **columns):
        n = len(people)
        base = {
            "event_type": pa.array(np.full(n, kind_name)),
            "occurred_at": timestamps(day, rng.integers(0, 86400, n), first_day, "UTC"),
            "unionid": pa.array(who_id[people], type=pa.string()),
            "phone": pa.array(who_phone[people], type=pa.string()),
            "email": pa.array(who_email[people], type=pa.string()),
            "member_id": pa.array(who_member[people], type=pa.string()),
        }
        for name in ("topic", "duration_seconds", "question", "answer", "campaign_id", "referred_phone"):
            base[name] = columns.get(
                name, pa.nulls(n, pa.string() if name != "duration_seconds" else pa.int64())
            )
        frames.append(pa.table(base))
        event_days.append(day)

    views = rng.integers(0, n_people, n_people * 3)
    view_day = np.minimum(signup_day[views] + rng.integers(0, 120, len(views)), days - 1)
    add(
        "content_view",
        views,
        view_day,
        topic=pa.array(pick(rng, TOPICS, len(views))),
        duration_seconds=pa.array(rng.integers(5, 600, len(views))),
    )
    for question, answers in QUESTIONS.items():
        who = np.flatnonzero(rng.random(n_people) < 0.25)
        add(
            "questionnaire",
            who,
            np.minimum(signup_day[who] + 1, days - 1),
            question=pa.array(np.full(len(who), question)),
            answer=pa.array(pick(rng, answers, len(who))),
        )
    joined = rng.integers(0, n_people, n_people // 3)
    add(
        "campaign",
        joined,
        rng.integers(0, days, len(joined)),
        campaign_id=pa.array(pick(rng, np.array(["618", "双11", "中秋礼盒", "新客7天"]), len(joined))),
    )
    checkin = np.flatnonzero(rng.random(n_people) < 0.3)
    add("checkin", checkin, np.minimum(signup_day[checkin] + rng.integers(0, 7, len(checkin)), days - 1))
    referrers = np.flatnonzero(rng.random(n_people) < 0.04)
    referred = rng.integers(0, n_people, len(referrers))
    add(
        "referral",
        referrers,
        np.minimum(signup_day[referrers] + 10, days - 1),
        referred_phone=pa.array(phones[referred]),
    )
    table = pa.concat_tables(frames)
    write_daily(table, np.concatenate(event_days), out_dir, "events", first_day, fmt, suffix)

    tagged = np.flatnonzero(rng.random(n_people) < 0.03)
    tag_day = rng.integers(0, days, len(tagged))
    tags = pa.table(
        {
            "unionid": pa.array(who_id[tagged]),
            "phone": pa.array(who_phone[tagged]),
            "email": pa.array(who_email[tagged]),
            "member_id": pa.array(who_member[tagged]),
            "tag_group": pa.array(np.full(len(tagged), "销售备注")),
            "tag": pa.array(pick(rng, MANUAL_TAGS, len(tagged))),
            "action": pa.array(np.where(rng.random(len(tagged)) < 0.9, "add", "remove")),
            "operator": pa.array(pick(rng, np.array(["sales_li", "sales_wang", "sales_zhao"]), len(tagged))),
            "tagged_at": timestamps(tag_day, rng.integers(0, 86400, len(tagged)), first_day, "UTC"),
        }
    )
    write_daily(tags, tag_day, out_dir, "manual_tags", first_day, fmt, suffix)
