"""CSV that a spreadsheet opens as data, whatever customers put in their names.

A cell holding a line break is quoted (rows end in CRLF, as RFC 4180 has it, so that a bare CR
inside a cell is quoted too and cannot start a row of its own), and every line of a text cell
(after any character that ends a line: CR, LF, VT, FF, the Unicode separators) that a
spreadsheet would run as a formula (=, +, -, @, a tab) starts with an apostrophe, which
spreadsheets show as text: "=HYPERLINK(...)" as a name stays a name.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_LINE_BREAKS = re.compile("(\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029])")
"""Every character that ends a line for Python's str.splitlines (and for some spreadsheet)."""


def csv_text(header: list[str], rows: Iterable[Iterable]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([inert(value) for value in row] for row in rows)
    return buffer.getvalue()


def inert(value):
    """A text cell with an apostrophe before each line that would start a formula."""
    if not isinstance(value, str):
        return value
    parts = _LINE_BREAKS.split(value)  # lines at even places, the breaks between them at odd ones
    return "".join("'" + part if index % 2 == 0 and part.startswith(FORMULA_STARTS) else part
                   for index, part in enumerate(parts))
