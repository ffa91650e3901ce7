"""Do-not-link rules: links between identifiers that an operator has cut (`identity.do_not_link`).

Two forms, each with the reason `segflow whois` shows where the rule cut a link:
- `identifier: {phone: "138..."}`: the identifier never links anything (a store clerk's phone on
  walk-in orders). Like the blocklist it is junk: it belongs to no customer, and records that
  carry only it belong to nobody.
- `pair: [{unionid: a}, {unionid: b}]`: the two must never be one customer (a family phone that
  joins mother and son). Stitching keeps the links in the order they were seen and drops each
  record whose link would put the two together (identity.separate_pairs).
"""

from __future__ import annotations

from dataclasses import dataclass

from transforms.errors import SegflowError
from transforms.identifiers import normalise
from transforms.schema import IDENTIFIER_TYPES
from transforms.settings import Settings

Identifier = tuple[str, str]  # (id_type, normalised id_value)


@dataclass(frozen=True)
class DoNotLink:
    number: int  # its position in identity.do_not_link, from 1, as messages and whois name it
    identifiers: tuple[Identifier, ...]  # one (never links) or two (never one customer)
    reason: str

    @property
    def label(self) -> str:
        return f"identity.do_not_link #{self.number} ({self.reason})"


def do_not_link_rules(settings: Settings) -> list[DoNotLink]:
    entries = settings.get("identity.do_not_link") or []
    where = f"{settings.config_dir / 'settings.yml'}: identity.do_not_link"
    if not isinstance(entries, list):
        raise SegflowError(
            f"{where} must be a list of rules, each with `identifier` or `pair` and a `reason`"
        )
    rules = []
    for number, entry in enumerate(entries, start=1):
        at = f"{where} #{number}"
        if not isinstance(entry, dict) or len({"identifier", "pair"} & set(entry)) != 1:
            raise SegflowError(
                f"{at}: give either `identifier: {{phone: ...}}` (never links anything) or "
                "`pair: [{unionid: ...}, {unionid: ...}]` (never one customer)"
            )
        unknown = set(entry) - {"identifier", "pair", "reason"}
        if unknown:
            raise SegflowError(
                f"{at}: unknown field(s) {', '.join(sorted(unknown))}; fields are identifier, pair, reason"
            )
        reason = entry.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise SegflowError(f"{at}: give a `reason`; segflow whois shows it where the rule cut a link")
        if "pair" in entry:
            pair = entry["pair"]
            if not isinstance(pair, list) or len(pair) != 2:
                raise SegflowError(
                    f"{at}: `pair` takes exactly two identifiers, e.g. [{{unionid: a}}, {{unionid: b}}]"
                )
            identifiers = tuple(_identifier(item, f"{at} pair") for item in pair)
            if identifiers[0] == identifiers[1]:
                raise SegflowError(f"{at}: the pair names {identifiers[0][0]} {identifiers[0][1]} twice")
        else:
            identifiers = (_identifier(entry["identifier"], f"{at} identifier"),)
        rules.append(DoNotLink(number, identifiers, reason.strip()))
    return rules


def _identifier(item: object, at: str) -> Identifier:
    if not isinstance(item, dict) or len(item) != 1:
        raise SegflowError(f'{at}: write an identifier as one type and value, e.g. {{phone: "13800000000"}}')
    ((id_type, value),) = item.items()
    if id_type not in IDENTIFIER_TYPES:
        raise SegflowError(
            f"{at}: unknown identifier type '{id_type}'; types are {', '.join(IDENTIFIER_TYPES)}"
        )
    normalised = normalise(id_type, value)
    if normalised is None:
        raise SegflowError(f"{at}: {id_type} {value!r} is not a value ingest would accept")
    return (id_type, normalised)
