"""`segflow whois ID`: which customer an identifier belongs to as of a date, and why.

Membership comes from the published histories the build wrote that day (customer_identifiers_history,
identity_junk_identifiers_history); the reasons come from the loaded records. A customer's records
are those carrying any of its identifiers, as the build read them (orders at their current version
as of the cut-off, everything seen before it); two identifiers are linked by each record that
carries both. Only one customer's records are read, through the identifier keys ingest gave them,
so an answer takes a moment however large the warehouse.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from transforms.context import landed_files_sql, render_variables, version_rank_sql
from transforms.engines import Session, open_warehouse
from transforms.errors import SegflowError
from transforms.identifiers import mask, matching_sql, normalise
from transforms.identity_rules import do_not_link_rules
from transforms.schema import IDENTIFIER_TYPES, identifier_key_column
from transforms.settings import Settings
from transforms.sql import literal

CUSTOMER_KEY = re.compile(r"[0-9a-f]{16}")
KEY_COLUMNS = [identifier_key_column(id_type) for id_type in IDENTIFIER_TYPES]


class NotFound(SegflowError):
    """An identifier the warehouse cannot place: the answer is one line, not an error."""


@dataclass(frozen=True)
class Identifier:
    id_type: str
    id_value: str

    def shown(self, asked: Identifier | None, reveal: bool) -> str:
        value = self.id_value if reveal or self == asked else mask(self.id_type, self.id_value)
        return f"{self.id_type} {value}"


def whois(
    settings: Settings, text: str, as_of: date | None = None, id_type: str | None = None, reveal: bool = False
) -> dict:
    """The answer as data (what `--json` prints). Raises NotFound with the one-line answer for an
    identifier or key the warehouse does not hold as of that date."""
    with open_warehouse(settings).read_loaded("whois") as con:
        if con.relation_kind("pub", "identity_junk_identifiers_history") is None:
            raise SegflowError(
                "this warehouse was last built by an earlier segflow: run `segflow build` once first"
            )
        as_of = _as_of(con, as_of)
        asked, customer_key = _resolve(con, text.strip(), id_type, as_of)
        members = _members(con, customer_key, as_of)
        # Asked by customer_key: paths start from its earliest identifier, and every value is masked.
        start = asked or min(members, key=lambda i: (members[i]["first_seen_at"], i.id_type, i.id_value))
        records = _records(con, settings, as_of, members)
        others = _other_identifiers(con, as_of, records, members)
        kept_apart = _identifiers_of_customers(con, as_of, {o["customer_key"] for o in others.values()})
        changes = _changes(con, customer_key, members)
    return _answer(
        settings,
        text,
        as_of,
        (asked, start),
        customer_key,
        members,
        records,
        others,
        kept_apart,
        changes,
        reveal,
    )


# -- finding the customer --------------------------------------------------------------------------
def _as_of(con: Session, as_of: date | None) -> date:
    dates = [
        row[0]
        for row in con.execute(
            "select distinct as_of_date from pub.customer_identifiers_history order by 1"
        ).fetchall()
    ]
    if not dates:
        raise SegflowError("no build has published customer identifiers yet; run `segflow build` first")
    if as_of is None:
        return dates[-1]
    if as_of not in dates:
        before = [d for d in dates if d < as_of][-1:]
        after = [d for d in dates if d > as_of][:1]
        nearest = ", ".join(str(d) for d in before + after)
        raise SegflowError(
            f"no identity snapshot as of {as_of} (history.keep_daily_days keeps some dates only); "
            f"nearest: {nearest}"
        )
    return as_of


def _resolve(con: Session, text: str, id_type: str | None, as_of: date) -> tuple[Identifier | None, str]:
    """The identifier asked about (None when asked by customer_key) and its customer as of the date."""
    if id_type is not None and id_type not in (*IDENTIFIER_TYPES, "customer_key"):
        raise SegflowError(f"--type {id_type}: types are {', '.join(IDENTIFIER_TYPES)}, customer_key")
    if id_type in (None, "customer_key") and CUSTOMER_KEY.fullmatch(text.lower()):
        found = con.execute(
            "select count(*) from pub.customer_identifiers_history where as_of_date = ? and customer_key = ?",
            [as_of, text.lower()],
        ).fetchall()[0][0]
        if found:
            return None, text.lower()
        if id_type == "customer_key":
            raise NotFound(f"customer_key {text}: no such customer as of {as_of}")
    types = [id_type] if id_type in IDENTIFIER_TYPES else list(IDENTIFIER_TYPES)
    candidates = [Identifier(t, v) for t in types if (v := normalise(t, text)) is not None]
    loaded = _loaded(con, candidates)
    if not loaded:
        tried = " or ".join(types if id_type else [*types, "customer_key"])
        raise NotFound(f"{text}: no {tried} of that value in the warehouse")
    if len(loaded) > 1:
        raise SegflowError(
            f"{text} is a loaded {' and a loaded '.join(i.id_type for i in loaded)}: "
            f"name one with --type ({', '.join(i.id_type for i in loaded)})"
        )
    asked = loaded[0]
    rows = con.execute(
        "select customer_key from pub.customer_identifiers_history "
        "where as_of_date = ? and id_type = ? and id_value = ?",
        [as_of, asked.id_type, asked.id_value],
    ).fetchall()
    if rows:
        return asked, rows[0][0]
    junk = con.execute(
        "select reason, records from pub.identity_junk_identifiers_history "
        "where as_of_date = ? and id_type = ? and id_value = ?",
        [as_of, asked.id_type, asked.id_value],
    ).fetchall()
    if junk:
        reason, records = junk[0]
        raise NotFound(
            f"{asked.shown(asked, True)} belongs to no customer as of {as_of}: it is not used to link "
            f"customers: {reason}; {records} record(s) carry it"
        )
    raise NotFound(
        f"{asked.shown(asked, True)} belongs to no customer as of {as_of}: it is loaded, but only on "
        "records dated on or after that day or loaded after that build"
    )


def _loaded(con: Session, candidates: list[Identifier]) -> list[Identifier]:
    if not candidates:
        return []
    wanted = matching_sql((i.id_type, i.id_value) for i in candidates)
    found = {
        tuple(row)
        for row in con.execute(f"select id_type, id_value from raw.identifier_keys where {wanted}").fetchall()
    }
    return [i for i in candidates if (i.id_type, i.id_value) in found]


def _members(con: Session, customer_key: str, as_of: date) -> dict[Identifier, dict]:
    """The customer's identifiers as of the date, with their first sighting and ingest key."""
    rows = con.execute(
        "select history.id_type, history.id_value, history.first_seen_at, keys.id_key "
        "from pub.customer_identifiers_history as history "
        "inner join raw.identifier_keys as keys "
        "on history.id_type = keys.id_type and history.id_value = keys.id_value "
        "where history.as_of_date = ? and history.customer_key = ?",
        [as_of, customer_key],
    ).fetchall()
    return {Identifier(t, v): {"first_seen_at": seen, "id_key": key} for t, v, seen, key in rows}


