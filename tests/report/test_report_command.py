"""`wapulse report` over a replayed timeline in a real database: each figure checked against an
independent count of the same stored rows."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import zipfile
from xml.etree import ElementTree

import pytest
from sqlalchemy import func, select

from report.render import CUSTOMER_COLUMNS
from store.models import Customer, EventRow, OutboundMessageRow
from tests.conftest import FIXTURES
from tests.wapulse.test_cli import run

TIMELINE = FIXTURES / "scenarios" / "messages__timeline__tier_moves.jsonl"
NOW = "2026-12-30T00:00:00Z"
PERIOD = ("--from", "2026-09-01", "--to", "2026-12-29")
START, END = 1788220800, 1798588800  # 2026-09-01 and 2026-12-30, 00:00 UTC


def test_the_report_matches_an_independent_count_of_the_stored_events(env, engine):
    run("replay", str(TIMELINE), str(FIXTURES / "cloudapi"), "--now", NOW)
    report = json.loads(run("report", *PERIOD, "--format", "json", "--now", NOW))
    with engine.connect() as connection:
        messages = connection.execute(select(EventRow.customer_id, EventRow.at).where(
            EventRow.kind == "message", EventRow.at >= START, EventRow.at < END, EventRow.customer_id.is_not(None))).all()
        ours = connection.execute(select(OutboundMessageRow.customer_id).where(
            OutboundMessageRow.at >= START, OutboundMessageRow.at < END)).scalars().all()
        errors = connection.execute(select(func.count()).select_from(EventRow).where(
            EventRow.kind == "error", EventRow.at >= START, EventRow.at < END)).scalar()
    assert report["source"]["events"] == {"inbound": len(messages), "outbound": len(ours)}
    assert report["source"]["customers"] == len({c for c, _ in messages} | set(ours))
    assert report["source"]["excluded"]["errors about a business number (no customer)"] == errors
    assert report["reply_rate"]["messaged"] == len(set(ours))
    assert report["source"]["period"] == {"from": "2026-09-01T00:00:00Z", "to": "2026-12-30T00:00:00Z"}
    assert report["comparison"]["customers"]["now"] == report["source"]["customers"]

    text = run("report", *PERIOD, "--now", NOW)
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert [h.split(".")[0] for h in headings] == [f"## {n}" for n in range(1, 12)]
    assert "# WhatsApp customer activity, 2026-09-01 to 2026-12-29" in text


def test_report_options_are_checked(env):
    assert "--from '2026-02-30' is not a date" in run("report", "--from", "2026-02-30", expect=2)
    assert "--from 2026-09-02 is after --to 2026-09-01" in run("report", "--from", "2026-09-02", "--to", "2026-09-01",
                                                                expect=2)
    assert "--owner 'zed' is not a rep" in run("report", "--owner", "zed", expect=2)
    assert "--from 0001-01-01 is outside 2000-01-01 to 2099-12-31" in run("report", "--from", "0001-01-01", expect=2)
    empty = json.loads(run("report", "--format", "json", "--compare", "none"))
    assert empty["comparison"] is None and empty["source"]["customers"] == 0 and empty["reply_rate"]["rate"] is None


def test_a_number_the_store_does_not_know_is_refused_like_an_unknown_owner(env):
    run("replay", str(TIMELINE), str(FIXTURES / "cloudapi"), "--now", NOW)
    refused = run("report", *PERIOD, "--number", "110000000000009", "--now", NOW, expect=2)
    assert refused.splitlines()[-1] == (
        "Error: --number '110000000000009' is not a business number the store knows (nothing went through it)")
    report = json.loads(run("report", *PERIOD, "--number", "106540352242922", "--format", "json", "--now", NOW))
    assert report["source"]["numbers"] == ["106540352242922"]


def test_output_into_a_folder_that_does_not_exist_is_refused_before_any_work(env, tmp_path, monkeypatch):
    monkeypatch.setattr("report.build.produce", lambda *_: pytest.fail("the report was built"))
    refused = run("report", "--format", "html", "-o", str(tmp_path / "missing" / "report.html"), expect=2)
    assert refused.splitlines()[-1] == (
        f"Error: Invalid value for '-o' / '--output-file': '{tmp_path / 'missing'}' is not a folder that exists")
    assert not (tmp_path / "missing").exists()


def test_the_html_xlsx_and_csv_forms(env, engine, tmp_path):
    run("replay", str(TIMELINE), str(FIXTURES / "cloudapi"), "--now", NOW)
    page = run("report", *PERIOD, "--format", "html", "--now", NOW)
    assert [f"{n}." for n in range(1, 12)] == re.findall(r"<h2>(\d+\.)", page)
    charts = re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', page)
    assert len(charts) == 4
    for chart in charts:  # each one a well-formed SVG drawing
        assert ElementTree.fromstring(base64.b64decode(chart)).tag == "{http://www.w3.org/2000/svg}svg"
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing to fetch: it opens offline

    with engine.connect() as connection:
        customers = connection.execute(select(func.count()).select_from(Customer)).scalar()
    rows = list(csv.DictReader(io.StringIO(run("report", *PERIOD, "--format", "csv", "--now", NOW))))
    assert len(rows) == customers and list(rows[0]) == CUSTOMER_COLUMNS
    with engine.connect() as connection:
        written = dict(connection.execute(
            select(Customer.key, func.count()).join(EventRow, EventRow.customer_id == Customer.id)
            .where(EventRow.kind == "message", EventRow.at >= START, EventRow.at < END).group_by(Customer.key)).all())
    assert {row["key"]: int(row["interactions"]) for row in rows if row["interactions"] != "0"} == written

    workbook = tmp_path / "report.xlsx"
    run("report", *PERIOD, "--format", "xlsx", "--now", NOW, "-o", str(workbook))
    with zipfile.ZipFile(workbook) as archive:
        sheets = re.findall(r'<sheet name="([^"]+)"', archive.read("xl/workbook.xml").decode())
        pictures = [name for name in archive.namelist() if name.startswith("xl/media/")]
        last_sheet = archive.read(f"xl/worksheets/sheet{len(sheets)}.xml").decode()
        assert all(archive.read(name).startswith(b"\x89PNG") for name in pictures)
    assert sheets[0] == "1 Executive summary" and sheets[-1] == "Customers" and len(sheets) == 12
    assert len(pictures) == 4
    assert last_sheet.count("<row ") == customers + 1  # the header, then one row per customer
