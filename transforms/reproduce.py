"""`segflow pack export NAME --reproduce EXPORT_ID`: that export's file again, byte for byte.

What reproduces an export is recorded with it (audience_pack_exports): its definition (contact
fields, how phones are hashed), format, hashing, whether it was a delta and of which previous
export, and its as-of date; audience_pack_members holds who was exported. The contact values
come from customer_identifiers_history as of that date, the snapshot the export read. Whatever has
been built, ingested or configured since, the same rows give the same file; the checksum recorded
at export time proves it, and a file that would differ is never left behind.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from transforms.engines import Session, open_warehouse
from transforms.errors import SegflowError
from transforms.files_out import write_atomically
from transforms.ingest import file_sha256
from transforms.packs import contacts_sql, export_body, writable_folder
from transforms.schema import IDENTIFIER_TYPES
from transforms.settings import Settings


@dataclass
class Reproduced:
    pack: str
    export_id: str
    as_of_date: str
    file: str
    sha256: str
    members: int


def reproduce(settings: Settings, pack_name: str, export_id: str, out_dir: Path | None = None) -> Reproduced:
    out_dir = writable_folder(out_dir)
    with open_warehouse(settings).read() as con:
        export = _recorded(con, pack_name, export_id)
        definition = json.loads(export["definition"])
        _refuse_what_is_missing(con, export)
        contacts = ", ".join(f"contacts.{kind}" for kind in IDENTIFIER_TYPES)
        con.execute(
            "create temp table audience as with "
            + contacts_sql(
                "(select * from pub.customer_identifiers_history where as_of_date = "
                f"cast('{export['as_of_date']}' as date)) as snapshot"
            )
            + " select members.customer_key, cast(null as varchar) as suppressed_reason, members.in_holdout, "
            f"{contacts} from pub.audience_pack_members as members "
            "left join contacts on members.customer_key = contacts.customer_key "
            f"where members.export_id = '{_quoted(export_id)}'"
        )
        _, _, body, _ = export_body(
            con,
            tuple(definition["contact_fields"]),
            definition["hashed_phone_format"],
            bool(export["hashed"]),
            export["previous_export"],
            bool(export["delta"]),
        )
    name = Path(export["file"]).name
    path = out_dir / name.replace(export_id, f"{export_id}.reproduced", 1)
    write_atomically(body, path, export["format"], export["exported_at"])
    checksum = file_sha256(path)
    if checksum != export["sha256"]:
        os.remove(path)
        raise SegflowError(
            f"export {export_id} cannot be reproduced byte for byte: the rebuilt file's SHA-256 is {checksum}, "
            f"the export's was {export['sha256']}; customer_identifiers_history as of {export['as_of_date']} "
            "changed since (that date was built again after more data was loaded)"
        )
    return Reproduced(pack_name, export_id, str(export["as_of_date"]), str(path), checksum, body.num_rows)


def _recorded(con: Session, pack_name: str, export_id: str) -> dict:
    if not con.table_exists("pub", "audience_pack_exports"):
        raise SegflowError("no pack has been exported yet: nothing to reproduce")
    rows = con.fetch_dicts("select * from pub.audience_pack_exports where export_id = ?", [export_id])
    if not rows:
        raise SegflowError(f"no export '{export_id}' in audience_pack_exports")
    export = rows[0]
    if export["pack"] != pack_name:
        raise SegflowError(f"export {export_id} is of pack {export['pack']}, not {pack_name}")
    if not export.get("definition"):
        raise SegflowError(
            f"export {export_id} was recorded by an earlier segflow, which kept neither its definition nor its "
            "previous export: it cannot be reproduced (exports from now on can)"
        )
    return export


def _refuse_what_is_missing(con: Session, export: dict) -> None:
    as_of = export["as_of_date"]
    if not con.scalar("select count(*) from pub.customer_identifiers_history where as_of_date = ?", [as_of]):
        raise SegflowError(
            f"export {export['export_id']} cannot be reproduced: customer_identifiers_history no longer holds "
            f"{as_of} (history.keep_daily_days removed it), so the contact values it exported are gone"
        )
    members = con.scalar(
        "select count(*) from pub.audience_pack_members where export_id = ? and not in_holdout",
        [export["export_id"]],
    )
    if members != export["members"]:
        raise SegflowError(
            f"export {export['export_id']} cannot be reproduced: audience_pack_members holds {members} of its "
            f"{export['members']} members"
        )
    previous = export["previous_export"]
    if (
        export["delta"]
        and previous
        and not con.scalar("select count(*) from pub.audience_pack_exports where export_id = ?", [previous])
    ):
        raise SegflowError(
            f"export {export['export_id']} is a delta of {previous}, whose members are no longer recorded"
        )


def _quoted(text: str) -> str:
    return text.replace("'", "''")
