"""Where the warehouse and the business config live, and the settings read from config/settings.yml."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from transforms import PROJECT_ROOT
from transforms.errors import SegflowError

DEFAULT_WAREHOUSE_PATH = PROJECT_ROOT / "warehouse" / "segflow.duckdb"
SHIPPED_CONFIG_DIR = PROJECT_ROOT / "config"
CONFIG_FILES = ("settings.yml", "tags.yml", "segments.yml", "packs.yml")


def default_warehouse_url() -> str:
    return os.environ.get("SEGFLOW_WAREHOUSE") or f"duckdb:///{DEFAULT_WAREHOUSE_PATH}"


def default_config_dir() -> Path:
    return Path(os.environ.get("SEGFLOW_CONFIG") or SHIPPED_CONFIG_DIR)


def load_yaml(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            # libyaml's loader where installed: the pure-Python one is a visible part of every build step.
            return yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    except FileNotFoundError as exc:
        raise SegflowError(f"{path}: file not found") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise SegflowError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from exc


def _merge(defaults: dict, overrides: dict) -> dict:
    merged = dict(defaults)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def config_path(folder: Path, name: str) -> Path:
    """A business config file of a brand's folder. A missing one is an error: falling back to the
    shipped demo files would build the demo catalog and export the demo packs for a brand whose
    file is missing or misnamed."""
    path = folder / name
    if path.exists():
        return path
    misnamed = sorted(p.name for p in folder.glob(f"{Path(name).stem}.*") if p.name != name)
    hint = f"found {misnamed[0]}: rename it {name}" if misnamed else "copy it from the shipped files"
    raise SegflowError(
        f"{path}: file not found in the config folder ({hint}; `segflow init-config DIR` "
        "writes a complete starting folder)"
    )


@dataclass(frozen=True)
class Settings:
    """The business settings plus where things are. One instance per command."""

    config_dir: Path
    warehouse_url: str
    values: dict = field(default_factory=dict)

    @classmethod
    def load(cls, config_dir: Path | str | None = None, warehouse_url: str | None = None) -> Settings:
        config_dir = Path(config_dir) if config_dir else default_config_dir()
        if not config_dir.is_dir():
            raise SegflowError(f"{config_dir}: config folder not found (set --config or SEGFLOW_CONFIG)")
        shipped = load_yaml(SHIPPED_CONFIG_DIR / "settings.yml")
        own_path = config_path(config_dir, "settings.yml")
        values = _merge(shipped, load_yaml(own_path))
        try:
            ZoneInfo(values["business_timezone"])
        except Exception as exc:
            raise SegflowError(
                f"{own_path}: business_timezone '{values.get('business_timezone')}' is not a known timezone"
            ) from exc
        return cls(
            config_dir=config_dir, warehouse_url=warehouse_url or default_warehouse_url(), values=values
        )

    def get(self, dotted: str) -> Any:
        node: Any = self.values
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                raise SegflowError(f"{self.config_dir / 'settings.yml'}: setting '{dotted}' is missing")
            node = node[part]
        return node

    @property
    def timezone(self) -> str:
        return self.values["business_timezone"]

    def config_file(self, name: str) -> Path:
        """A business config file from the config folder (config_path)."""
        return config_path(self.config_dir, name)

    def today(self) -> date:
        return datetime.now(ZoneInfo(self.timezone)).date()

    def start_of_day(self, day: date) -> datetime:
        """Day D at 00:00 in the business timezone: `--as-of D` counts only facts before it."""
        return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(self.timezone))


def parse_as_of(text: str | None, settings: Settings) -> date:
    if text is None:
        return settings.today()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise SegflowError(f"--as-of '{text}' is not a date of the form YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise SegflowError(f"--as-of '{text}' is not a day of the calendar ({exc})") from exc


def init_config(folder: Path) -> list[Path]:
    """Copy the shipped business config into a brand's folder as a starting point; files already
    there are kept."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in CONFIG_FILES:
        target = folder / name
        if not target.exists():
            shutil.copyfile(SHIPPED_CONFIG_DIR / name, target)
            written.append(target)
    return written


def day_range(start: date, end: date) -> list[date]:
    return [start + timedelta(days=offset) for offset in range((end - start).days + 1)]
