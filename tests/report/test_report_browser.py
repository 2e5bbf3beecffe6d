"""The HTML report in a real browser (Playwright driving Debian's Chromium, as the desk's tests
do): at 390 px wide the page does not scroll sideways and each chart is the one drawn for a
phone, shown whole at about the size it was drawn, so its text reads as on a wide screen."""

from __future__ import annotations

from pathlib import Path

import pytest

from report.figures import Activity
from report.render import as_html
from tests.report.test_figures import MESSAGES, PEOPLE, SENT
from tests.report.test_render import report_of
from tests.webhook.test_desk_browser import CHROMIUM, chromium, look, screenshots  # the browser, and its checks

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
NARROW = "chart.currentSrc === chart.previousElementSibling.srcset"  # the picture's <source> for phones
CHARTS_SHOWN = f"""() => [...document.querySelectorAll("img.chart")].map(chart => ({{
    narrow: {NARROW}, right: chart.getBoundingClientRect().right, shown: chart.width, drawn: chart.naturalWidth}}))"""


def test_the_html_report_fits_a_phone_and_shows_its_charts_drawn_for_it(chromium, screenshots, tmp_path):
    page_file = tmp_path / "report.html"
    page_file.write_bytes(as_html(report_of(Activity(PEOPLE, MESSAGES, SENT))))
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(page_file.as_uri())
    look(page, screenshots, "report")
    for width, narrow in ((390, True), (1280, False)):
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_function(f"[...document.images].every(chart => chart.complete && ({NARROW}) === {str(narrow).lower()})",
                               timeout=10_000)
        charts = page.evaluate(CHARTS_SHOWN)
        assert len(charts) == 4
        for chart in charts:
            assert chart["narrow"] is narrow and chart["right"] <= width
            assert chart["shown"] >= 0.95 * chart["drawn"]  # not shrunk: text at the size it was drawn
    context.close()
