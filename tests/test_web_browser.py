"""The web interface in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

Each test starts the real server (`facility web`, a subprocess on a free loopback port) on its own
SQLite file, and clicks through it as a person would. Screenshots go to test-artifacts/web/.
A missing Chromium fails these tests: it is installed by scripts/test.sh, never downloaded
(the `browser` fixture is conftest's).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from facility import sites
from facility.settings import Limits
from facility.sources import ingest
from facility.sources.records import DoorEventIn
from facility.store import db
from facility.visitors import muster, reception
from tests.webserver import PASSWORD, Server, add_accounts, running

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "web"
TABLET = {"width": 1024, "height": 768}


@pytest.fixture
def server(sqlite_template, tmp_path) -> Iterator[Server]:
    """`facility web` on a fresh SQLite file with a receptionist and a security officer."""
    path = tmp_path / "facility.db"
    shutil.copy(sqlite_template, path)
    db_url = f"sqlite:///{path}"
    add_accounts(db_url, {"rita": ["reception"], "sam": ["security"]})
    with running(tmp_path, db_url) as running_server:
        yield running_server


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=TABLET, has_touch=True, locale="en-GB")
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


def shot(page: Page, name: str, *, full_page: bool = False) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=full_page)


def log_in(page: Page, server: Server, name: str) -> None:
    page.goto(f"{server.url}/")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_a_receptionist_works_through_the_browser(page: Page, server: Server):
    page.goto(f"{server.url}/")
    expect(page).to_have_url(f"{server.url}/login")
    shot(page, "01-login.png")
    log_in(page, server, "rita")
    expect(page).to_have_url(f"{server.url}/reception")

    # Sign a visitor in with company, host and a badge.
    page.get_by_label("Name", exact=True).fill("Ada Lovelace")
    page.get_by_label("Company").fill("Analytical Engines Ltd")
    page.get_by_label("Host").fill("Charles Babbage")
    page.get_by_label("Badge", exact=True).fill("B17")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".flash.ok")).to_contain_text("Ada Lovelace signed in")
    ada = page.locator("table.today tr", has_text="Ada Lovelace")
    expect(ada).to_contain_text("B17")
    # A second visitor without a badge gets one from the list.
    page.get_by_label("Name", exact=True).fill("Grace Hopper")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("badge for Grace Hopper").fill("B18")
    page.locator("table.today tr", has_text="Grace Hopper").get_by_role(
        "button", name="Issue"
    ).click()
    expect(page.locator(".flash.ok")).to_contain_text("badge B18 issued")
    shot(page, "02-reception-signed-in.png", full_page=True)

    # The evacuation list: both, with their badges, refreshing itself, printable.
    page.get_by_role("link", name="On site").click()
    expect(page.locator("#count")).to_contain_text("2 people")
    expect(page.locator("table.evac tr", has_text="Ada Lovelace")).to_contain_text("B17")
    refresh = page.locator('meta[http-equiv="refresh"]')
    assert int(refresh.get_attribute("content")) <= 60
    shot(page, "03-onsite-evacuation.png")
    page.emulate_media(media="print")
    expect(page.locator("header.bar")).to_be_hidden()
    shot(page, "04-onsite-printed.png", full_page=True)
    page.emulate_media(media="screen")

    # Roll call: start it from the list, tick Ada safe and Grace missing, then close it.
    page.get_by_role("link", name="Roll call").first.click()
    page.get_by_role("button", name="Start roll call").click()
    expect(page.locator(".count.unaccounted b")).to_have_text("2")
    page.locator("#e1, #e2").first.wait_for()
    row = page.locator("table.roll tr", has_text="Ada Lovelace")
    row.get_by_role("button", name="Safe").click()
    expect(page.locator(".count.safe b")).to_have_text("1")
    expect(page.locator("table.roll tr", has_text="Ada Lovelace")).to_contain_text("web:rita")
    page.locator("table.roll tr", has_text="Grace Hopper").get_by_role(
        "button", name="Missing"
    ).click()
    expect(page.locator(".count.missing b")).to_have_text("1")
    page.get_by_role("link", name="not accounted for").click()
    expect(page.locator("table.roll tbody tr")).to_have_count(1)
    shot(page, "05-rollcall-open.png")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Close roll call").click()
    expect(page.locator(".flash")).to_contain_text("1 safe, 1 missing")
    expect(page.get_by_role("button", name="Safe")).to_have_count(0)
    shot(page, "06-rollcall-closed.png")

    # Sign Ada out with one tap: she leaves the on-site list.
    page.get_by_role("link", name="Reception").click()
    page.get_by_role("button", name="sign out Ada Lovelace").click()
    expect(page.locator(".flash.ok")).to_contain_text("Ada Lovelace signed out")
    expect(page.get_by_role("button", name="sign out Ada Lovelace")).to_have_count(0)
    shot(page, "07-reception-signed-out.png", full_page=True)
    page.get_by_role("link", name="On site").click()
    expect(page.locator("#count")).to_contain_text("1 person")
    expect(page.locator("table.evac")).not_to_contain_text("Ada Lovelace")


def test_reception_cannot_reach_holds(page: Page, server: Server):
    log_in(page, server, "rita")
    expect(page.get_by_role("link", name="Reception")).to_be_visible()
    expect(page.get_by_role("link", name="Holds")).to_have_count(0)
    response = page.goto(f"{server.url}/holds")
    assert response.status == 403
    expect(page.locator("main")).to_contain_text("needs role security")
    shot(page, "08-reception-refused-holds.png")


def test_security_places_and_releases_a_hold(page: Page, server: Server):
    engine = server.engine()
    now = datetime.now(UTC)
    with db.session_scope(engine) as session:
        events = [
            DoorEventIn(f"e{i}", door, "B1", now - timedelta(minutes=i), True, "tests")
            for i, door in enumerate(("lobby", "lab-2", "server-room"))
        ]
        ingest.store_door_events(session, events, ingest.Intake(now, Limits()))
    engine.dispose()
    log_in(page, server, "sam")
    page.get_by_role("link", name="Holds").click()
    expect(page).to_have_url(f"{server.url}/holds")
    page.get_by_label("Case reference").fill("INC-2026-0042")
    page.locator('input[name="reason"]').first.fill("laptop stolen from lab 2")
    page.locator('select[name="door_pick"]').select_option(["lab-2", "server-room"])
    page.locator('textarea[name="badges"]').fill("B1\nB2")
    page.get_by_label("camera", exact=True).check()
    page.get_by_role("button", name="Place hold").click()
    expect(page.locator(".flash.ok")).to_contain_text("hold INC-2026-0042 placed with 5 scope(s)")
    hold = page.locator("article.hold", has_text="INC-2026-0042")
    expect(hold).to_contain_text("door_events: lab-2")
    expect(hold).to_contain_text("all camera")
    shot(page, "09-holds-placed.png", full_page=True)
    hold.locator("summary", has_text="Release").click()
    hold.get_by_label("Reason").fill("found in the meeting room")
    hold.get_by_role("button", name="Release INC-2026-0042").click()
    expect(page.locator(".flash.ok")).to_contain_text("keeps protecting until")


FIRST = ["Ada", "Grace", "Alan", "Katherine", "Linus", "Margaret", "Dennis", "Barbara", "Ken",
         "Frances", "Edsger", "Radia", "Donald", "Hedy", "John", "Sophie", "Tim", "Jean"]  # fmt: skip
LAST = ["Lovelace", "Hopper", "Turing", "Johnson", "Torvalds", "Hamilton", "Ritchie", "Liskov",
        "Thompson", "Allen", "Dijkstra", "Perlman", "Knuth", "Lamarr", "Backus", "Wilson",
        "Berners-Lee"]  # fmt: skip
DOORS = ["lobby", "lab-1", "lab-2", "canteen", "warehouse", "server-room", "roof"]


def _seed_300(server: Server) -> None:
    """300 visitors with badges and a last door each; a roll call under way, most marked safe."""
    engine = server.engine()
    now = datetime.now(UTC)
    with db.session_scope(engine) as session:
        events = []
        for i in range(300):
            name = f"{FIRST[i % len(FIRST)]} {LAST[(i * 7) % len(LAST)]}"  # 306 distinct
            at = now - timedelta(hours=3) + timedelta(seconds=20 * i)
            visit = reception.sign_in(
                session, now=now, name=name, company=f"Company {i % 23}", host="Facilities",
                badge=f"V{i:03d}", at=at,
            )  # fmt: skip
            assert visit.id
            door_at = at + timedelta(minutes=1 + i % 30)
            events.append(
                DoorEventIn(f"d{i}", DOORS[i % len(DOORS)], f"V{i:03d}", door_at, True, "t")
            )
        ingest.store_door_events(session, events, ingest.Intake(now, Limits()))
        call = muster.start(session, now=now, actor="web:rita")
        for n, entry in enumerate(call.entries):
            if n % 20 == 7:
                muster.mark(session, now=now, actor="web:sam", status="missing", entry_id=entry.id)
            elif n < 240 and n % 20 != 7:
                muster.mark(session, now=now, actor="web:rita", status="safe", entry_id=entry.id)
    engine.dispose()


def test_roll_call_with_300_people_on_a_tablet(page: Page, server: Server):
    _seed_300(server)
    log_in(page, server, "rita")
    started = time.monotonic()
    page.goto(f"{server.url}/muster")
    loaded = time.monotonic() - started
    expect(page.locator(".count.all b")).to_have_text("300")
    expect(page.locator("table.roll tbody tr")).to_have_count(300)
    unaccounted = int(page.locator(".count.unaccounted b").inner_text())
    assert unaccounted == 300 - int(page.locator(".count.safe b").inner_text())
    shot(page, "10-rollcall-300-tablet.png")
    shot(page, "11-rollcall-300-full.png", full_page=True)
    # Scrolled deep into the list, the counts stay in view.
    page.locator("table.roll tbody tr").nth(200).scroll_into_view_if_needed()
    expect(page.locator(".tally")).to_be_in_viewport()
    # The marshal works through who is not accounted for; each tap comes back to the next one.
    page.get_by_role("link", name="not accounted for").click()
    rows = page.locator("table.roll tbody tr")
    expect(rows).to_have_count(unaccounted)
    third = rows.nth(2)
    following = rows.nth(3).get_attribute("id")
    third.get_by_role("button", name="Safe").click()
    expect(rows).to_have_count(unaccounted - 1)
    assert page.url.endswith(f"#{following}")
    expect(page.locator(f"#{following}")).to_be_in_viewport()
    # Find one person by name.
    page.get_by_label("find a name").fill("Hedy")
    page.get_by_role("button", name="Find").click()
    expect(rows.first).to_contain_text("Hedy")
    page.get_by_role("link", name="Clear").click()
    shot(page, "12-rollcall-300-unaccounted.png")
    # On a phone the list keeps name, status and the buttons.
    page.set_viewport_size({"width": 390, "height": 844})
    expect(
        page.locator("table.roll tbody tr").first.get_by_role("button", name="Safe")
    ).to_be_visible()
    shot(page, "13-rollcall-300-phone.png")
    print(f"roll call page with 300 people: {loaded:.2f}s to load")
    assert loaded < 5


def test_security_watches_footage_the_recorder_deleted_from_the_evidence_copy(
    page: Page, browser: Browser, sqlite_template, tmp_path
):
    """A real recordings tree, the recorder deleting a held segment's file, and the footage still
    playing in Chromium from the evidence copy; reception is refused."""
    from connectors import camera as scanner
    from facility.retention import evidence, holds
    from tests import footage

    path = tmp_path / "facility.db"
    shutil.copy(sqlite_template, path)
    db_url = f"sqlite:///{path}"
    settings = footage.settings(tmp_path, database_url=db_url)
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(minutes=30)
    paths = footage.record(settings.camera.root, "dock-1", start, 6)
    engine = db.make_engine(db_url)
    scanner.scan(engine, settings, now=now)
    with db.session_scope(engine) as session:
        ingest.store_door_events(
            session,
            [DoorEventIn("e1", "dock", "B17", start + timedelta(seconds=25), True, "tests")],
            ingest.Intake(now, Limits()),
        )
        holds.place(
            session, now=now, actor="tests", case="INC-2026-0042", reason="break-in at the dock",
            window_from=start - timedelta(minutes=1), window_to=start + timedelta(minutes=5),
            scopes=[holds.Scope("camera", "dock-1"), holds.Scope("door_events", "dock")],
        )  # fmt: skip
    assert (
        evidence.preserve(engine, settings, now=now, actor="tests", case="INC-2026-0042").linked
        == 6
    )
    engine.dispose()
    (settings.camera.root / paths[1]).unlink()  # the recorder's own retention deletes it
    add_accounts(db_url, {"rita": ["reception"], "sam": ["security"]})
    env = {
        "FACILITY_CAMERA__ROOT": str(settings.camera.root),
        "FACILITY_EVIDENCE__ROOT": str(settings.evidence.root),
    }
    with running(tmp_path, db_url, env=env) as server:
        log_in(page, server, "sam")
        page.goto(f"{server.url}/holds/INC-2026-0042")
        expect(page.locator("svg.timeline rect.segment")).to_have_count(6)
        expect(page.locator("#records-camera")).to_contain_text("6")
        shot(page, "20-case-file-hold-timeline.png", full_page=True)
        page.locator("#records-camera tbody tr").nth(1).get_by_role("link", name="Watch").click()
        expect(page.locator("video#footage")).to_be_visible()
        expect(page.locator("main")).to_contain_text("the evidence copy")
        page.wait_for_function("document.getElementById('footage').readyState >= 2")
        assert page.evaluate("document.getElementById('footage').videoWidth") == 320
        shot(page, "21-footage-from-the-evidence-copy.png")
        page.get_by_role("button", name="Log out").click()
        log_in(page, server, "rita")
        response = page.goto(f"{server.url}/footage/2?case=INC-2026-0042")
        assert response.status == 403
        expect(page.locator("main")).to_contain_text("needs role security")
        shot(page, "22-footage-refused-to-reception.png")


def test_the_office_is_chosen_after_the_password_and_preselected_next_time(
    page: Page, sqlite_template, tmp_path
):
    path = tmp_path / "facility.db"
    shutil.copy(sqlite_template, path)
    db_url = f"sqlite:///{path}"
    engine = db.make_engine(db_url)
    with db.session_scope(engine) as session:
        for code, name, zone in (
            ("ams", "Amsterdam", "Europe/Amsterdam"),
            ("bru", "Brussels", "Europe/Brussels"),
        ):
            sites.add(
                session,
                code=code,
                name=name,
                timezone=zone,
                country="BE" if code == "bru" else "NL",
                now=datetime.now(UTC),
                actor="tests",
            )
    engine.dispose()
    add_accounts(db_url, {"rita": ["reception"]})
    with running(tmp_path, db_url) as server:
        log_in(page, server, "rita")
        expect(page).to_have_url(f"{server.url}/login/site")
        office = page.get_by_label("Office")
        expect(office.locator("option")).to_have_text(
            ["Amsterdam (ams)", "Brussels (bru)", "Main site (main)"]
        )
        office.select_option("bru")
        page.get_by_role("button", name="Go on").click()
        expect(page).to_have_url(f"{server.url}/reception")
        expect(page.locator("header .office")).to_have_text("Brussels")
        shot(page, "20-office-chosen.png")
        page.get_by_role("button", name="Log out").click()
        log_in(page, server, "rita")
        expect(page.get_by_label("Office")).to_have_value("bru")