# -- the records that link them --------------------------------------------------------------------
def _records(con: Session, settings: Settings, as_of: date, members: dict[Identifier, dict]) -> list[dict]:
    """Every record the build read that carries one of the customer's identifiers, oldest first,
    with the ingest keys of all the identifiers it carries."""
    cutoff = render_variables(settings, as_of)["as_of_ts"]
    keys = ", ".join(str(int(m["id_key"])) for m in members.values())
    carries = " or ".join(f"{column} in ({keys})" for column in KEY_COLUMNS)
    key_list = ", ".join(KEY_COLUMNS)
    orders = f"""
        with landed_files as ({landed_files_sql("raw.orders")}),
        touched as (
            select distinct _order_key from raw.orders where created_at < {cutoff} and ({carries})
        ),
        versions as (
            select orders.*, coalesce(orders.updated_at, orders.created_at) as version_at,
                landed_files.line_offset + orders._line as version_no
            from raw.orders as orders
            inner join landed_files on orders._batch = landed_files._batch and orders._file = landed_files._file
            where orders.created_at < {cutoff} and orders._order_key in (select _order_key from touched)
        ),
        ranked as (
            select versions.*, row_number() over (
                partition by _order_key order by {version_rank_sql("version_at", "version_no", cutoff)}
            ) as version_rank
            from versions
        )
        select 'order' as kind, order_id as record_id, _file as file, _line as line,
            created_at as seen_at, {key_list}
        from ranked where version_rank = 1 and ({carries})
    """
    others = [
        (
            "contact",
            "cast(null as varchar)",
            "coalesce(signup_at, updated_at, _loaded_at)",
            "coalesce(signup_at, _loaded_at)",
            "contacts",
        ),
        ("event", "event_type", "occurred_at", "occurred_at", "events"),
        ("manual_tag", "tag", "tagged_at", "tagged_at", "manual_tags"),
    ]
    parts = [orders] + [
        f"select '{kind}' as kind, {record_id} as record_id, _file as file, _line as line, "
        f"{seen} as seen_at, {key_list} from raw.{table} where {before} < {cutoff} and ({carries})"
        for kind, record_id, seen, before, table in others
    ]
    names = ["kind", "record_id", "file", "line", "seen_at", *KEY_COLUMNS]
    rows = con.execute(
        " union all ".join(
            f"select * from ({part}) as {kind}_records"
            for part, kind in zip(parts, ["order", "contact", "event", "manual_tag"], strict=True)
        )
        + " order by seen_at, file, line"
    ).fetchall()
    return [dict(zip(names, row, strict=True)) for row in rows]


