"""The report's forms from the quarter known by construction: what a reader sees in each."""

from __future__ import annotations

from dataclasses import replace

from report.figures import Activity, compute, summary
from report.render import as_html, as_markdown
from tests.report.test_figures import MESSAGES, PEOPLE, QUARTER, SENT, THRESHOLDS


def report_with_name(name: str) -> dict:
    people = [replace(PEOPLE[0], name=name)] + PEOPLE[1:]
    sections = compute(Activity(people, MESSAGES, SENT), QUARTER, THRESHOLDS)
    return {"scope": {"number": "111", "owner": None}, "summary": summary(sections, None), "comparison": None, **sections}


def test_html_escapes_what_customers_wrote_in_their_names():
    page = as_html(report_with_name('<script>alert("hi")</script>')).decode()
    assert "<script>" not in page and "&lt;script&gt;alert(&#34;hi&#34;)&lt;/script&gt;" in page
    assert "<p>Scope: number 111.</p>" in page


def test_markdown_tables_stay_whole_whatever_the_names():
    text = as_markdown(report_with_name("Acme | Ltd")).decode()
    row = next(line for line in text.splitlines() if "Acme" in line)
    assert row.startswith("| Acme / Ltd |") and row.count("|") == 6  # five columns
    assert "Scope: number 111." in text and "## 11. Action plan" in text
