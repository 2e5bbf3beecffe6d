"""The report's forms: JSON (every figure, stable keys), Markdown (readable as plain text), HTML
and XLSX (the same sections with charts, viewable offline) and CSV (one row per customer)."""

from __future__ import annotations

import base64
import io
from datetime import datetime
from typing import Callable, NamedTuple

import msgspec
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from report import sections as layout
from report.charts import SIZES, draw
from report.figures import CUSTOMER_ROWS
from report.spreadsheet import csv_text
from report.visible import visible

_json = msgspec.json.Encoder()


class Form(NamedTuple):
    media_type: str
    render: Callable[[dict], bytes]
    needs_customer_rows: bool = False


def as_json(report: dict) -> bytes:
    return msgspec.json.format(_json.encode(report), indent=2) + b"\n"


def as_markdown(report: dict) -> bytes:
    lines = [f"# {layout.title(report)}", ""]
    if scope := layout.scope(report):
        lines += [scope, ""]
    for number, section in enumerate(layout.sections(report), start=1):
        lines += [f"## {number}. {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, layout.Table):
                lines += ([block.caption, ""] if block.caption else []) + _markdown_table(block) + [""]
            else:
                lines += [visible(block), ""]
    return ("\n".join(lines).rstrip() + "\n").encode()


def _markdown_table(table: layout.Table) -> list[str]:
    cells = [table.header] + [[visible(layout.text(cell)).replace("|", "/") for cell in row] for row in table.rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(table.header))]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths)) + " |"

    return [line(cells[0]), "|" + "|".join("-" * (width + 2) for width in widths) + "|"] + [line(row) for row in cells[1:]]


_templates = Environment(loader=PackageLoader("report"), autoescape=select_autoescape(["html"]), trim_blocks=True,
                         lstrip_blocks=True)
_templates.filters["cell"] = layout.text
_templates.tests["table"] = lambda block: isinstance(block, layout.Table)


def as_html(report: dict) -> bytes:
    """One self-contained page: styles inline, charts as SVG data URIs (drawn narrow for phones),
    nothing fetched."""
    style, body = html_parts(report)
    return _templates.get_template("report.html").render(title=layout.title(report), style=style, body=body).encode()


def html_parts(report: dict) -> tuple[Markup, Markup]:
    """The HTML form's style sheet and body (its markup, all inside `div.report`), which the
    desk's report page shows as they are."""
    sections = layout.sections(report)
    charts = {name: {size: base64.b64encode(draw(report, name, "svg", size)).decode() for size in SIZES}
              for section in sections for name in section.charts}
    body = _templates.get_template("_report_body.html").render(
        title=layout.title(report), scope=layout.scope(report), sections=sections, charts=charts,
        numeric=lambda cell: not isinstance(cell, str) and cell is not None)
    return Markup(_templates.get_template("_report.css").render()), Markup(body)


def as_csv(report: dict) -> bytes:
    rows = report[CUSTOMER_ROWS]
    return csv_text(list(rows[0]) if rows else CUSTOMER_COLUMNS, (row.values() for row in rows)).encode()


CUSTOMER_COLUMNS = ["key", "name", "country", "time_zone", "owner", "business_number", "tier_at_start", "tier_at_end",
                    "interactions", "our_messages", "funnel_step", "orders", "last_contact", "last_signals"]
"""The CSV header (and the Customers sheet's), also when no customer is in scope."""


