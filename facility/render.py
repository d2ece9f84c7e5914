"""Rendering lists for people and programs: aligned text tables, CSV, JSON and HTML pages.

HTML goes through Jinja2 with autoescaping on, so a visitor's name can never become markup.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

_ENV = Environment(
    loader=PackageLoader("facility", "templates"), autoescape=select_autoescape(("html",))
)


def local_time(value: datetime | None, site_zone: tzinfo) -> str:
    """A time as a person at the site reads it: local wall time, minutes."""
    if value is None:
        return ""
    return value.astimezone(site_zone).strftime("%Y-%m-%d %H:%M")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table with aligned columns."""
    cells = [[("" if c is None else str(c)) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def csv_text(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """CSV with a header row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows([("" if c is None else c) for c in row] for row in rows)
    return out.getvalue()


def json_text(value: Any) -> str:
    """Pretty JSON, UTF-8 kept readable."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def html_page(template: str, **context: Any) -> str:
    """A page from `facility/templates`, escaped."""
    return _ENV.get_template(template).render(**context)
