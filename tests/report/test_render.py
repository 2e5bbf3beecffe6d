"""The report's forms from the quarter known by construction: what a reader sees in each."""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import replace
from datetime import datetime

import openpyxl
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Text

from report.figures import CUSTOMER_ROWS, FUNNEL_STEPS, SECTIONS, Activity, Message, Person, Sent, compute, summary
from report import sections as layout
from report.charts import CHARTS, SIZES, figure_of
from report.render import CUSTOMER_COLUMNS, as_csv, as_html, as_markdown, as_xlsx
from report.sections import duration
from report.spreadsheet import FORMULA_STARTS
from tests.report.test_figures import DAY, HOUR, MESSAGES, PEOPLE, QUARTER, SENT, THRESHOLDS


def report_of(activity: Activity) -> dict:
    sections = compute(activity, QUARTER, THRESHOLDS, SECTIONS + (CUSTOMER_ROWS,))
    return {"scope": {"number": "111", "owner": None}, "summary": summary(sections, None), "comparison": None, **sections}


def report_with_name(name: str) -> dict:
    return report_of(Activity([replace(PEOPLE[0], name=name)] + PEOPLE[1:], MESSAGES, SENT))


def test_html_escapes_what_customers_wrote_in_their_names():
    page = as_html(report_with_name('<script>alert("hi")</script>')).decode()
    assert "<script>" not in page and "&lt;script&gt;alert(&#34;hi&#34;)&lt;/script&gt;" in page
    assert "<p>Scope: number 111.</p>" in page


def test_markdown_tables_stay_whole_whatever_the_names():
    text = as_markdown(report_with_name("Acme | Ltd")).decode()
    row = next(line for line in text.splitlines() if "Acme" in line)
    assert row.startswith("| Acme / Ltd |") and row.count("|") == 6  # five columns
    assert "Scope: number 111." in text and "## 11. Action plan" in text


def test_csv_cells_a_spreadsheet_would_run_as_formulas_stay_text():
    rows = list(csv.DictReader(io.StringIO(as_csv(report_with_name('=HYPERLINK("http://x","y")')).decode())))
    assert rows[0]["name"] == "'=HYPERLINK(\"http://x\",\"y\")"
    assert rows[1]["name"] == "João" and rows[0]["interactions"] == "2"


def test_every_readable_form_shows_n_a_where_a_share_has_no_base():
    """One customer, never messaged, who never wrote: every rate's base is zero."""
    report = report_of(Activity([Person(1, "c1", tier_at_start="unengaged", tier_at_end="unengaged")], [], []))
    markdown = as_markdown(report).decode()
    assert "Reply rate n/a" in markdown and "0 of 0 customers we messaged replied: n/a." in markdown
    assert "| hot       | 0        | 0       | n/a  |" in markdown  # reply rate by tier
    assert "| 0         | 0.0%   | n/a               | 10-15%   |" in markdown  # hot: a share of none of the four
    assert "0 of 0 customers we messaged replied: n/a." in as_html(report).decode()
    with zipfile.ZipFile(io.BytesIO(as_xlsx(report))) as workbook:
        strings = workbook.read("xl/sharedStrings.xml").decode()
    assert "<t>n/a</t>" in strings and "0 of 0 customers we messaged replied: n/a." in strings


@pytest.mark.parametrize("name, first_line", [
    ("Bob\r=cmd|' /C calc'!A0", "Bob"),
    ("Bob\n+1+cmd|' /C calc'!A0", "Bob"),
    ("Bob\r\n@SUM(1)", "Bob"),
    ("\r=cmd", ""),
])
def test_a_line_break_inside_a_cell_neither_starts_a_row_nor_a_formula(name, first_line):
    """Read back with csv.reader: one row per customer, and no line of a cell that a spreadsheet
    would run (after a break, each line starts with an apostrophe)."""
    rows = list(csv.reader(io.StringIO(as_csv(report_with_name(name)).decode(), newline="")))
    header, first, *_ = rows
    assert len(rows) == 1 + len(PEOPLE)
    cell = first[header.index("name")]
    lines = cell.splitlines()
    assert lines[0] == ("'" + first_line if first_line.startswith(FORMULA_STARTS) else first_line)
    assert all(line.startswith("'") for line in lines[1:] if line)
    assert not any(line.startswith(FORMULA_STARTS) for line in lines)


