"""Text from customers (their names) as people see it in a terminal or a plain-text report:
control characters, line and paragraph separators and bidirectional marks become escapes a person
reads (`\\x1b`), so a name cannot split a table row, retitle or clear the terminal, or turn a line
around."""

from __future__ import annotations

_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))} | {
    code: f"\\u{code:04x}"
    for code in (0x061C, 0x200E, 0x200F, 0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
}


def visible(value) -> str:
    """`value` as text with every invisible control written out; None as "-"."""
    return "-" if value is None else str(value).translate(_ESCAPES)
