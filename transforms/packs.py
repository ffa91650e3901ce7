"""Audience packs (人群包): define in packs.yml, preview, export safely, measure lift.

Members are read from the published tables (what BI sees), never from a build in progress.
Opted-out and non-consenting contacts are suppressed; a stable hash of (pack, customer) holds
out a control group; every export writes its file atomically with a manifest and is logged in
`audience_pack_exports`. Raw phone numbers and emails are never printed or logged.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from transforms import PROJECT_ROOT
from transforms.delivery import Webhook, credentials, deliver, parse_destination
from transforms.engines import Session, open_warehouse
from transforms.errors import SegflowError
from transforms.expressions import compile_expression
from transforms.files_out import AD_PLATFORM_FORMATS, FORMAT_SUFFIXES, FORMATS, write_atomically
from transforms.identifiers import mask
from transforms.ingest import file_sha256
from transforms.schema import IDENTIFIER_TYPES
from transforms.settings import Settings, load_yaml
from transforms.sql import literal, ref
from transforms.waves import FrequencyCap, frequency_cap, with_waves

LOG_TABLES = ("audience_pack_exports", "audience_pack_members")
LOG_DDL = (
    "create table if not exists pub.audience_pack_exports (pack varchar, export_id varchar, as_of_date date, "
    "exported_at timestamptz, members bigint, suppressed bigint, holdout bigint, file varchar, sha256 varchar, "
    "format varchar, hashed boolean, delta boolean, joined bigint, left_pack bigint, definition_sha256 varchar)",
    "create table if not exists pub.audience_pack_members (pack varchar, export_id varchar, customer_key varchar, "
    "in_holdout boolean)",
    # Exports recorded by earlier versions lack these: no channel (caps), nothing to reproduce them from.
    *(
        f"alter table pub.audience_pack_exports add column if not exists {column} varchar"
        for column in ("channel", "definition", "previous_export", "config_sha256")
    ),
)


HASHED_PHONE_FORMATS = ("national", "e164")


def _hashed(kind: str, phone_format: str) -> str:
    """SHA-256 of the normalised identifier, as ad platforms match them."""
    if kind == "phone" and phone_format == "e164":
        return "sha256('+86' || phone) as phone"
    return f"sha256({kind}) as {kind}"


@dataclass(frozen=True)
class Pack:
    name: str
    where: str
    sql: str
    contact_fields: tuple[str, ...]
    holdout_share: float = 0.0
    require_consent: bool = False
    schedule: str | None = None
    description: str = ""
    webhook: Webhook | None = None  # None: the export is a file in the folder only
    hashed_phone_format: str = "national"  # what --hash hashes: 13900000001 or +8613900000001
    hashed: bool = False  # `hash: true`: every export of the pack is hashed, as if with --hash
    channel: str | None = None  # what the frequency cap counts: exports of packs on the same channel
    frequency_cap: FrequencyCap | None = None
    wave: str | None = None
    # The packs before it in its wave: a customer one of them selects is theirs (wave_priority).
    outranked_by: tuple[Pack, ...] = ()

    def definition(self) -> dict:
        definition = {
            "where": self.where,
            "contact_fields": list(self.contact_fields),
            "holdout_share": self.holdout_share,
            "require_consent": self.require_consent,
            "hashed_phone_format": self.hashed_phone_format,
        }
        # Set only when used, so packs without them keep the definition_sha256 of earlier exports.
        if self.channel:
            definition["channel"] = self.channel
        if self.frequency_cap:
            definition["frequency_cap"] = self.frequency_cap.as_config()
        if self.wave:
            definition["wave"] = {"name": self.wave, "after": [p.name for p in self.outranked_by]}
        return definition

    def definition_sha256(self) -> str:
        text = json.dumps(self.definition(), ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _pack(name: str, config: dict, settings: Settings, where: str) -> Pack:
    expression = compile_expression(str(config.get("where", "")), where)
    fields = tuple(config.get("contact_fields") or settings.get("packs.default_contact_fields"))
    unknown = [f for f in fields if f not in IDENTIFIER_TYPES]
    if unknown:
        raise SegflowError(f"{where}: unknown contact field(s) {unknown}; use {', '.join(IDENTIFIER_TYPES)}")
    share = float(config.get("holdout_share", 0))
    if not 0 <= share < 1:
        raise SegflowError(f"{where}: holdout_share must be at least 0 and below 1")
    phone_format = str(config.get("hashed_phone_format", settings.get("packs.hashed_phone_format")))
    if phone_format not in HASHED_PHONE_FORMATS:
        raise SegflowError(
            f"{where}: hashed_phone_format '{phone_format}': use {' or '.join(HASHED_PHONE_FORMATS)}"
        )
    return Pack(
        name=name,
        where=str(config["where"]),
        sql=expression.sql,
        contact_fields=fields,
        holdout_share=share,
        require_consent=bool(config.get("require_consent", settings.get("packs.require_consent"))),
        schedule=config.get("schedule"),
        description=str(config.get("description", "")),
        webhook=parse_destination(config.get("destination"), where),
        hashed_phone_format=phone_format,
        hashed=_flag(config.get("hash", False), "hash", where),
        channel=str(config["channel"]) if config.get("channel") else None,
        frequency_cap=frequency_cap(
            config.get(
                "frequency_cap", (settings.get("packs.frequency_caps") or {}).get(config.get("channel"))
            ),
            f"{where} frequency_cap"
            if "frequency_cap" in config
            else f"{settings.config_dir / 'settings.yml'} packs.frequency_caps.{config.get('channel')}",
        ),
    )


def _flag(value: object, key: str, where: str) -> bool:
    if not isinstance(value, bool):
        raise SegflowError(f"{where}: {key} must be true or false, not {value!r}")
    return value


def load_packs(settings: Settings) -> dict[str, Pack]:
    path = settings.config_file("packs.yml")
    document = load_yaml(path)
    packs, errors = {}, []
    for name, config in ((document or {}).get("packs") or {}).items():
        try:
            if not isinstance(config, dict) or "where" not in config:
                raise SegflowError(f"{path} pack {name}: give `where`")
            packs[str(name)] = _pack(str(name), config, settings, f"{path} pack {name}")
        except SegflowError as exc:
            errors.append(str(exc))
    if errors:
        raise SegflowError(f"{len(errors)} error(s) in packs: " + " | ".join(errors))
    return with_waves(packs, (document or {}).get("waves") or {}, path)


def resolve_pack(settings: Settings, name: str | None, where: str | None) -> Pack:
    if where is not None:
        return _pack(name or "ad_hoc", {"where": where}, settings, f"--where pack {name or 'ad_hoc'}")
    packs = load_packs(settings)
    if name is None:
        raise SegflowError(
            f"name a pack ({', '.join(packs) or 'none defined'} in {settings.config_file('packs.yml')}) "
            "or give --where EXPR"
        )
    if name not in packs:
        raise SegflowError(
            f"pack '{name}' is not in {settings.config_file('packs.yml')} (packs: {', '.join(packs)})"
        )
    return packs[name]


def audience_sql(pack: Pack, con: Session, at: datetime) -> str:
    """Every member with why they are suppressed (or null) and whether they are held out: the
    contact's own reasons first, then a pack before this one in its wave that selects them
    (wave_priority), then the frequency cap from the export history as of `at` (frequency_cap)."""
    base = base_audience_sql(pack, con)
    reasons = []
    if pack.outranked_by:
        theirs = " union ".join(
            f"select customer_key from ({base_audience_sql(higher, con)}) as higher_{number} "
            "where suppressed_reason is null"
            for number, higher in enumerate(pack.outranked_by)
        )
        reasons.append(f"when base.customer_key in ({theirs}) then 'wave_priority'")
    if pack.frequency_cap and con.table_exists("pub", "audience_pack_members"):
        same_channel = (
            f"exports.channel = {literal(pack.channel)}"
            if pack.channel
            else f"exports.pack = {literal(pack.name)}"
        )
        since = literal((at - timedelta(days=pack.frequency_cap.days)).isoformat())
        reasons.append(
            "when base.customer_key in (select members.customer_key from pub.audience_pack_members as members "
            "inner join pub.audience_pack_exports as exports on members.export_id = exports.export_id "
            f"where not members.in_holdout and {same_channel} and exports.exported_at > cast({since} as timestamptz) "
            f"group by members.customer_key having count(distinct exports.export_id) >= {pack.frequency_cap.max_exports}) "
            "then 'frequency_cap'"
        )
    if not reasons:
        return base
    return (
        f"with base as ({base}) select base.customer_key, base.as_of_date, "
        f"coalesce(base.suppressed_reason, case {' '.join(reasons)} end) as suppressed_reason, base.in_holdout, "
        f"{', '.join(f'base.{kind}' for kind in IDENTIFIER_TYPES)} from base"
    )


def contacts_sql(identifiers: str) -> str:
    """CTEs ending in `contacts`: each customer's first-seen value of every identifier type, from
    `identifiers` (customer_identifiers, or its history as of an export's date)."""
    contacts = ", ".join(
        f"max(case when id_type = '{kind}' and contact_rank = 1 then id_value end) as {kind}"
        for kind in IDENTIFIER_TYPES
    )
    return f"""ranked_identifiers as (
    select customer_key, id_type, id_value,
        row_number() over (partition by customer_key, id_type order by first_seen_at, id_value) as contact_rank
    from {identifiers}
),
contacts as (select customer_key, {contacts} from ranked_identifiers group by customer_key)"""


def base_audience_sql(pack: Pack, con: Session) -> str:
    """Every member with why they are suppressed by their contact (or null) and whether they are held out."""
    consent = "or f.marketing_consent is null" if pack.require_consent else ""
    reachable = " or ".join(f"contacts.{kind} is not null" for kind in pack.contact_fields)
    return f"""
with members as (select f.* from {ref("customer_features")} as f where {pack.sql}),
{contacts_sql(ref("customer_identifiers"))}
select f.customer_key, f.as_of_date,
    case
        when f.opted_out then 'opted_out'
        when f.marketing_consent = false {consent} then 'no_consent'
        when not ({reachable}) or contacts.customer_key is null then 'no_contact_field'
    end as suppressed_reason,
    {con.hash_bucket(f"{literal(pack.name + ':')} || f.customer_key", 10000)} < {round(pack.holdout_share * 10000)}
        as in_holdout,
    {", ".join(f"contacts.{kind}" for kind in IDENTIFIER_TYPES)}
from members as f
left join contacts on f.customer_key = contacts.customer_key
"""


def audience_counts(con: Session) -> dict:
    """What preview shows and export records, from the temp table `audience` (audience_sql)."""
    matched, members, holdout, as_of = con.execute(
        "select count(*), count(case when suppressed_reason is null and not in_holdout then 1 end), "
        "count(case when suppressed_reason is null and in_holdout then 1 end), max(as_of_date) from audience"
    ).fetchall()[0]
    reasons = dict(
        con.execute(
            "select suppressed_reason, count(*) from audience where suppressed_reason is not null group by 1 order by 1"
        ).fetchall()
    )
    return {
        "as_of": as_of,
        "matched": matched,
        "members": members,
        "holdout": holdout,
        "suppressed": sum(reasons.values()),
        "suppressed_by_reason": reasons,
    }


def preview(settings: Settings, pack: Pack, sample: int = 5, at: datetime | None = None) -> dict:
    with open_warehouse(settings).read() as con:
        audience = audience_sql(pack, con, at or datetime.now(UTC))
        con.execute(f"create temp table audience as {con.render(audience)}")
        counts = audience_counts(con)
        rows = con.execute(
            f"select customer_key, {', '.join(pack.contact_fields)} from audience "
            f"where suppressed_reason is null and not in_holdout order by customer_key limit {int(sample)}"
        ).fetchall()
        overlaps = {}
        for other in load_packs(settings).values():
            if other.name == pack.name:
                continue
            overlaps[other.name] = con.scalar(
                con.render(
                    f"select count(*) from audience as a where a.customer_key in (select f.customer_key "
                    f"from {ref('customer_features')} as f where {other.sql})"
                )
            )
    as_of = counts["as_of"]
    samples = [
        {
            "customer_key": row[0],
            **{kind: mask(kind, value) for kind, value in zip(pack.contact_fields, row[1:], strict=True)},
        }
        for row in rows
    ]
    return {
        "pack": pack.name,
        "as_of_date": str(as_of) if as_of else None,
        "matched": counts["matched"],
        "members": counts["members"],
        "holdout": counts["holdout"],
        "suppressed": counts["suppressed"],
        "suppressed_by_reason": counts["suppressed_by_reason"],
        "overlap_with_packs": overlaps,
        "sample": samples,
    }


@dataclass
class ExportResult:
    pack: str
    export_id: str
    as_of_date: str
    file: str
    manifest: str
    members: int
    suppressed: int
    holdout: int
    sha256: str
    joined: int | None = None
    left: int | None = None
    delivered_batches: int | None = None


@dataclass
class ExportPlan:
    """Who an export holds, worked out from the published tables before anything is written."""

    pack: Pack
    as_of: date
    export_id: str
    counts: dict
    previous: str | None  # the pack's last export, for the joined / left counts and deltas
    joined: int | None
    left: int | None
    body: pa.Table  # the file's rows: members, or who joined and left for a delta
    is_delta: bool
    log_rows: pa.Table  # audience_pack_members rows: members and holdout
    config_sha256: str = ""  # the brand's settings.yml and packs.yml when it was planned


def export_body(
    con: Session,
    contact_fields: tuple[str, ...],
    phone_format: str,
    hashed: bool,
    previous: str | None,
    delta: bool,
) -> tuple[int | None, int | None, pa.Table, bool]:
    """The file's rows from the temp table `audience`: the members to contact, or for a delta who
    joined and left since the export `previous`; with the joined and left counts."""
    columns = ", ".join(_hashed(kind, phone_format) if hashed else kind for kind in contact_fields)
    con.execute(
        "create temp table exported as select customer_key, "
        f"{columns} from audience where suppressed_reason is null and not in_holdout"
    )
    joined = left = None
    if previous is not None:
        con.execute(
            "create temp table previous_members as select customer_key from pub.audience_pack_members "
            "where export_id = ? and not in_holdout",
            [previous],
        )
        joined = con.scalar(
            "select count(*) from exported where customer_key not in (select customer_key from previous_members)"
        )
        left = con.scalar(
            "select count(*) from previous_members where customer_key not in (select customer_key from exported)"
        )
    is_delta = delta and previous is not None
    if is_delta:
        body = con.fetch_arrow(
            "select 'joined' as change, * from exported where customer_key not in "
            "(select customer_key from previous_members) union all "
            f"select 'left' as change, customer_key, {', '.join('null' for _ in contact_fields)} "
            "from previous_members where customer_key not in (select customer_key from exported) "
            "order by change, customer_key"
        )
    else:
        body = con.fetch_arrow("select * from exported order by customer_key")
    return joined, left, body, is_delta


def plan_export(con: Session, pack: Pack, hashed: bool, delta: bool, at: datetime) -> ExportPlan:
    con.execute(f"create temp table audience as {con.render(audience_sql(pack, con, at))}")
    counts = audience_counts(con)
    as_of = con.scalar(con.render(f"select max(as_of_date) from {ref('customer_features')}"))
    previous, sequence = None, 0
    if con.table_exists("pub", "audience_pack_members"):
        previous = con.scalar(
            "select export_id from pub.audience_pack_exports where pack = ? order by exported_at desc limit 1",
            [pack.name],
        )
        sequence = con.scalar(
            "select count(*) from pub.audience_pack_exports where pack = ? and as_of_date = ?",
            [pack.name, as_of],
        )
    joined, left, body, is_delta = export_body(
        con, pack.contact_fields, pack.hashed_phone_format, hashed, previous, delta
    )
    export_id = f"{pack.name}-{as_of}-{sequence + 1}"
    log_rows = con.fetch_arrow(
        f"select {literal(pack.name)} as pack, {literal(export_id)} as export_id, customer_key, in_holdout "
        "from audience where suppressed_reason is null"
    )
    return ExportPlan(pack, as_of, export_id, counts, previous, joined, left, body, is_delta, log_rows)


def _write_export(plan: ExportPlan, out_dir: Path, file_format: str, hashed: bool, exported_at: datetime):
    """The members file and its manifest, each written whole or not at all; returns both and the checksum."""
    extension = f"{file_format}{FORMAT_SUFFIXES.get(file_format, '')}"
    path = out_dir / f"{plan.export_id}.{'delta.' if plan.is_delta else ''}{extension}"
    write_atomically(plan.body, path, file_format, exported_at)
    checksum = file_sha256(path)
    manifest = {
        "pack": plan.pack.name,
        "export_id": plan.export_id,
        "definition": plan.pack.definition(),
        "definition_sha256": plan.pack.definition_sha256(),
        "config_sha256": plan.config_sha256,
        "as_of_date": str(plan.as_of),
        # What `segflow pack export NAME --reproduce EXPORT_ID` rebuilds this file from.
        "reproduce_from": {
            "members": f"audience_pack_members where export_id = '{plan.export_id}' and not in_holdout",
            "contact_values": f"customer_identifiers_history where as_of_date = '{plan.as_of}'",
            "holdout": {
                "seed": f"{plan.pack.name}:",
                "rule": "md5(seed || customer_key) as a little-endian integer, modulo 10000, below share x 10000",
                "share": plan.pack.holdout_share,
            },
        },
        "exported_at": exported_at.isoformat(),
        "members": plan.counts["members"],
        "suppressed": plan.counts["suppressed"],
        "suppressed_by_reason": plan.counts["suppressed_by_reason"],
        "holdout": plan.counts["holdout"],
        "delta": {
            "previous_export": plan.previous,
            "joined": plan.joined,
            "left": plan.left,
            "file_is_delta": plan.is_delta,
        },
        "hashed": hashed,
        "format": file_format,
        "file": path.name,
        "sha256": checksum,
    }
    manifest_path = Path(f"{path}.manifest.json")
    temporary = manifest_path.with_name(f".{manifest_path.name}.partial")
    temporary.write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    os.replace(temporary, manifest_path)
    return path, manifest_path, checksum


def _record_export(
    settings: Settings,
    plan: ExportPlan,
    path: Path,
    checksum: str,
    file_format: str,
    hashed: bool,
    exported_at: datetime,
) -> None:
    """The export's row in audience_pack_exports and its members, published for readers."""
    warehouse = open_warehouse(settings)
    with warehouse.work() as work:
        for ddl in LOG_DDL:
            work.execute(ddl)
        with work.transaction():
            work.execute(
                "insert into pub.audience_pack_exports (pack, export_id, as_of_date, exported_at, members, "
                "suppressed, holdout, file, sha256, format, hashed, delta, joined, left_pack, definition_sha256, "
                "channel, definition, previous_export, config_sha256) "
                "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    plan.pack.name,
                    plan.export_id,
                    plan.as_of,
                    exported_at,
                    plan.counts["members"],
                    plan.counts["suppressed"],
                    plan.counts["holdout"],
                    str(path),
                    checksum,
                    file_format,
                    hashed,
                    plan.is_delta,
                    plan.joined,
                    plan.left,
                    plan.pack.definition_sha256(),
                    plan.pack.channel,
                    json.dumps(plan.pack.definition(), ensure_ascii=False, sort_keys=True),
                    plan.previous,
                    plan.config_sha256,
                ],
            )
            with work.registered("pack_members", plan.log_rows):
                work.execute("insert into pub.audience_pack_members select * from pack_members")
        warehouse.publish(work, tables=list(LOG_TABLES))