def _other_identifiers(
    con: Session, as_of: date, records: list[dict], members: dict[Identifier, dict]
) -> dict[int, dict]:
    """The identifiers on the customer's records that are not its own, by ingest key: junk (with
    the reason) or another customer's (a link a do-not-link rule cut)."""
    own = {int(m["id_key"]) for m in members.values()}
    keys = sorted({int(r[c]) for r in records for c in KEY_COLUMNS if r[c] is not None} - own)
    if not keys:
        return {}
    rows = con.execute(
        "select keys.id_key, keys.id_type, keys.id_value, junk.reason, junk.records, history.customer_key "
        "from raw.identifier_keys as keys "
        "left join pub.identity_junk_identifiers_history as junk "
        "on junk.as_of_date = ? and keys.id_type = junk.id_type and keys.id_value = junk.id_value "
        "left join pub.customer_identifiers_history as history "
        "on history.as_of_date = ? and keys.id_type = history.id_type and keys.id_value = history.id_value "
        f"where keys.id_key in ({', '.join(map(str, keys))})",
        [as_of, as_of],
    ).fetchall()
    return {
        int(key): {"identifier": Identifier(t, v), "reason": reason, "records": n, "customer_key": other}
        for key, t, v, reason, n, other in rows
    }


def _identifiers_of_customers(
    con: Session, as_of: date, keys: set[str | None]
) -> dict[str, set[tuple[str, str]]]:
    """Other customers' identifiers as of the date: the side a do-not-link rule kept apart."""
    listed = ", ".join(literal(key) for key in sorted(k for k in keys if k is not None))
    if not listed:
        return {}
    grouped: dict[str, set[tuple[str, str]]] = {}
    for key, id_type, id_value in con.execute(
        "select customer_key, id_type, id_value from pub.customer_identifiers_history "
        f"where as_of_date = ? and customer_key in ({listed})",
        [as_of],
    ).fetchall():
        grouped.setdefault(key, set()).add((id_type, id_value))
    return grouped


def _changes(con: Session, customer_key: str, members: dict[Identifier, dict]) -> list[dict]:
    """Merges and splits of any key the customer's identifiers have had."""
    wanted = matching_sql((i.id_type, i.id_value) for i in members)
    keys = {customer_key} | {
        row[0]
        for row in con.execute(
            f"select distinct customer_key from pub.customer_identifiers_history where {wanted}"
        ).fetchall()
    }
    listed = ", ".join(literal(key) for key in sorted(keys))
    rows = con.execute(
        "select as_of_date, change, merged_key, surviving_key, identifiers from pub.identity_merges "
        f"where merged_key in ({listed}) or surviving_key in ({listed}) order by as_of_date, merged_key, surviving_key"
    ).fetchall()
    names = ["as_of_date", "change", "merged_key", "surviving_key", "identifiers"]
    return [dict(zip(names, row, strict=True)) for row in rows]


