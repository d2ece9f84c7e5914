"""The privacy notice and the register of processing in real headless Chromium (Debian's
/usr/bin/chromium, driven by Playwright), on both engines: the numbers the browser shows are the
policy table's and follow a policy change; the notice prints on one A4 page, and the sign-in
terminal (the real `facility web`) shows the visitor its summary and opens it. Screenshots and
the printed notice go to test-artifacts/paperwork/. A missing Chromium fails these tests.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.factories import add_offices
from tests.webserver import PASSWORD, add_accounts, running

pytestmark = pytest.mark.usefixtures("fixed_clock")

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "paperwork"
A4 = {"width": 794, "height": 1123}  # CSS pixels at 96 dpi
PRIVACY = """
[privacy]
controller = "ACME B.V., Main Street 1, Amsterdam"
contact = "privacy@acme.example"
dpo = "dpo@acme.example"
"""


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium", pytrace=False)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def a4(chromium: Browser) -> Iterator[Page]:
    context = chromium.new_context(viewport=A4, locale="en-GB")
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def _engine(db_url: str) -> str:
    return db_url.split(":", 1)[0].split("+")[0]


def _rendered(cli, config: Path, tmp_path: Path, *args: str) -> str:
    name = "-".join(a.strip("-") for a in args) + ".html"
    cli(*args, "--format", "html", "--output", str(tmp_path / name), config=config)
    return (tmp_path / name).as_uri()


def _policy_days(cli, kind: str) -> int:
    shown = json.loads(cli("policy", "show", "--format", "json").stdout)
    return next(p["seconds"] for p in shown if p["kind"] == kind) // 86400


def test_the_notice_in_chromium_shows_the_policy_table_and_prints_on_a4(cli, a4, tmp_path, db_url):
    config = cli.config(PRIVACY)
    engine = _engine(db_url)
    a4.goto(_rendered(cli, config, tmp_path, "notice"))
    for kind in ("visits", "camera", "wifi", "requests"):
        row = a4.locator(f'tr[data-kind="{kind}"]')
        expect(row.locator(".duration")).to_have_text(f"{_policy_days(cli, kind)} days")
    expect(a4.locator("h1")).to_have_text("Privacy notice")
    expect(a4.locator("body")).to_contain_text("ACME B.V., Main Street 1, Amsterdam")
    version = a4.locator('meta[name="notice-version"]').get_attribute("content")
    a4.screenshot(path=str(ARTIFACTS / f"notice-{engine}.png"), full_page=True)
    printed = ARTIFACTS / f"notice-{engine}.pdf"
    a4.pdf(path=str(printed), format="A4", print_background=True)
    pdf = printed.read_bytes()
    assert pdf.startswith(b"%PDF")
    # A4 is 595 x 842 points (Chromium rounds its millimetres up a fraction).
    sizes = re.findall(rb"/MediaBox\s*\[\s*0 0 (\d+)\.?\d* (\d+)\.?\d*", pdf)
    assert sizes and set(sizes) == {(b"595", b"842")}, sizes
    assert len(sizes) <= 2, "the reception's copy: one sheet, printed on both sides"

    # Change a policy: the page the browser shows changes with it, and so does the version.
    cli("policy", "set", "visits", "10d", "--reason", "insurer", config=config)
    a4.goto(_rendered(cli, config, tmp_path, "notice", "--lang", "nl"))
    expect(a4.locator('tr[data-kind="visits"] .duration')).to_have_text("10 dagen")
    expect(a4.locator("h1")).to_have_text("Privacyverklaring")
    assert a4.locator('meta[name="notice-version"]').get_attribute("content") != version
    a4.screenshot(path=str(ARTIFACTS / f"notice-nl-{engine}.png"), full_page=True)


def test_the_register_in_chromium_shows_the_policy_table(cli, a4, tmp_path, db_url):
    config = cli.config(PRIVACY)
    a4.goto(_rendered(cli, config, tmp_path, "register"))
    sections = a4.locator("section[data-kind]")
    expect(sections).to_have_count(
        len(json.loads(cli("policy", "show", "--format", "json").stdout))
    )
    expect(a4.locator("#entry-visits .policy")).to_have_text("3d (3 days) after sign-out")
    expect(a4.locator("#entry-wifi .policy")).to_have_text(
        "365d (365 days) after the device was last seen on the network"
    )
    expect(a4.locator("#measures")).to_contain_text("HMAC-SHA256")
    a4.screenshot(path=str(ARTIFACTS / f"register-{_engine(db_url)}.png"), full_page=True)
    # Within the Dutch ceiling of 28 days that the default site's country binds it to.
    cli("policy", "set", "camera", "21d", "--reason", "insurer", config=config)
    a4.goto(_rendered(cli, config, tmp_path, "register"))
    expect(a4.locator("#entry-camera .policy")).to_have_text("21d (21 days) after the recording")


def test_each_offices_register_and_notice_in_chromium(cli, a4, tmp_path, db_url):
    """Two offices: Brussels' register entries and notice show Brussels' own policy and the
    Belgian ceiling, Amsterdam's its own; a change at Brussels shows there only."""
    config = cli.config(PRIVACY)
    engine = _engine(db_url)
    add_offices(cli)
    cli("--site", "bru", "policy", "set", "camera", "21d", "--reason", "DPIA", config=config)
    a4.goto(_rendered(cli, config, tmp_path, "register"))
    bru, ams = a4.locator("#entry-bru-camera"), a4.locator("#entry-ams-camera")
    expect(a4.locator("#site-bru h2")).to_have_text("Site bru: Brussels (BE, Europe/Brussels)")
    expect(bru.locator("h3")).to_have_text("camera at bru (Brussels): camera segments")
    expect(bru.locator(".policy")).to_have_text("21d (21 days) after the recording")
    expect(bru.locator(".legal-limit")).to_contain_text("31d (31 days) in BE: Belgian camera law")
    expect(ams.locator(".policy")).to_have_text("14d (14 days) after the recording")
    expect(ams.locator(".legal-limit")).to_contain_text("28d (28 days) in NL")
    expect(a4.locator("section[data-site='bru']")).to_have_count(
        len(a4.locator("section[data-site='ams']").all())
    )
    a4.locator("#site-bru").screenshot(path=str(ARTIFACTS / f"register-bru-{engine}.png"))

    a4.goto(_rendered(cli, config, tmp_path, "--site", "bru", "notice"))
    expect(a4.locator("#office")).to_have_text("Office: Brussels.")
    expect(a4.locator('tr[data-kind="camera"] .duration')).to_have_text("21 days")
    expect(a4.locator('tr[data-kind="camera"] .ceiling')).to_contain_text("Legal limit in BE")
    a4.screenshot(path=str(ARTIFACTS / f"notice-bru-{engine}.png"), full_page=True)
    a4.goto(_rendered(cli, config, tmp_path, "--site", "ams", "notice"))
    expect(a4.locator("#office")).to_have_text("Office: Amsterdam.")
    expect(a4.locator('tr[data-kind="camera"] .duration')).to_have_text("14 days")


def test_the_sign_in_terminal_shows_the_visitor_the_notice(chromium, sqlite_template, tmp_path):
    path = tmp_path / "facility.db"
    shutil.copy(sqlite_template, path)
    db_url = f"sqlite:///{path}"
    add_accounts(db_url, {"rita": ["reception"]})
    context = chromium.new_context(viewport={"width": 1024, "height": 768}, locale="en-GB")
    context.set_default_timeout(15_000)
    page = context.new_page()
    with running(tmp_path, db_url) as server:
        page.goto(f"{server.url}/")
        page.get_by_label("Name").fill("rita")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(f"{server.url}/reception")
        box = page.get_by_role("complementary", name="privacy notice")
        expect(box).to_contain_text("We keep visits 3 days after sign-out.")
        page.screenshot(path=str(ARTIFACTS / "terminal.png"), full_page=True)
        with context.expect_page() as opened:
            box.get_by_role("link", name="Full privacy notice").click()
        full = opened.value
        expect(full.locator('tr[data-kind="visits"] .duration')).to_have_text("3 days")
        full.screenshot(path=str(ARTIFACTS / "terminal-notice.png"), full_page=True)
    context.close()
