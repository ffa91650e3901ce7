"""Campaign governance on the features fixture (tests/fixtures/features/README.md): waves with
priority and frequency caps, counted by hand.

Reachable by unionid: Alice (spend 750), Bob (600), J1-J4 (10-40 each); Carol never ordered and
opted out. So `total_spend >= 500` is Alice and Bob, `order_count >= 1` is those two and J1-J4,
`total_spend < 100` is Carol and J1-J4.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
import yaml

from tests.conftest import cli, load_feature_fixture
from transforms.build import build
from transforms.campaigns import plan_wave
from transforms.errors import SegflowError
from transforms.packs import export, load_packs, preview

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def with_packs(settings, packs: dict, waves: dict | None = None):
    document = {"packs": packs, **({"waves": waves} if waves else {})}
    settings.config_file("packs.yml").write_text(
        yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    return settings


def pack(where: str, **more) -> dict:
    return {"where": where, "contact_fields": ["unionid"], "holdout_share": 0, **more}


@pytest.fixture
def wave(features_built):
    return with_packs(
        features_built,
        {
            "big": pack("total_spend >= 500"),
            "buyers": pack("order_count >= 1"),
            "small": pack("total_spend < 100"),
        },
        {"spring": ["big", "buyers", "small"]},
    )


def test_a_customer_several_packs_of_a_wave_select_goes_to_the_first(wave, tmp_path):
    plan = plan_wave(wave, "spring", at=T0)
    kept = [
        (p["pack"], p["matched"], p["eligible"], p["wave_priority"], p["kept_members"]) for p in plan["packs"]
    ]
    assert kept == [("big", 2, 2, 0, 2), ("buyers", 6, 6, 2, 4), ("small", 5, 4, 4, 0)]
    assert plan["packs"][2]["suppressed_by_reason"] == {"opted_out": 1, "wave_priority": 4}
    assert [(o["pack"], o["other_pack"], o["customers_in_both"]) for o in plan["overlaps"]] == [
        ("big", "buyers", 2),
        ("big", "small", 0),
        ("buyers", "small", 4),
    ]
    packs = load_packs(wave)
    assert preview(wave, packs["buyers"], at=T0)["suppressed_by_reason"] == {"wave_priority": 2}
    exported = export(wave, packs["buyers"], tmp_path, exported_at=T0)
    assert exported.members == 4 and exported.suppressed == 2
    manifest = json.loads((tmp_path / f"{exported.export_id}.csv.manifest.json").read_text(encoding="utf-8"))
    assert manifest["suppressed_by_reason"] == {"wave_priority": 2}
    assert manifest["definition"]["wave"] == {"name": "spring", "after": ["big"]}


def test_the_plan_on_the_command_line(wave):
    human = cli(wave, "pack", "plan", "spring")
    assert human.returncode == 0, human.stderr
    assert "wave spring as of 2026-03-10: packs in order of priority" in human.stdout
    assert human.stdout.splitlines()[4].split() == ["2", "buyers", "6", "6", "2", "0", "4", "0"]
    unknown = cli(wave, "pack", "plan", "autumn")
    assert (
        unknown.returncode == 1 and "no wave 'autumn'" in unknown.stderr and "waves: spring" in unknown.stderr
    )


@pytest.mark.parametrize(
    ("waves", "message"),
    [
        ({"w": ["big"]}, "list two or more different packs"),
        ({"w": ["big", "nope"]}, "no pack 'nope'"),
        ({"w": ["big", "buyers"], "v": ["buyers", "small"]}, "wave v: pack buyers is already in wave w"),
    ],
)
def test_a_bad_wave_is_one_line_naming_it(features_built, waves, message):
    settings = with_packs(
        features_built,
        {
            "big": pack("total_spend >= 500"),
            "buyers": pack("order_count >= 1"),
            "small": pack("total_spend < 100"),
        },
        waves,
    )
    with pytest.raises(SegflowError, match=message):
        load_packs(settings)


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_frequency_caps_count_exports_of_the_channel_in_a_rolling_window(request, engine, tmp_path):
    make_settings = request.getfixturevalue("make_settings" if engine == "duckdb" else "make_pg_settings")
    settings = make_settings(
        {
            "identity": {"max_links_per_identifier": 3},
            "packs": {"frequency_caps": {"sms": {"max_exports": 2, "days": 7}}},
        }
    )
    load_feature_fixture(settings)
    build(settings, date(2026, 3, 10), run_checks=False)
    with_packs(
        settings,
        {
            "buyers": pack("order_count >= 1", channel="sms"),
            "big": pack("total_spend >= 500", channel="sms"),
            "big_lenient": pack(
                "total_spend >= 500", channel="sms", frequency_cap={"max_exports": 3, "days": 7}
            ),
            "big_email": pack("total_spend >= 500", channel="email"),
        },
    )
    packs = load_packs(settings)
    day = timedelta(days=1)
    assert export(settings, packs["buyers"], tmp_path, exported_at=T0).members == 6
    assert export(settings, packs["big"], tmp_path, exported_at=T0 + day).members == 2  # 1 sms each so far
    # Alice and Bob have had 2 sms in 7 days; J1-J4 one.
    assert preview(settings, packs["buyers"], at=T0 + 2 * day)["suppressed_by_reason"] == {"frequency_cap": 2}
    capped = export(settings, packs["big"], tmp_path, exported_at=T0 + 2 * day)
    assert (capped.members, capped.suppressed) == (0, 2)
    assert (
        export(settings, packs["big_lenient"], tmp_path, exported_at=T0 + 2 * day).members == 2
    )  # its cap is 3
    assert (
        export(settings, packs["big_email"], tmp_path, exported_at=T0 + 2 * day).members == 2
    )  # another channel
    # Eight days on, only the exports of day 2 are in the window: one sms each for Alice and Bob.
    assert export(settings, packs["big"], tmp_path, exported_at=T0 + 8 * day).members == 2


def test_a_bad_frequency_cap_is_one_line_naming_it(features_built):
    settings = with_packs(
        features_built,
        {"p": pack("order_count >= 1", channel="sms", frequency_cap={"max_exports": 0, "days": 7})},
    )
    with pytest.raises(
        SegflowError, match=r"pack p frequency_cap: write a frequency cap as \{max_exports: 2, days: 7\}"
    ):
        load_packs(settings)
