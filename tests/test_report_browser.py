"""The HTML report in a real browser: Debian's headless Chromium loads the file, and the test reads
the DOM it built (the per-kind rows, the audit head, one pygal SVG per kind with its bars) and the
pixels of an A4-sized screenshot (the chart's colours are there). The screenshot is kept under
`test-artifacts/`. A missing Chromium fails the test: `scripts/test.sh` installs it.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from facility.privacy.report_charts import COLOURS
from facility.store import db, kinds
from tests.factories import NOW, D, H, add, door, lease, place, visit

pytestmark = pytest.mark.usefixtures("fixed_clock")

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KINDS = ("visits", "badges", "door_events", "camera", "wifi")


def _chromium(tmp_path: Path, *args: str) -> str:
    if not CHROMIUM.exists():
        pytest.fail(
            "Chromium is required: apt-get install chromium (scripts/test.sh does)", pytrace=False
        )
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    done = subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_html_report_renders_in_chromium_with_its_charts(cli, engine, tmp_path, db_url):
    add(
        engine,
        visit("Ada", NOW - 2 * D, NOW - 2 * D + H),
        *(door(f"D{i % 3}", "B1", NOW - i * H) for i in range(60)),
        door("D7", "B2", NOW - 10 * D),
        lease("aa:bb:cc:dd:ee:01", NOW - 30 * D, ends=NOW - 29 * D),
    )
    place(engine, "INC-42", [("door_events", "D7")], NOW - 11 * D, NOW - 9 * D, now=NOW - 9 * D)
    page = tmp_path / "report.html"
    cli("report", "--format", "html", "--output", str(page))
    url = page.as_uri()

    dom = _chromium(tmp_path, "--dump-dom", url)
    with db.session_scope(engine) as session:
        from facility.trail import audit

        head = audit.head(session)
    assert f'id="audit-head">{head}</span>' in dom
    for kind in KINDS:
        assert re.search(rf'<tr data-kind="{kind}"><td>{kind}</td>', dom), kind
        assert f'id="chart-{kind}"' in dom
    assert 'id="result">OK<' in dom
    assert "INC-42" in dom
    charts = re.findall(r'<svg[^>]*class="pygal-chart"[^>]*>.*?</svg>', dom, re.S)
    assert len(charts) == len(kinds.NAMES)  # one per policy kind
    for svg in charts:
        assert svg.count('class="rect reactive') >= 1  # the policy line at least
    door_chart = charts[KINDS.index("door_events")]
    assert door_chart.count('class="rect reactive') >= 1 + 3 + 1  # bars, held stack, line
    assert "<script" not in dom

    shot = tmp_path / "report.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1240,1754", url)
    width, height, pixels = _decode_png(shot.read_bytes())
    assert (width, height) == (1240, 1754)
    colours = set(pixels)
    assert len(colours) > 50, "the page is (nearly) one colour"
    for name in ("within", "held", "policy"):
        assert _hex(COLOURS[name]) in colours, f"no {name} pixel: the chart was not drawn"
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(shot, ARTIFACTS / f"report-{db_url.split(':', 1)[0].split('+')[0]}.png")


def _hex(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))


def _decode_png(data: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Width, height and RGB pixels of an 8-bit RGB or RGBA, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour_type, _, _, interlace = header
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, header
    channels = 3 if colour_type == 2 else 4
    raw, stride = zlib.decompress(idat), width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        row = _unfilter(
            raw[start], bytearray(raw[start + 1 : start + 1 + stride]), previous, channels
        )
        rows.append(row)
        previous = row
    pixels = [(row[x], row[x + 1], row[x + 2]) for row in rows for x in range(0, stride, channels)]
    return width, height, pixels


def _unfilter(kind: int, row: bytearray, prev: bytearray, bpp: int) -> bytearray:
    if kind == 0:
        return row
    if kind == 2:  # "up", most rows of a page: add bytewise in one big-integer step, no carries
        size = len(row)
        low, high = int.from_bytes(b"\x7f" * size, "big"), int.from_bytes(b"\x80" * size, "big")
        a, b = int.from_bytes(row, "big"), int.from_bytes(prev, "big")
        return bytearray((((a & low) + (b & low)) ^ ((a ^ b) & high)).to_bytes(size, "big"))
    for i in range(len(row)):
        left = row[i - bpp] if i >= bpp else 0
        up, corner = prev[i], prev[i - bpp] if i >= bpp else 0
        if kind == 1:
            row[i] = (row[i] + left) & 0xFF
        elif kind == 3:
            row[i] = (row[i] + (left + up) // 2) & 0xFF
        elif kind == 4:
            p = left + up - corner
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
            predictor = left if pa <= pb and pa <= pc else up if pb <= pc else corner
            row[i] = (row[i] + predictor) & 0xFF
    return row
