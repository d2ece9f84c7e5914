"""The kiosk: a tablet at the entrance, paired with a one-time link, where visitors sign
themselves in and out.

In-process (both engines, a fixed clock) for pairing, revoking, what a visitor may learn and the
rate limit; the real server in headless Chromium at phone and tablet sizes, with screenshots in
test-artifacts/kiosk/.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from facility.accounts import kiosks
from facility.retention import policies
from facility.settings import Settings, Web
from facility.store import db
from facility.store.models import Visit
from facility.visitors import hosts, reception
from facility.web import create_app
from tests.webapp import SECRET, Clock, form_token
from tests.webserver import Server, running

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "kiosk"
NOW = datetime(2026, 6, 10, 7, 0, tzinfo=UTC)  # 09:00 in Amsterdam
PHONE = {"width": 390, "height": 844}
TABLET = {"width": 1024, "height": 768}


def _app(db_url: str, engine, clock: Clock, per_minute: int = 20):
    settings = Settings(database_url=db_url, web=Web(kiosk_actions_per_minute=per_minute))
    return create_app(settings, clock=clock, engine=engine, secret=SECRET)


def _new_kiosk(engine, name: str = "lobby", now: datetime = NOW) -> str:
    """A kiosk's one-time pairing path, as `facility kiosk add` prints it."""
    with db.session_scope(engine) as session:
        _, token = kiosks.add(session, now=now, actor="admin", name=name)
    return f"{kiosks.PAIR_PATH}{token}"


