"""The offline report: self-contained, and it renders in a real headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import date

import pytest

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
def report(segments_built, tmp_path_factory):
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
        "品类关联",
        "活动波次 spring_reactivation",
    ):
        assert heading in text
    assert "暂无迁移数据" not in text


def test_report_reads_in_the_operators_order_and_language(report):
    text = report.read_text(encoding="utf-8")
    headings = re.findall(r"<h2>(.*?)</h2>", text)
    # Overview first, then value x frequency, lifecycle, RFM, funnel, cohorts, channels.
    leading = [
        "概览",
        "价值×频次四象限 (近90天)",
        "生命周期",
        "RFM 经典分群",
        "RFM 热力图",
        "AARRR 漏斗",
        "首单月份",
        "渠道转化",
    ]
    positions = [next(i for i, h in enumerate(headings) if h.startswith(name)) for name in leading]
    assert positions == sorted(positions), headings
    assert not any(h in ("abc", "funnel", "lifecycle", "rfm8") for h in headings)
    # Lifecycle stages in order of severity; funnel stages and channels in Chinese.
    lifecycle = text[text.index("<h2>生命周期</h2>") : text.index("<h2>RFM 经典分群</h2>")]
    stages = ["新客(未购)", "首购客", "复购客", "回流", "半流失", "流失(30天无单)", "沉睡(180天无单)"]
    found = [lifecycle.index(stage) for stage in stages if stage in lifecycle]
    assert len(found) >= 5 and found == sorted(found)
    funnel = text[text.index("<h2>AARRR 漏斗") :]
    assert "陌生人" in funnel and "推荐者" in funnel and "advocate" not in funnel
    assert "企业微信" in text or "天猫" in text
    # The migration matrix names its model and both dates; shares come with counts; axes have ticks.
    assert "分群迁移矩阵:价值×频次四象限 (近90天),2026-03-10 → 2026-03-17" in text
    assert re.search(r"\d+\.\d%  ?\(\d+\)", text)
    assert ">25%</text>" in text and ">75%</text>" in text
    assert "较上次运行 (上次运行 2026-03-10)" in text


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
