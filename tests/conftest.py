"""Shared fixtures: a throwaway warehouse and config folder per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from transforms import PROJECT_ROOT
from transforms.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"


def write_config(folder: Path, settings_overrides: dict | None = None) -> Path:
    """A brand's own config folder: the shipped YAML files plus settings overrides."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("tags.yml", "segments.yml", "packs.yml"):
        shipped = PROJECT_ROOT / "config" / name
        if shipped.exists():
            shutil.copy(shipped, folder / name)
    (folder / "settings.yml").write_text(
        yaml.safe_dump(settings_overrides or {}, allow_unicode=True), encoding="utf-8"
    )
    return folder


@pytest.fixture
def make_settings(tmp_path: Path):
    def make(overrides: dict | None = None, name: str = "wh") -> Settings:
        config = write_config(tmp_path / f"config_{name}", overrides)
        url = f"duckdb:///{tmp_path / name / 'segflow.duckdb'}"
        return Settings.load(config, url)

    return make


@pytest.fixture
def settings(make_settings) -> Settings:
    return make_settings({"ingest": {"max_quarantine_share": 0.9}})


def write_csv(path: Path, header: str, *rows: str) -> Path:
    """A small landing CSV written in the test, for cases the shared fixtures do not hold."""
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def published_rows(settings: Settings, sql: str, params: list | None = None) -> list[tuple]:
    """Rows of the published tables, read as BI tools read them (the engine's reader)."""
    from transforms.engines import open_warehouse

    with open_warehouse(settings).read() as con:
        return con.execute(sql, params or []).fetchall()


def work_rows(settings: Settings, sql: str, params: list | None = None) -> list[tuple]:
    from transforms.engines import open_warehouse

    with open_warehouse(settings).work() as con:
        return con.execute(sql, params or []).fetchall()


def load_feature_fixture(settings: Settings) -> None:
    """The hand-checked customers of tests/fixtures/features (see its README)."""
    from transforms.ingest import ingest

    for kind in ("products", "contacts", "orders", "order_items", "events"):
        ingest(settings, [FIXTURES / "features" / f"{kind}.csv"], kind)


@pytest.fixture
def features_built(make_settings) -> Settings:
    """The features fixture built as of 2026-03-10, its shop phone junk (more than 3 links)."""
    from datetime import date

    from transforms.build import build

    settings = make_settings({"identity": {"max_links_per_identifier": 3}})
    load_feature_fixture(settings)
    build(settings, date(2026, 3, 10), run_checks=False)
    return settings


@pytest.fixture(scope="module")
def segments_built(tmp_path_factory) -> Settings:
    """The segment fixture's customers (tests/fixtures/segments) built as of 2026-03-10."""
    from datetime import date

    from transforms.build import build
    from transforms.ingest import ingest

    folder = tmp_path_factory.mktemp("segments")
    settings = Settings.load(write_config(folder / "config"), f"duckdb:///{folder / 'wh' / 'segflow.duckdb'}")
    for kind in ("contacts", "orders", "events"):
        ingest(settings, [FIXTURES / "segments" / f"{kind}.csv"], kind)
    build(settings, date(2026, 3, 10), run_checks=False)
    return settings
