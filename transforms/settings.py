"""Where the warehouse and the business config live, and the settings read from config/settings.yml."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from transforms import PROJECT_ROOT
from transforms.errors import SegflowError

DEFAULT_WAREHOUSE_PATH = PROJECT_ROOT / "warehouse" / "segflow.duckdb"


def default_warehouse_url() -> str:
    return os.environ.get("SEGFLOW_WAREHOUSE") or f"duckdb:///{DEFAULT_WAREHOUSE_PATH}"


def default_config_dir() -> Path:
    return Path(os.environ.get("SEGFLOW_CONFIG") or PROJECT_ROOT / "config")


def load_yaml(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            # libyaml's loader where installed: the pure-Python one took 0.15 s of every build step.
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
        shipped = load_yaml(PROJECT_ROOT / "config" / "settings.yml")
        own_path = config_dir / "settings.yml"
        own = load_yaml(own_path) if own_path.exists() else {}
        values = _merge(shipped, own)
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
        """A business config file from the user's folder, else the shipped default."""
        own = self.config_dir / name
        return own if own.exists() else PROJECT_ROOT / "config" / name

    def today(self) -> date:
        return datetime.now(ZoneInfo(self.timezone)).date()

    def start_of_day(self, day: date) -> datetime:
        """Day D at 00:00 in the business timezone: `--as-of D` counts only facts before it."""
        return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(self.timezone))


def parse_as_of(text: str | None, settings: Settings) -> date:
    if text is None:
        return settings.today()
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise SegflowError(f"--as-of '{text}' is not a date of the form YYYY-MM-DD") from exc


def day_range(start: date, end: date) -> list[date]:
    return [start + timedelta(days=offset) for offset in range((end - start).days + 1)]