def writable_folder(out_dir: Path | None) -> Path:
    out_dir = Path(out_dir or PROJECT_ROOT / "exports")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SegflowError(
            f"--out {out_dir}: the folder cannot be created ({exc.strerror or exc}); name a folder you can write to"
        ) from exc
    if not os.access(out_dir, os.W_OK):
        raise SegflowError(f"--out {out_dir}: the folder is not writable; name a folder you can write to")
    return out_dir


def export(
    settings: Settings,
    pack: Pack,
    out_dir: Path | None = None,
    file_format: str = "csv",
    hashed: bool = False,
    delta: bool = False,
    exported_at: datetime | None = None,
) -> ExportResult:
    """Plan (who, from the published tables), write (file and manifest), deliver (the webhook, if
    any), record (audience_pack_exports, published)."""
    if file_format not in FORMATS:
        raise SegflowError(f"--format {file_format}: use one of {', '.join(FORMATS)}")
    if file_format in AD_PLATFORM_FORMATS:
        # Both platforms match the SHA-256 of the 11-digit number and take the whole pack.
        if "phone" not in pack.contact_fields or pack.hashed_phone_format != "national" or delta:
            raise SegflowError(
                f"--format {file_format} uploads the SHA-256 of 11-digit phones "
                f"({AD_PLATFORM_FORMATS[file_format]}) of the whole "
                f"pack: pack {pack.name} needs phone in contact_fields and hashed_phone_format national, "
                "and --delta is not for this format"
            )
        hashed = True
    if file_format == "wecom" and (
        "external_userid" not in pack.contact_fields or hashed or pack.hashed or delta
    ):
        # WeCom takes its own ids as they are, the whole pack in messages of up to 10,000.
        raise SegflowError(
            f"--format wecom sends WeCom group messages to external_userid as WeCom gave them: pack {pack.name} "
            "needs external_userid in contact_fields, and --hash and --delta are not for this format"
        )
    # A missing secret or token stops the export before any file is written or anything sent.
    creds = credentials(pack.webhook, pack.name) if pack.webhook else None
    hashed = hashed or pack.hashed
    out_dir = writable_folder(out_dir)
    exported_at = exported_at or datetime.now(UTC)
    with open_warehouse(settings).read() as con:
        plan = plan_export(con, pack, hashed, delta, exported_at)
    plan.config_sha256 = config_sha256(settings)
    path, manifest_path, checksum = _write_export(plan, out_dir, file_format, hashed, exported_at)
    delivered = deliver(pack.webhook, creds, plan.export_id, plan.body) if pack.webhook and creds else None
    _record_export(settings, plan, path, checksum, file_format, hashed, exported_at)
    return ExportResult(
        pack.name,
        plan.export_id,
        str(plan.as_of),
        str(path),
        str(manifest_path),
        plan.counts["members"],
        plan.counts["suppressed"],
        plan.counts["holdout"],
        checksum,
        plan.joined,
        plan.left,
        delivered,
    )


def config_sha256(settings: Settings) -> str:
    """SHA-256 of the brand's settings.yml and packs.yml as they are now."""
    digest = hashlib.sha256()
    for name in ("settings.yml", "packs.yml"):
        path = settings.config_dir / name
        digest.update(name.encode() + b"\0" + (path.read_bytes() if path.exists() else b"") + b"\0")
    return digest.hexdigest()


def scheduled_packs(settings: Settings) -> list[Pack]:
    return [p for p in load_packs(settings).values() if p.schedule == "daily"]
