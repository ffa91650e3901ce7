"""The offline report: self-contained, and it renders in a real headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import date

import pytest

from tests.test_segments import built as segments_built  # noqa: F401 - module fixture reused
from transforms.build import build
from transforms.report import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def report(segments_built, tmp_path_factory):  # noqa: F811
    build(segments_built, date(2026, 3, 17), run_checks=False)  # a second run: migration has data
    return write_report(segments_built, tmp_path_factory.mktemp("report") / "report.html")


def test_report_is_self_contained(report):
    text = report.read_text(encoding="utf-8")
    assert "<script" not in text and "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in text
    assert text.count("<svg") >= 8  # segment bars per model, Pareto, funnel, channels, portrait
    for heading in (
        "帕累托曲线",
        "RFM 热力图",
        "AARRR 漏斗",
        "分群迁移矩阵",
        "渠道转化",
        "首单月份同期群复购率",
    ):
        assert heading in text
    assert "暂无迁移数据" not in text


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make test installs it)")
def test_report_renders_in_headless_chromium(report, tmp_path):
    profile = tmp_path / "profile"
    dom = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", report.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert len(re.findall(r"<svg", dom)) >= 8 and "RFM" in dom
    screenshot = tmp_path / "report.png"
    subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={profile}",
            "--window-size=1000,3000",
            f"--screenshot={screenshot}",
            report.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert screenshot.stat().st_size > 50_000  # a blank page is a few kilobytes
