"""Rendering lists for people and programs: aligned text tables, CSV, JSON and HTML pages.

What a visitor typed or a device sent can reach every one of them, so each form defends itself:
HTML goes through Jinja2 with autoescaping on, so a name can never become markup; tables, CSV and
JSON show non-printable characters escaped, so a name can never move a terminal's cursor; and
`csv_text`, the one CSV writer of the project, turns a cell a spreadsheet would run as a formula
into text. An instant that reaches JSON or CSV is written in `timefmt`'s machine form.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from facility.names import printable
from facility.timefmt import utc_text

_ENV = Environment(
    loader=PackageLoader("facility", "templates"), autoescape=select_autoescape(("html",))
)


# What makes Excel, LibreOffice and Google Sheets read a cell as a formula (or a DDE call): its
# first character after any spaces, ASCII or fullwidth (OWASP "CSV Injection"). Tab and CR, which
# can hide such a start too, never reach this test: `printable` has escaped them.
_FORMULA_START = tuple("=+-@＝＋－＠")
# Any character JSON leaves raw but a terminal may act on: controls, format characters, separators.
_JSON_UNSAFE = re.compile(r"[^\x20-\x7e\n]")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table with aligned columns, every cell printable."""
    cells = [[("" if c is None else printable(c)) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def csv_text(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """CSV with a header row; every text cell printable and never a formula (`csv_cell`)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([csv_cell(h) for h in headers])
    writer.writerows([csv_cell(c) for c in row] for row in rows)
    return out.getvalue()


def csv_cell(value: Any) -> Any:
    """A value as a CSV cell: numbers as they are; text escaped, and quoted if it starts a formula.

    The leading apostrophe is the spreadsheets' own way to say "this is text", and shows as the
    value; a program reading the CSV sees it and can strip it.
    """
    if value is None:
        return ""
    if isinstance(value, bool | int | float):
        return value
    text = utc_text(value) if isinstance(value, datetime) else printable(value)
    if text.lstrip(" ").startswith(_FORMULA_START):
        return "'" + text
    return text


def json_text(value: Any) -> str:
    """Pretty JSON, UTF-8 kept readable; characters a terminal could act on written as escapes."""
    text = json.dumps(value, indent=2, ensure_ascii=False, default=_json_default)
    return _JSON_UNSAFE.sub(_json_escape, text) if not text.isascii() or "\x7f" in text else text


def _json_default(value: Any) -> Any:
    """An instant in the one machine form (`timefmt`); anything else JSON lacks as its text."""
    return utc_text(value) if isinstance(value, datetime) else str(value)


def _json_escape(match: re.Match[str]) -> str:
    ch = match.group()
    if ch.isprintable():
        return ch
    code = ord(ch)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # a surrogate pair, as JSON spells characters beyond the BMP
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def html_page(template: str, **context: Any) -> str:
    """A page from `facility/templates`, escaped."""
    return _ENV.get_template(template).render(**context)
