"""`segflow pack plan WAVE`: how the packs of a wave overlap, and what each keeps after priority and caps.

A customer several packs of a wave select is exported only by the first of them in the wave's list
(the others suppress them as wave_priority); a frequency cap suppresses contacts the export history
already reached often enough (frequency_cap). The plan shows both before anything is exported.
"""

from __future__ import annotations

from datetime import UTC, datetime

from transforms.console import print_table
from transforms.engines import open_warehouse
from transforms.errors import SegflowError
from transforms.packs import Pack, audience_counts, audience_sql, base_audience_sql, load_packs
from transforms.settings import Settings


def load_waves(settings: Settings) -> dict[str, list[Pack]]:
    """Each wave's packs, highest priority first."""
    waves: dict[str, list[Pack]] = {}
    for pack in load_packs(settings).values():
        if pack.wave:
            waves.setdefault(pack.wave, []).append(pack)
    return {wave: sorted(members, key=lambda p: len(p.outranked_by)) for wave, members in waves.items()}


def plan_wave(settings: Settings, wave: str, at: datetime | None = None) -> dict:
    waves = load_waves(settings)
    if wave not in waves:
        raise SegflowError(
            f"no wave '{wave}' in {settings.config_file('packs.yml')} (waves: {', '.join(waves) or 'none defined'})"
        )
    packs = waves[wave]
    at = at or datetime.now(UTC)
    rows, overlaps = [], []
    with open_warehouse(settings).read() as con:
        for number, pack in enumerate(packs):
            # Who the pack selects and can reach, before the wave and the cap: what the overlaps count.
            con.execute(
                f"create temp table wave_eligible_{number} as select customer_key from "
                f"({con.render(base_audience_sql(pack, con))}) as base where suppressed_reason is null"
            )
            con.execute(f"create temp table audience as {con.render(audience_sql(pack, con, at))}")
            counts = audience_counts(con)
            con.execute("drop table audience")
            reasons = counts["suppressed_by_reason"]
            rows.append(
                {
                    "priority": number + 1,
                    "pack": pack.name,
                    "channel": pack.channel,
                    "matched": counts["matched"],
                    "eligible": con.scalar(f"select count(*) from wave_eligible_{number}"),
                    "wave_priority": reasons.get("wave_priority", 0),
                    "frequency_cap": reasons.get("frequency_cap", 0),
                    "kept_members": counts["members"],
                    "kept_holdout": counts["holdout"],
                    "suppressed_by_reason": reasons,
                }
            )
            as_of = counts["as_of"]
        for first in range(len(packs)):
            for second in range(first + 1, len(packs)):
                overlaps.append(
                    {
                        "pack": packs[first].name,
                        "other_pack": packs[second].name,
                        "customers_in_both": con.scalar(
                            f"select count(*) from wave_eligible_{first} where customer_key in "
                            f"(select customer_key from wave_eligible_{second})"
                        ),
                    }
                )
    return {"wave": wave, "as_of_date": str(as_of) if as_of else None, "packs": rows, "overlaps": overlaps}


def latest_wave(settings: Settings) -> str | None:
    """The wave of the pack exported last, or the first wave defined; None without waves."""
    waves = load_waves(settings)
    if not waves:
        return None
    wave_of = {pack.name: wave for wave, packs in waves.items() for pack in packs}
    with open_warehouse(settings).read() as con:
        if con.relation_kind("pub", "audience_pack_exports") is not None:
            for (name,) in con.execute(
                "select pack from audience_pack_exports order by exported_at desc, export_id desc"
            ).fetchall():
                if name in wave_of:
                    return wave_of[name]
    return next(iter(waves))


def print_plan(result: dict) -> None:
    print(f"wave {result['wave']} as of {result['as_of_date']}: packs in order of priority")
    columns = ["priority", "pack", "channel", "matched", "eligible", "wave_priority", "frequency_cap"]
    print_table(result["packs"], [*columns, "kept_members", "kept_holdout"])
    print("\noverlaps (customers each pair selects and can reach, before priority):")
    print_table(result["overlaps"])
