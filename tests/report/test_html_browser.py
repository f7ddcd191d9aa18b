"""The HTML report in a real browser: headless Chromium renders it without a console
error or exception, and shows the chart."""

from __future__ import annotations

import base64
import io
import shutil
from pathlib import Path
from typing import Any

import pytest

from runtime.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (CI installs Debian's chromium with "
    "apt-get install -y chromium in .ci/run)")


@pytest.mark.parametrize("run_id", ["done", "failed", "crashed"])
def test_report_renders_in_chromium_with_its_chart(made: tuple[Path, dict[str, Any]],
                                                   tmp_path: Path, run_id: str) -> None:
    """No console error, no exception (the CSP admits the report's own script), one chart
    bar group per turn, visible for every turn that used tokens, and "expand all" opens
    every fold."""
    from .cdp import Browser

    base, _ = made
    out = tmp_path / "report.html"
    code = main(["report", run_id, "--dir", str(base), "-o", str(out)],
                stdout=io.StringIO(), stderr=io.StringIO())
    assert code == 0
    assert CHROMIUM is not None
    browser = Browser(CHROMIUM, tmp_path / "profile")
    try:
        for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
            browser.page(domain)
        browser.page("Emulation.setDeviceMetricsOverride", width=1100, height=1800,
                     deviceScaleFactor=1, mobile=False)
        browser.page("Page.navigate", url=out.as_uri())
        browser.wait_for("Page.loadEventFired")
        check = browser.page("Runtime.evaluate", returnByValue=True, expression="""(() => {
            const bars = [...document.querySelectorAll('svg.chart g.turn')];
            const rows = document.querySelectorAll('table.turns tr[data-turn]').length;
            const sized = bars.filter(g => g.getBBox().height > 0).length;
            document.getElementById('expand').click();
            const details = document.querySelectorAll('details');
            const open = [...details].filter(d => d.open).length;
            return {bars: bars.length, rows, sized, details: details.length, open,
                    chart: document.querySelector('svg.chart').getBoundingClientRect().width};
        })()""")["result"]["value"]
        shot = browser.page("Page.captureScreenshot", format="png")["data"]
        (tmp_path / "report.png").write_bytes(base64.b64decode(shot))
        problems = browser.problems()
    finally:
        browser.close()
    assert problems == []
    from runtime.report.folder import load_run
    from runtime.report.model import build_report

    data = load_run(run_id, base / run_id)
    stats = build_report(run_id, data.records, data.summary, data.errors).stats
    assert check["bars"] == check["rows"] == len(stats) >= 1
    assert check["sized"] == sum(s.input_tokens + s.output_tokens > 0 for s in stats)
    assert check["chart"] > 100
    assert check["open"] == check["details"]