def as_xlsx(report: dict) -> bytes:
    """A workbook: one sheet per section with its tables (numbers as numbers, shares as
    percentages) and its charts as pictures, and a Customers sheet with every customer's row."""
    import xlsxwriter  # imported here: only this form needs it

    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False})
    styles = {"title": workbook.add_format({"bold": True, "font_size": 14}),
              "header": workbook.add_format({"bold": True, "bottom": 1}),
              "caption": workbook.add_format({"italic": True}),
              "share": workbook.add_format({"num_format": "0.0%"}),
              "count": workbook.add_format({"num_format": "#,##0"}),
              "instant": workbook.add_format({"num_format": "yyyy-mm-dd hh:mm"})}
    for number, section in enumerate(layout.sections(report), start=1):
        sheet = workbook.add_worksheet(_sheet_name(f"{number} {section.title}"))
        sheet.write(0, 0, f"{number}. {section.title}", styles["title"])
        width = max([len(block.header) for block in section.blocks if isinstance(block, layout.Table)], default=1)
        sheet.set_column(0, 0, 22)
        sheet.set_column(1, max(width - 1, 1), 12)
        row = 2
        if number == 1:
            sheet.write_string(1, 0, " ".join(filter(None, [layout.title(report), layout.scope(report)])))
        for block in section.blocks:
            if isinstance(block, layout.Table):
                row = _xlsx_table(sheet, row, block, styles)
            else:
                sheet.write_string(row, 0, block)
                row += 1
            row += 1
        for index, name in enumerate(section.charts):
            sheet.insert_image(2 + index * 22, width + 1, f"{name}.png",
                               {"image_data": io.BytesIO(draw(report, name, "png")), "x_scale": 0.8, "y_scale": 0.8})
    if CUSTOMER_ROWS in report:
        sheet = workbook.add_worksheet("Customers")
        sheet.set_column(0, len(CUSTOMER_COLUMNS) - 1, 14)
        rows = [[layout.Instant(row[column]) if column == "last_contact" else row[column] for column in CUSTOMER_COLUMNS]
                for row in report[CUSTOMER_ROWS]]
        end = _xlsx_table(sheet, 0, layout.Table(CUSTOMER_COLUMNS, rows), styles)
        sheet.freeze_panes(1, 0)  # the header stays in view as the rows scroll
        sheet.autofilter(0, 0, end - 1, len(CUSTOMER_COLUMNS) - 1)
    workbook.close()
    return buffer.getvalue()


SHEET_NAME_LENGTH = 31
"""The most characters Excel takes in a sheet's name."""


def _sheet_name(name: str) -> str:
    """`name` cut after its last whole word that fits, with an ellipsis to show it was cut."""
    if len(name) <= SHEET_NAME_LENGTH:
        return name
    return name[:SHEET_NAME_LENGTH - 1].rsplit(" ", 1)[0] + "…"


def _xlsx_table(sheet, row: int, table: layout.Table, styles: dict) -> int:
    """Writes a table from `row` down, widening the columns of dates to show them whole; returns
    the first row after it."""
    if table.caption:
        sheet.write(row, 0, table.caption, styles["caption"])
        row += 1
    sheet.write_row(row, 0, table.header, styles["header"])
    dated = set()
    for cells in table.rows:
        row += 1
        for column, cell in enumerate(cells):
            if isinstance(cell, layout.Share):
                sheet.write(row, column, cell.value if cell.value is not None else "n/a", styles["share"])
            elif isinstance(cell, layout.Duration):
                sheet.write(row, column, layout.text(cell))
            elif isinstance(cell, layout.Instant):
                if cell.iso:
                    utc = datetime.fromisoformat(cell.iso).replace(tzinfo=None)  # spreadsheets know no time zones
                    sheet.write_datetime(row, column, utc, styles["instant"])
                    dated.add(column)
            elif isinstance(cell, int):
                sheet.write_number(row, column, cell, styles["count"])
            elif cell is not None:
                sheet.write_string(row, column, cell)
    for column in dated:
        sheet.set_column(column, column, 17)
    return row + 1


FORMS = {
    "md": Form("text/markdown; charset=utf-8", as_markdown),
    "json": Form("application/json", as_json),
    "html": Form("text/html; charset=utf-8", as_html),
    "csv": Form("text/csv; charset=utf-8", as_csv, needs_customer_rows=True),
    "xlsx": Form("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", as_xlsx, needs_customer_rows=True),
}
