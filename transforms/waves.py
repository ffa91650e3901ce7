"""Campaign rules that shape a pack's audience: waves (priority between packs) and frequency caps.

Parsed here from packs.yml and settings.yml; the audience SQL that applies them is in packs, and
`segflow pack plan` (campaigns) shows their effect.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from transforms.errors import SegflowError

# A packs.Pack: named generically because packs imports this module.
P = TypeVar("P")


@dataclass(frozen=True)
class FrequencyCap:
    """At most `max_exports` exports may reach one contact in any `days` days."""

    max_exports: int
    days: int

    def as_config(self) -> dict:
        return {"max_exports": self.max_exports, "days": self.days}


def frequency_cap(value: object, where: str) -> FrequencyCap | None:
    if value is None:
        return None
    if (
        not isinstance(value, dict)
        or set(value) != {"max_exports", "days"}
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value.values())
    ):
        raise SegflowError(
            f"{where}: write a frequency cap as {{max_exports: 2, days: 7}} (whole numbers, 1 or more)"
        )
    return FrequencyCap(int(value["max_exports"]), int(value["days"]))


def with_waves(packs: dict[str, P], waves: object, path: Path) -> dict[str, P]:
    """Each pack of a wave learns its wave and the packs before it (the wave's list is its priority)."""
    if not isinstance(waves, dict):
        raise SegflowError(f"{path} waves: a mapping of wave name to its packs in order of priority")
    in_wave: dict[str, str] = {}
    for wave, names in waves.items():
        where = f"{path} wave {wave}"
        if not isinstance(names, list) or len(names) < 2 or len(set(map(str, names))) != len(names):
            raise SegflowError(f"{where}: list two or more different packs, highest priority first")
        for name in map(str, names):
            if name not in packs:
                raise SegflowError(f"{where}: no pack '{name}' (packs: {', '.join(packs)})")
            if name in in_wave:
                raise SegflowError(
                    f"{where}: pack {name} is already in wave {in_wave[name]}; a pack belongs to one wave"
                )
            in_wave[name] = str(wave)
        for position, name in enumerate(map(str, names)):
            packs[name] = replace(
                packs[name], wave=str(wave), outranked_by=tuple(packs[str(n)] for n in names[:position])
            )
    return packs