@pytest.mark.parametrize("separator", ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"])
def test_every_character_that_breaks_a_line_is_a_line_break_for_the_formula_guard(separator):
    rows = list(csv.reader(io.StringIO(as_csv(report_with_name(f"Bob{separator}=cmd")).decode(), newline="")))
    cell = rows[1][rows[0].index("name")]
    assert cell.splitlines() == ["Bob", "'=cmd"]


def test_markdown_shows_control_characters_and_bidi_marks_as_escapes_and_keeps_rows_whole():
    text = as_markdown(report_with_name("A\nna\x1b[2J\u202e\u061c\u2028x")).decode()
    assert not any(character in text for character in "\x1b\u202e\u061c\u2028")
    row = next(line for line in text.splitlines() if "na\\x1b[2J" in line)
    assert row.startswith("| A\\x0ana\\x1b[2J\\u202e\\u061c\\u2028x |") and row.count("|") == 6


def hot_in(*countries: str) -> str:
    """The summary's sentence on the hot customers, one hot customer in each country named."""
    people = [Person(n, f"c{n}", country=country, tier_at_end="hot") for n, country in enumerate(countries, 1)]
    return summary(compute(Activity(people, [], []), QUARTER, THRESHOLDS), None)[1]


def test_the_summary_names_every_country_tied_for_the_most_hot_customers():
    assert hot_in("US", "US", "IN").startswith("Hot 100.0% of customers with a tier, the most in US;")
    assert hot_in("US", "ES", "US", "ES", "IN").startswith("Hot 100.0% of customers with a tier, the most in ES and US (2 each);")
    assert hot_in("US", "IN", "ES").startswith("Hot 100.0% of customers with a tier, no country stands out (1 in each of 3);")
    assert hot_in("US").startswith("Hot 100.0% of customers with a tier, all in US;")


def funnel_of(*furthest: int) -> str:
    """The funnel's section as Markdown, for customers who got as far as `furthest` (1 reached, 2
    replied, 3 inquired, 4 ordered), one each, on number 111 or, from the third on, 222."""
    signals = {2: {"question"}, 3: {"price_inquiry"}, 4: {"order"}}
    people = [Person(n, f"c{n}", owner="ana", number="111" if n < 3 else "222") for n in range(1, len(furthest) + 1)]
    sent = [Sent(person.id, QUARTER.start + DAY, rank=2, number=person.number) for person in people]
    messages = [Message(person.id, QUARTER.start + 2 * DAY, frozenset(signals[step]), person.number)
                for person, step in zip(people, furthest) if step > 1]
    text = as_markdown(report_of(Activity(people, messages, sent))).decode()
    return text[text.index("## 7."):text.index("## 8.")]


def test_the_funnel_names_every_step_tied_for_the_biggest_loss():
    assert "The step that loses the most: inquired." in funnel_of(4, 2, 2, 4)
    tied = funnel_of(3, 3, 1, 1)  # 4 reached, 2 replied, 2 inquired, none ordered: replied and ordered lose 2 each
    assert "The steps that lose the most, as many customers each: replied and ordered." in tied
    assert "| ana   | 4       | 2       | 2        | 0       | 0.0%               | replied and ordered |" in tied
    even = funnel_of(1, 2, 3)  # 3, 2, 1, 0: each step loses one
    assert "No step loses more customers than another." in even
    assert "| 111    | 2       | 1       | 0        | 0       | 0.0%               | none stands out |" in even
    assert "| 222    | 1       | 1       | 1        | 0       | 0.0%               | ordered         |" in even
    assert "The step that loses the most: n/a." in funnel_of(4, 4)


def best_hours_at(*hours: int) -> str:
    """The best-hours sentence for a customer in UTC who wrote once at each hour given."""
    person = Person(1, "c1", timezone="Etc/UTC")
    messages = [Message(1, QUARTER.start + DAY + hour * HOUR) for hour in hours]
    text = as_markdown(report_of(Activity([person], messages, []))).decode()
    return next(line for line in text.splitlines() if line.startswith("Best hours"))


def test_the_best_hours_name_every_hour_tied_with_the_third():
    assert best_hours_at(9, 9, 9, 10, 10, 11, 12) == "Best hours to write, per region: Etc 09:00, 10:00, 11:00, 12:00."
    assert best_hours_at(9, 9, 10, 10, 11, 11, 12) == "Best hours to write, per region: Etc 09:00, 10:00, 11:00."
    assert best_hours_at(9, 10) == "Best hours to write, per region: Etc 09:00, 10:00."
    assert best_hours_at(9, 10, 11, 12) == "Best hours to write, per region: Etc (no hour stands out)."


@pytest.mark.parametrize("seconds, shown", [
    (None, "n/a"), (59, "1 min"), (3599, "60 min"), (3600, "1.0 h"), (48 * HOUR, "48.0 h"), (48 * HOUR + 1, "2.0 days"),
    (300 * HOUR, "12.5 days"),
])
def test_durations_read_in_minutes_hours_and_past_48_hours_days(seconds, shown):
    assert duration(seconds) == shown


def test_the_reports_long_waits_read_in_days():
    """A dead customer who comes back 10 days after our message."""
    people = [replace(PEOPLE[0], tier_at_start="dead")]
    report = report_of(Activity(people, [Message(1, QUARTER.end - DAY)], [Sent(1, QUARTER.end - 11 * DAY, rank=2)]))
    assert "median time from our last message to their comeback 10.0 days." in as_markdown(report).decode()


def test_the_workbooks_customers_sheet_has_a_frozen_filtered_header_and_dates_as_dates():
    workbook = openpyxl.load_workbook(io.BytesIO(as_xlsx(report_of(Activity(PEOPLE, MESSAGES, SENT)))))
    customers = workbook["Customers"]
    assert customers.freeze_panes == "A2"
    assert customers.auto_filter.ref == f"A1:N{len(PEOPLE) + 1}" and len(CUSTOMER_COLUMNS) == 14
    priya = dict(zip(CUSTOMER_COLUMNS, (cell for cell in customers[2])))
    assert priya["key"].value == "c1" and priya["interactions"].value == 2
    assert priya["last_contact"].is_date and priya["last_contact"].number_format == "yyyy-mm-dd hh:mm"
    assert priya["last_contact"].value == datetime(2026, 9, 22)
    assert customers.column_dimensions["M"].width > 16  # wide enough to show the date whole
    plan = workbook["11 Action plan"]
    last_contact = next(row[2] for row in plan.iter_rows() if row[0].value == "Priya")
    assert last_contact.is_date and last_contact.value == datetime(2026, 9, 22)


def test_sheet_names_are_cut_after_a_whole_word():
    report = report_of(Activity(PEOPLE, MESSAGES, SENT))
    names = openpyxl.load_workbook(io.BytesIO(as_xlsx(report))).sheetnames
    titles = [f"{number} {section.title}" for number, section in enumerate(layout.sections(report), start=1)]
    assert names[8] == "9 Activity by customer local…"
    for name, title in zip(names, titles):
        assert len(name) <= 31 and (name == title or (name.endswith("…") and title.startswith(name[:-1] + " ")))


def crowded_report() -> dict:
    """The quarter's report with the longest labels its charts can get: six-digit counts, a tier
    holding all the four, a funnel title naming three tied steps."""
    report = report_of(Activity(PEOPLE, MESSAGES, SENT))
    for tier, entry in report["segmentation"]["tiers"].items():
        entry |= {"count": 123_456} | ({"share_of_four": 1.0 if tier == "hot" else 0.0} if "share_of_four" in entry else {})
    for step, count in zip(FUNNEL_STEPS, (1_234_567, 1_234_567, 1_234_567, 1)):
        report["funnel"][step]["count"] = count
    report["funnel"]["biggest_loss"] = list(FUNNEL_STEPS[1:])
    for week in report["trend"]:
        week |= {"inbound": 987_654, "outbound": 876_543, "customers_writing": 123_456}
    report["local_time"]["heatmap"] = [[100_000 * (day + hour) for hour in range(24)] for day in range(7)]
    return report


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", CHARTS)
def test_no_text_of_a_chart_overlaps_another_or_leaves_the_picture(name, size, monkeypatch):
    """Every piece of text the chart draws (wrapped as drawn), at both sizes: the narrow one is
    what a 390 px phone shows at the size it was drawn."""
    drawn = []
    draw_text = Text.draw
    monkeypatch.setattr(Text, "draw", lambda text, renderer: (drawn.append(text), draw_text(text, renderer))[1])
    figure = figure_of(crowded_report(), name, size)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    boxes = {text.get_text(): text.get_window_extent(canvas.get_renderer())
             for text in drawn if text.get_visible() and text.get_text().strip()}
    assert len(boxes) > 10
    for label, box in boxes.items():
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= figure.bbox.width and box.y1 <= figure.bbox.height, label
        assert not [other for other, its in boxes.items() if other != label and box.overlaps(its)], label