def _paired(app, path: str) -> TestClient:
    """A tablet that opened the pairing link and confirmed it."""
    tablet = TestClient(app, base_url="https://testserver")
    confirm = tablet.get(path)
    assert confirm.status_code == 200 and "Pair as kiosk" in confirm.text
    done = tablet.post(path, data={"csrf_token": form_token(confirm.text)}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/kiosk"
    return tablet


def _sign_in(tablet: TestClient, **fields: str):
    token = form_token(tablet.get("/kiosk").text)
    return tablet.post("/kiosk/sign-in", data={"csrf_token": token, **fields})


def _sign_out(tablet: TestClient, name: str):
    token = form_token(tablet.get("/kiosk").text)
    return tablet.post("/kiosk/sign-out", data={"csrf_token": token, "leaving": name})


def test_a_paired_kiosk_signs_a_visitor_in_for_a_host_from_the_directory(db_url, engine):
    clock = Clock(NOW)
    with db.session_scope(engine) as session:
        bob = hosts.add(session, now=NOW, name="Bob Smith", email="bob@example.org")[0].id
    app = _app(db_url, engine, clock)
    path = _new_kiosk(engine)
    stranger = TestClient(app, base_url="https://testserver")
    assert stranger.get("/kiosk").status_code == 403
    tablet = _paired(app, path)
    assert TestClient(app, base_url="https://testserver").get(path).status_code == 404  # once
    start = tablet.get("/kiosk")
    assert "Privacy notice" in start.text and "We keep visits 3 days after sign-out" in start.text
    assert f'<option value="{bob}">Bob Smith</option>' in start.text
    unticked = _sign_in(tablet, name="Ada Lovelace", host=str(bob))
    assert unticked.status_code == 400 and "privacy notice" in unticked.text
    done = _sign_in(tablet, name="Ada Lovelace", company="ACME", host=str(bob), notice="read")
    assert done.status_code == 200
    assert "Welcome, Ada Lovelace. You are signed in." in done.text
    with db.session_scope(engine) as session:
        (visit,) = session.execute(select(Visit)).scalars().all()
        assert (visit.name, visit.company, visit.host) == ("Ada Lovelace", "ACME", "Bob Smith")
    left = _sign_out(tablet, "ada lovelace")
    assert "Goodbye, Ada Lovelace. You are signed out." in left.text


def test_the_kiosk_s_notice_follows_the_policy_in_force_and_links_the_whole_notice(db_url, engine):
    clock = Clock(NOW)
    tablet = _paired(_app(db_url, engine, clock), _new_kiosk(engine))

    def notice_text() -> str:
        page = tablet.get("/kiosk").text
        return page.split('<div id="notice">', 1)[1].split("</div>", 1)[0]

    assert "We keep visits 3 days after sign-out." in notice_text()
    assert '<a href="/notice">Full privacy notice</a>' in notice_text()
    day = timedelta(days=1)
    with db.session_scope(engine) as session:
        policies.set_policy(
            session, "visits", 5 * day, now=NOW, actor="dpo", reason="insurer", delay=day
        )
    assert "We keep visits 5 days after sign-out." in notice_text()
    # A shortening waits for its delay: the kiosk says what is in force, not what is coming.
    with db.session_scope(engine) as session:
        policies.set_policy(
            session, "visits", 2 * day, now=NOW, actor="dpo", reason="DPIA", delay=day
        )
    assert "We keep visits 5 days after sign-out." in notice_text()
    clock.advance(days=1, seconds=1)
    assert "We keep visits 2 days after sign-out." in notice_text()


def test_a_revoked_kiosk_is_refused_at_its_next_request(db_url, engine, cli):
    app = _app(db_url, engine, Clock(NOW))
    tablet = _paired(app, _new_kiosk(engine))
    token = form_token(tablet.get("/kiosk").text)
    assert "kiosk lobby revoked" in cli("kiosk", "revoke", "lobby").stdout
    refused = tablet.get("/kiosk")
    assert refused.status_code == 403 and "not a kiosk, or its kiosk was revoked" in refused.text
    typed = {"csrf_token": token, "name": "Eve", "notice": "read"}
    assert tablet.post("/kiosk/sign-in", data=typed).status_code == 403
    with db.session_scope(engine) as session:
        assert session.execute(select(Visit)).scalars().all() == []


def test_the_kiosk_never_tells_who_else_is_on_site(db_url, engine):
    with db.session_scope(engine) as session:
        for name in ("Grace Hopper", "Ann Lee", "Ann Lee"):
            reception.sign_in(session, now=NOW, name=name, company="Navy", host="Alice")
    app = _app(db_url, engine, Clock(NOW))
    tablet = _paired(app, _new_kiosk(engine))
    start = tablet.get("/kiosk").text
    assert "Grace" not in start and "Ann" not in start
    # Somebody on site by part of a name, nobody by that name, two of them: the same page, save
    # for the name the visitor typed into the form themselves.
    answers = set()
    for name in ("Grace", "Nobody Here", "Ann Lee"):
        answer = _sign_out(tablet, name)
        assert answer.status_code == 400
        answers.add(answer.text.replace(f'value="{name}"', 'value=""'))
    (same,) = answers
    assert "We could not sign you out under that name" in same
    assert "Grace" not in same and "Ann" not in same
    with db.session_scope(engine) as session:
        still = session.execute(select(Visit).where(Visit.signed_out_at.is_(None))).all()
    assert len(still) == 3


def test_the_kiosk_is_rate_limited(db_url, engine):
    clock = Clock(NOW)
    tablet = _paired(_app(db_url, engine, clock, per_minute=3), _new_kiosk(engine))
    for i in range(3):
        assert _sign_in(tablet, name=f"Visitor {i}", notice="read").status_code == 200
    refused = _sign_in(tablet, name="One Too Many", notice="read")
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert "please wait a moment" in refused.text
    clock.advance(minutes=1)
    assert _sign_in(tablet, name="Later", notice="read").status_code == 200
    with db.session_scope(engine) as session:
        names = session.execute(select(Visit.name)).scalars().all()
    assert "One Too Many" not in names and len(names) == 4


# --- in a browser, at phone and tablet sizes -----------------------------------------------------


@pytest.fixture
def server(sqlite_template, tmp_path) -> Iterator[Server]:
    path = tmp_path / "kiosk.db"
    shutil.copy(sqlite_template, path)
    with running(tmp_path, f"sqlite:///{path}") as running_server:
        yield running_server


def _browser_page(browser: Browser, viewport: dict) -> Page:
    context = browser.new_context(viewport=viewport, has_touch=True, locale="en-GB")
    return context.new_page()


@pytest.mark.parametrize(("size", "viewport"), [("phone", PHONE), ("tablet", TABLET)])
def test_a_visitor_signs_in_and_out_at_the_kiosk_in_a_browser(server, browser, size, viewport):
    engine = server.engine()
    now = datetime.now(UTC)
    with db.session_scope(engine) as session:
        hosts.add(session, now=now, name="Bob Smith", email="bob@example.org")
        reception.sign_in(session, now=now, name="Grace Hopper", company="Navy", host="Alice")
    path = _new_kiosk(engine, now=now)
    engine.dispose()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = _browser_page(browser, viewport)
    try:
        page.goto(server.url + path)
        page.get_by_role("button", name="Pair as kiosk lobby").click()
        expect(page.get_by_role("heading", name="Welcome")).to_be_visible()
        expect(page.locator("#notice")).to_contain_text("We keep visits 3 days after sign-out")
        page.screenshot(path=str(ARTIFACTS / f"kiosk-{size}.png"), full_page=True)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= viewport["width"], f"the page scrolls sideways at {size} size"
        page.get_by_label("Your name").fill("Ada Lovelace")
        page.get_by_label("Company").fill("ACME")
        page.get_by_label("Whom do you visit?").select_option(label="Bob Smith")
        page.get_by_label("I have read the privacy notice").check()
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("status")).to_contain_text("Welcome, Ada Lovelace")
        page.screenshot(path=str(ARTIFACTS / f"kiosk-{size}-signed-in.png"), full_page=True)
        page.get_by_role("link", name="Done").click()
        page.get_by_label("Your full name").fill("Grace")
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("alert")).to_contain_text("could not sign you out")
        assert "Grace" not in page.content().replace('value="Grace"', "")
        page.get_by_label("Your full name").fill("ada lovelace")
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("status")).to_contain_text("Goodbye, Ada Lovelace")
    finally:
        page.context.close()