# -- the answer ------------------------------------------------------------------------------------
def _answer(
    settings: Settings,
    text: str,
    as_of: date,
    asked_and_start: tuple[Identifier | None, Identifier],
    customer_key: str,
    members: dict[Identifier, dict],
    records: list[dict],
    others: dict[int, dict],
    kept_apart: dict[str, set[tuple[str, str]]],
    changes: list[dict],
    reveal: bool,
) -> dict:
    asked, start = asked_and_start

    def shown(ident: Identifier) -> dict:
        value = ident.id_value if reveal or ident == asked else mask(ident.id_type, ident.id_value)
        return {"id_type": ident.id_type, "id_value": value}

    links, counts = _links(records, members)
    paths = _paths(start, members, links)
    ignored, cut = _ignored_and_cut(settings, records, members, others, kept_apart, shown)
    return {
        "query": text,
        "asked": {"id_type": asked.id_type, "id_value": asked.id_value}
        if asked
        else {"customer_key": customer_key},
        "as_of": as_of,
        "customer_key": customer_key,
        "records": len(records),
        "identifiers": [
            {
                **shown(ident),
                "asked": ident == asked,
                "start": ident == start,
                "first_seen_at": members[ident]["first_seen_at"],
                "records": counts[ident],
                "path": [
                    {
                        "from": shown(a),
                        "to": shown(b),
                        "record": _record(links[frozenset((a, b))][0]),
                        "records": len(links[frozenset((a, b))]),
                    }
                    for a, b in paths.get(ident, [])
                ],
            }
            for ident in sorted(
                members, key=lambda i: (i != start, members[i]["first_seen_at"], i.id_type, i.id_value)
            )
        ],
        "ignored_identifiers": ignored,
        "cut_links": cut,
        "changes": changes,
    }


def _record(row: dict) -> dict:
    return {key: row[key] for key in ("kind", "record_id", "file", "line", "seen_at")}


def _links(
    records: list[dict], members: dict[Identifier, dict]
) -> tuple[dict[frozenset, list[dict]], dict[Identifier, int]]:
    """The records linking each pair of the customer's identifiers (every record carrying both,
    oldest first), and each identifier's number of records."""
    by_key = {int(m["id_key"]): ident for ident, m in members.items()}
    links: dict[frozenset, list[dict]] = {}
    counts = dict.fromkeys(members, 0)
    for row in records:
        carried = sorted(
            {by_key[int(row[c])] for c in KEY_COLUMNS if row[c] is not None and int(row[c]) in by_key},
            key=lambda i: (i.id_type, i.id_value),
        )
        for ident in carried:
            counts[ident] += 1
        for i, first in enumerate(carried):
            for second in carried[i + 1 :]:
                links.setdefault(frozenset((first, second)), []).append(row)
    return links, counts


def _ignored_and_cut(
    settings: Settings,
    records: list[dict],
    members: dict[Identifier, dict],
    others: dict[int, dict],
    kept_apart: dict[str, set[tuple[str, str]]],
    shown: Callable[[Identifier], dict],
) -> tuple[list[dict], list[dict]]:
    """The junk identifiers on the customer's records, and each record that also carries another
    customer's identifier (a link a do-not-link rule cut) with the rules that name both sides."""
    ignored: dict[Identifier, dict] = {}
    cut: list[dict] = []
    rules = [rule for rule in do_not_link_rules(settings) if len(rule.identifiers) == 2]
    own = {(i.id_type, i.id_value) for i in members}
    for row in records:
        for column in KEY_COLUMNS:
            other = others.get(int(row[column])) if row[column] is not None else None
            if other is None:
                continue
            ident = other["identifier"]
            if other["reason"] is not None:
                entry = ignored.setdefault(
                    ident, {**shown(ident), "reason": other["reason"], "records_of_this_customer": 0}
                )
                entry["records_of_this_customer"] += 1
            elif other["customer_key"] is not None:
                theirs = kept_apart.get(other["customer_key"], set())
                cutting = [
                    {"rule": rule.number, "reason": rule.reason}
                    for rule in rules
                    if (rule.identifiers[0] in own and rule.identifiers[1] in theirs)
                    or (rule.identifiers[1] in own and rule.identifiers[0] in theirs)
                ]
                cut.append(
                    {
                        "record": _record(row),
                        **shown(ident),
                        "customer_key": other["customer_key"],
                        "rules": cutting,
                    }
                )
    return list(ignored.values()), cut


def _paths(
    start: Identifier, members: dict[Identifier, dict], links: dict[frozenset, list[dict]]
) -> dict[Identifier, list[tuple[Identifier, Identifier]]]:
    """The shortest chain of links from the identifier asked about (or the earliest) to each other one (breadth
    first, neighbours in the order they were first linked, so the answer is the same every time)."""
    neighbours: dict[Identifier, list[Identifier]] = {ident: [] for ident in members}
    by_first_link = sorted(
        links, key=lambda pair: (links[pair][0]["seen_at"], sorted((i.id_type, i.id_value) for i in pair))
    )
    for pair in by_first_link:
        first, second = sorted(pair, key=lambda i: (i.id_type, i.id_value))
        neighbours[first].append(second)
        neighbours[second].append(first)
    paths: dict[Identifier, list[tuple[Identifier, Identifier]]] = {start: []}
    queue = deque([start])
    while queue:
        current = queue.popleft()
        for nxt in neighbours[current]:
            if nxt not in paths:
                paths[nxt] = [*paths[current], (current, nxt)]
                queue.append(nxt)
    return paths


# -- the terminal ----------------------------------------------------------------------------------
def print_answer(answer: dict) -> None:
    asked = answer["asked"]
    name = (
        f"{asked['id_type']} {asked['id_value']}"
        if "id_type" in asked
        else f"customer_key {asked['customer_key']}"
    )
    print(
        f"{name} as of {answer['as_of']}: customer {answer['customer_key']}, "
        f"{len(answer['identifiers'])} identifier(s) on {answer['records']} record(s)"
    )
    print("\nidentifiers and how they link:")
    for ident in answer["identifiers"]:
        seen = f"first seen {ident['first_seen_at']:%Y-%m-%d %H:%M}, {ident['records']} record(s)"
        print(
            f"  {ident['id_type']} {ident['id_value']}  ({seen})"
            + ("  <- asked" if ident["asked"] else "  <- earliest" if ident["start"] else "")
        )
        for hop in ident["path"]:
            rec = hop["record"]
            more = f" and {hop['records'] - 1} more" if hop["records"] > 1 else ""
            print(
                f"      {hop['from']['id_type']} {hop['from']['id_value']} -> {hop['to']['id_type']} "
                f"{hop['to']['id_value']}: {_record_text(rec)}{more}"
            )
    _section(
        "ignored identifiers on its records (not used to link)",
        answer["ignored_identifiers"],
        lambda junk: (
            f"{junk['id_type']} {junk['id_value']}: {junk['reason']} "
            f"({junk['records_of_this_customer']} of its records)"
        ),
    )
    _section(
        "links cut by identity.do_not_link",
        answer["cut_links"],
        lambda link: (
            f"{_record_text(link['record'])} also carries {link['id_type']} {link['id_value']} "
            f"of customer {link['customer_key']}: "
            + (
                "; ".join(f"rule #{r['rule']}: {r['reason']}" for r in link["rules"])
                or "no rule in settings.yml names both sides now"
            )
        ),
    )
    _section(
        "merges and splits",
        answer["changes"],
        lambda change: (
            f"{change['as_of_date']} {change['change'] or 'merge'}: {change['merged_key']} -> "
            f"{change['surviving_key']} ({change['identifiers']} identifier(s) moved)"
        ),
    )


def _section(title: str, items: list[dict], line: Callable[[dict], str]) -> None:
    print(f"\n{title}:")
    for item in items:
        print(f"  {line(item)}")
    if not items:
        print("  (none)")


def _record_text(record: dict) -> str:
    name = record["kind"] + (f" {record['record_id']}" if record["record_id"] else "")
    return f"{name} ({record['file']} line {record['line']}, {record['seen_at']:%Y-%m-%d %H:%M})"
