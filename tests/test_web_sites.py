"""The web interface serves one office per terminal: bound by `[web] site`, chosen at login, or the
only one; every page, API call, hold, footage link and kiosk then works at that office only.

Most of it over real HTTP against `facility web` (tests/webserver.py), on both engines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlmodel import select

from facility import sites
from facility.store import db
from facility.store.models import (
    AuditEntry,
    CaseExport,
    Hold,
    Kiosk,
    Site,
    Visit,
    WebSession,
    row_id,
)
from facility.timefmt import site_text
from facility.visitors import hosts, reception
from facility.web.terminal import HEADER, REMEMBERED
from tests.conftest import ENGINES, Cli, database_at
from tests.factories import add, place, segment
from tests.webapp import Clock, form_token, make_app, page_client
from tests.webapp import add_user as add_local_user
from tests.webserver import PASSWORD, Server, add_accounts, form_login, running

ACCOUNTS = {
    "rita": ["reception"],  # every office
    "alice": ["reception:ams"],  # Amsterdam's desk only
    "sam": ["security"],
}
NEW_YORK = "America/New_York"  # the configuration's zone: never the one a page of bru shows


@pytest.fixture
def offices(db_url) -> Iterator[dict[str, int]]:
    """Amsterdam and Brussels beside the default site, each with one visitor on site."""
    engine = db.make_engine(db_url)
    now = datetime.now(UTC)
    with db.session_scope(engine) as session:
        ids = {"main": 1}
        for code, name, zone, country in (
            ("ams", "Amsterdam", "Europe/Amsterdam", "NL"),
            ("bru", "Brussels", "Europe/Brussels", "BE"),
        ):
            site = sites.add(
                session,
                code=code,
                name=name,
                timezone=zone,
                country=country,
                now=now,
                actor="tests",
            )
            ids[code] = row_id(site)
    with db.session_scope(engine) as session:
        reception.sign_in(session, now=now, name="Ada Amsterdam", site_id=ids["ams"])
        reception.sign_in(
            session, now=now, name="Bo Brussels", at=now - timedelta(hours=2), site_id=ids["bru"]
        )
    engine.dispose()
    add_accounts(db_url, ACCOUNTS)
    yield ids


def _trail(server: Server) -> list[AuditEntry]:
    engine = server.engine()
    with db.session_scope(engine) as session:
        entries = list(session.exec(select(AuditEntry).order_by(AuditEntry.seq)).all())
    engine.dispose()
    return entries


def _session_sites(server: Server) -> dict[str, int | None]:
    engine = server.engine()
    with db.session_scope(engine) as session:
        rows = session.exec(select(WebSession)).all()
        found = {row.account: row.site_id for row in rows}
    engine.dispose()
    return found


def _bo_signed_in(server: Server) -> datetime:
    engine = server.engine()
    with db.session_scope(engine) as session:
        visit = session.exec(select(Visit).where(Visit.name == "Bo Brussels")).one()
        at = visit.signed_in_at
    engine.dispose()
    return at


def _choose(client, site: str, page_text: str):
    return client.post(
        "/login/site", data={"csrf_token": form_token(page_text), "site": site, "next": ""}
    )


def test_a_server_bound_to_bru_shows_only_bru_in_its_own_zone_and_names_the_office(
    offices, db_url, tmp_path
):
    env = {"FACILITY_WEB__SITE": "bru", "FACILITY_TIMEZONE": NEW_YORK}
    with running(tmp_path, db_url, env=env) as server, server.client() as browser:
        assert ">Brussels</span>" in browser.get("/login").text
        landed = form_login(browser, "rita")
        assert landed.status_code == 303 and landed.headers["location"] == "/reception"
        onsite = browser.get("/onsite")
        assert onsite.status_code == 200, onsite.text
        assert "Bo Brussels" in onsite.text and "Ada Amsterdam" not in onsite.text
        assert '<span class="office"' in onsite.text and ">Brussels</span>" in onsite.text
        assert 'href="/login/site"' not in onsite.text  # bound: nothing to change
        at = _bo_signed_in(server)
        brussels = site_text(at, ZoneInfo("Europe/Brussels"))
        assert brussels in onsite.text and site_text(at, ZoneInfo(NEW_YORK)) not in onsite.text
        assert "(Europe/Brussels)" in onsite.text
        desk = browser.get("/reception")
        assert "Bo Brussels" in desk.text and "Ada Amsterdam" not in desk.text
        # A sign-in at this terminal is made at bru, and its flash tells bru's time.
        token = form_token(desk.text)
        browser.post("/reception/sign-in", data={"csrf_token": token, "name": "Cy Brussels"})
        assert "Cy Brussels" in browser.get("/onsite").text
        assert _session_sites(server) == {"rita": offices["bru"]}
        # The API of a bound server: bru whatever the account, and a header naming another is 400.
        with server.client(auth=("rita", PASSWORD)) as api:
            people = [p["name"] for p in api.get("/api/onsite").json()["people"]]
            assert sorted(people) == ["Bo Brussels", "Cy Brussels"]
            other = api.get("/api/onsite", headers={HEADER: "ams"})
            assert other.status_code == 400
            assert "serves site bru (Brussels), not ams" in other.json()["error"]
    engine = db.make_engine(db_url)
    with db.session_scope(engine) as session:
        cy = session.exec(select(Visit).where(Visit.name == "Cy Brussels")).one()
        assert cy.site_id == offices["bru"]
    engine.dispose()


def test_without_a_bound_site_the_login_asks_and_the_choice_sticks_and_is_remembered(
    offices, db_url, tmp_path
):
    with running(tmp_path, db_url) as server, server.client() as browser:
        asked = form_login(browser, "rita")
        assert asked.status_code == 303 and asked.headers["location"] == "/login/site"
        # Until it chooses, no page opens: each sends it to the choice.
        assert browser.get("/onsite").headers["location"] == "/login/site?next=/onsite"
        choice = browser.get("/login/site")
        offered = re.findall(r'<option value="([a-z0-9-]+)"', choice.text)
        assert offered == ["ams", "bru", "main"] and " selected" not in choice.text
        chosen = _choose(browser, "bru", choice.text)
        assert chosen.status_code == 303 and chosen.headers["location"] == "/reception"
        assert REMEMBERED in chosen.headers["set-cookie"]
        for _ in range(2):  # it sticks for the session
            onsite = browser.get("/onsite")
            assert "Bo Brussels" in onsite.text and "Ada Amsterdam" not in onsite.text
            assert ">Brussels</span>" in onsite.text and 'href="/login/site"' in onsite.text
        assert _session_sites(server) == {"rita": offices["bru"]}
        # A code the account was not offered is refused, and the session keeps its office.
        wrong = _choose(browser, "nowhere", browser.get("/login/site").text)
        assert wrong.status_code == 400 and "choose one of the offices listed" in wrong.text
        browser.post("/logout", data={"csrf_token": form_token(browser.get("/onsite").text)})
        assert _session_sites(server) == {}
        # The next login on this browser asks again, with bru preselected.
        assert form_login(browser, "rita").headers["location"] == "/login/site"
        again = browser.get("/login/site")
        assert '<option value="bru" selected>' in again.text
        _choose(browser, "ams", again.text)
        onsite = browser.get("/onsite")
        assert "Ada Amsterdam" in onsite.text and "Bo Brussels" not in onsite.text
        assert ">Amsterdam</span>" in onsite.text
    with running(tmp_path, db_url) as server, server.client() as elsewhere:
        form_login(elsewhere, "rita")  # another browser remembers nothing
        assert " selected" not in elsewhere.get("/login/site").text


def test_a_receptionist_of_ams_is_refused_at_the_bru_terminal_and_never_offered_bru(
    offices, db_url, tmp_path
):
    env = {"FACILITY_WEB__SITE": "bru"}
    with running(tmp_path, db_url, env=env) as server, server.client() as browser:
        landed = form_login(browser, "alice")
        assert landed.status_code == 303
        refused = browser.get(landed.headers["location"])
        assert refused.status_code == 403
        assert "alice&#39; needs role reception at site bru" in refused.text
        assert "<!doctype html>" in refused.text.lower()  # our error page, not a bare answer
        assert "Bo Brussels" not in browser.get("/onsite").text
        sign_in = browser.post(
            "/reception/sign-in",
            data={"csrf_token": form_token(refused.text), "name": "Eve Intruder"},
        )
        assert sign_in.status_code == 403
        with server.client(auth=("alice", PASSWORD)) as api:
            assert api.get("/api/onsite").status_code == 403
        entries = [e for e in _trail(server) if e.action == "refused"]
        assert entries and all(json.loads(e.details)["site"] == "bru" for e in entries)
        assert {e.actor for e in entries} == {"web:alice"}
    with running(tmp_path, db_url) as server, server.client() as browser:
        # Unbound: her one office is chosen without asking, and bru is never offered.
        landed = form_login(browser, "alice")
        assert landed.headers["location"] == "/reception"
        desk = browser.get("/reception")
        assert desk.status_code == 200 and ">Amsterdam</span>" in desk.text
        assert "Ada Amsterdam" in desk.text and "Bo Brussels" not in desk.text
        offered = re.findall(r'<option value="([a-z0-9-]+)"', browser.get("/login/site").text)
        assert offered == ["ams"]
        forced = _choose(browser, "bru", browser.get("/login/site").text)
        assert forced.status_code == 400
        assert _session_sites(server) == {"alice": offices["ams"]}
    engine = db.make_engine(db_url)
    with db.session_scope(engine) as session:
        assert session.exec(select(Visit).where(Visit.name == "Eve Intruder")).first() is None
    engine.dispose()


def test_the_api_serves_the_site_its_header_names_or_the_only_one(offices, db_url, tmp_path):
    with running(tmp_path, db_url) as server, server.client(auth=("rita", PASSWORD)) as api:
        unsaid = api.get("/api/onsite")
        assert unsaid.status_code == 400
        error = unsaid.json()["error"]
        assert "ams (Amsterdam), bru (Brussels), main (Main site)" in error and HEADER in error
        bru = api.get("/api/onsite", headers={HEADER: "bru"}).json()
        assert [p["name"] for p in bru["people"]] == ["Bo Brussels"]
        ams = api.get("/api/onsite", headers={HEADER: "ams"}).json()
        assert [p["name"] for p in ams["people"]] == ["Ada Amsterdam"]
        unknown = api.get("/api/onsite", headers={HEADER: "xyz"})
        assert unknown.status_code == 400 and "there is no site 'xyz'" in unknown.json()["error"]
        signed = api.post("/api/visits", json={"name": "Dee Brussels"}, headers={HEADER: "bru"})
        assert signed.status_code == 201
        assert api.get("/api/me", headers={HEADER: "bru"}).json()["site"] == "bru"
        # A session started with the header keeps its office; the header may not change it.
        with server.client() as session_client:
            started = session_client.post(
                "/api/session", json={"name": "rita", "password": PASSWORD}, headers={HEADER: "bru"}
            )
            assert started.status_code == 200 and started.json()["site"] == "bru"
            session_client.headers["X-CSRF-Token"] = started.json()["csrf_token"]
            names = [p["name"] for p in session_client.get("/api/onsite").json()["people"]]
            assert sorted(names) == ["Bo Brussels", "Dee Brussels"]
            assert session_client.get("/api/onsite", headers={HEADER: "ams"}).status_code == 400
        with server.client() as undecided:
            told = undecided.post("/api/session", json={"name": "rita", "password": PASSWORD})
            assert told.status_code == 400 and HEADER in told.json()["error"]
        with server.client(auth=("alice", PASSWORD)) as alice:
            at_bru = alice.get("/api/onsite", headers={HEADER: "bru"})
            assert at_bru.status_code == 403 and "at site bru" in at_bru.json()["error"]


def test_a_kiosk_added_at_bru_signs_visitors_in_and_out_at_bru(offices, db_url, tmp_path, cli):
    added = cli("--site", "bru", "kiosk", "add", "bru-lobby").stdout
    assert "at bru (Brussels)" in added
    pairing = re.search(r"(/kiosk/pair/\S+)", added).group(1)
    listed = json.loads(cli("kiosk", "list", "--format", "json").stdout)
    assert [(k["name"], k["site"]) for k in listed] == [("bru-lobby", "bru")]
    assert "bru" in cli("kiosk", "list").stdout
    several = cli("kiosk", "add", "somewhere", code=2).stderr
    assert "several sites" in several
    with running(tmp_path, db_url) as server, server.client() as tablet:
        confirm = tablet.get(pairing)
        tablet.post(pairing, data={"csrf_token": form_token(confirm.text)})
        start = tablet.get("/kiosk")
        assert start.status_code == 200
        tablet.post(
            "/kiosk/sign-in",
            data={"csrf_token": form_token(start.text), "name": "Kim Kiosk", "notice": "read"},
        )
        # Ada is on site in Amsterdam: the Brussels kiosk cannot sign her out.
        left = tablet.post(
            "/kiosk/sign-out",
            data={"csrf_token": form_token(start.text), "leaving": "Ada Amsterdam"},
        )
        assert left.status_code == 400
        with server.client(auth=("rita", PASSWORD)) as api:
            ams = [
                p["name"] for p in api.get("/api/onsite", headers={HEADER: "ams"}).json()["people"]
            ]
            bru = [
                p["name"] for p in api.get("/api/onsite", headers={HEADER: "bru"}).json()["people"]
            ]
        assert ams == ["Ada Amsterdam"] and sorted(bru) == ["Bo Brussels", "Kim Kiosk"]
        out = tablet.post(
            "/kiosk/sign-out", data={"csrf_token": form_token(start.text), "leaving": "Kim Kiosk"}
        )
        assert out.status_code == 303
    engine = db.make_engine(db_url)
    with db.session_scope(engine) as session:
        kim = session.exec(select(Visit).where(Visit.name == "Kim Kiosk")).one()
        assert kim.site_id == offices["bru"] and kim.signed_out_at is not None
        assert session.exec(select(Kiosk)).one().site_id == offices["bru"]
    engine.dispose()


# --- holds, cases and footage at a terminal (in-process: the rule, not the server) -----------------


def test_holds_of_another_office_are_not_found_and_the_organisations_need_the_whole_role(
    offices, db_url
):
    engine = db.make_engine(db_url)
    when = datetime(2026, 5, 1, 8, tzinfo=UTC)
    for case in ("INC-AMS", "INC-BRU", "INC-ORG"):
        place(engine, case, [("door_events", "lab")], when, when + timedelta(hours=8))
    with db.session_scope(engine) as session:
        for case, site in (("INC-AMS", offices["ams"]), ("INC-BRU", offices["bru"])):
            hold = session.exec(select(Hold).where(Hold.case == case)).one()
            hold.site_id = site
            session.add(hold)
        org = session.exec(select(Hold).where(Hold.case == "INC-ORG")).one()
        org.site_id = None
        session.add(org)
    add_local_user(engine, "sara", "security:ams")
    add_local_user(engine, "otto", "security")
    app = make_app(db_url, engine, Clock(when + timedelta(days=1)), site="ams")
    sara, _ = page_client(app, "sara")
    listed = sara.get("/holds?all=1").text
    assert "INC-AMS" in listed and "INC-ORG" in listed and "INC-BRU" not in listed
    assert sara.get("/holds/INC-AMS").status_code == 200
    assert sara.get("/holds/INC-BRU").status_code == 404
    refused = sara.get("/holds/INC-ORG")
    assert refused.status_code == 403 and "for the whole organisation" in refused.text
    api = sara.get("/api/holds?all=true").json()
    assert sorted(h["case"] for h in api) == ["INC-AMS", "INC-ORG"]
    assert sara.get("/api/holds/INC-BRU").status_code == 404
    otto, _ = page_client(app, "otto")
    assert otto.get("/holds/INC-ORG").status_code == 200
    assert otto.get("/holds/INC-BRU").status_code == 404  # not this terminal's, whoever asks
    # Another office's footage and exports are not found here either.
    bru_segment, ams_segment = segment("dock", when), segment("lab", when)
    bru_segment.site_id, ams_segment.site_id = offices["bru"], offices["ams"]
    bru_id, ams_id = add(engine, bru_segment, ams_segment)
    with db.session_scope(engine) as session:
        held = {h.case: row_id(h) for h in session.exec(select(Hold))}
        for case in ("INC-BRU", "INC-ORG"):
            session.add(
                CaseExport(
                    hold_id=held[case],
                    location=f"/nowhere/{case}",
                    device=1,
                    inode=1,
                    exported_by="tests",
                    exported_at=when,
                )
            )
    with db.session_scope(engine) as session:
        exports = {e.hold_id: row_id(e) for e in session.exec(select(CaseExport))}
    assert otto.get(f"/footage/{bru_id}").status_code == 404
    assert otto.get(f"/footage/{bru_id}?case=INC-BRU").status_code == 404
    assert otto.get(f"/footage/{ams_id}").status_code == 200  # the form asking why
    assert otto.get(f"/footage/{ams_id}?case=INC-BRU").status_code == 404
    assert otto.get(f"/exports/{exports[held['INC-BRU']]}/download").status_code == 404
    org_export = sara.get(f"/exports/{exports[held['INC-ORG']]}/download")
    assert org_export.status_code == 403 and "for the whole organisation" in org_export.text
    engine.dispose()


def test_the_web_starts_with_several_sites_and_refuses_an_unknown_one(offices, cli):
    unknown = cli("--site", "xyz", "web", code=2).stderr
    assert "there is no site 'xyz'" in unknown and "bru (Brussels)" in unknown
    config = cli.config('[web]\nsite = "nowhere"\n')
    told = cli("web", code=2, config=config).stderr
    assert "[web] site: there is no site 'nowhere'" in told


def test_a_web_account_takes_a_role_at_one_site(cli, offices):
    cli("user", "add", "bea", "--role", "reception:bru", input=f"{PASSWORD}\n")
    listed = json.loads(cli("user", "list", "--json").stdout)
    assert {u["name"]: u["roles"] for u in listed}["bea"] == ["reception:bru"]
    bad = cli("user", "add", "bob", "--role", "reception:BRU!", input=f"{PASSWORD}\n", code=2)
    assert "names no site code" in bad.stderr
    engine = db.make_engine(cli.url)
    with db.session_scope(engine) as session:
        assert session.exec(select(Site).where(Site.code == "bru")).one()
    engine.dispose()


# --- the migration --------------------------------------------------------------------------------


@pytest.fixture(params=ENGINES)
def before_kiosk_sites(request, tmp_path) -> Iterator[str]:
    """A database at 0011_sites, with one kiosk paired before kiosks had a site."""
    databases = database_at(request.param, tmp_path, "0011_sites")
    url = next(databases)
    engine = db.make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO kiosks (name, device_hash, added_at, added_by, paired_at) "
                "VALUES ('lobby', 'hash-of-the-device', :at, 'admin', :at)"
            ),
            {"at": "2026-11-01 09:00:00"},
        )
    engine.dispose()
    yield url
    next(databases, None)


def test_kiosks_paired_before_sites_stand_at_the_default_site(before_kiosk_sites):
    engine = db.make_engine(before_kiosk_sites)
    assert db.upgrade(engine)[0] == "0011_sites"
    with db.session_scope(engine) as session:
        kiosk = session.exec(select(Kiosk)).one()
        assert (kiosk.name, kiosk.site_id, kiosk.device_hash) == ("lobby", 1, "hash-of-the-device")
    engine.dispose()


def test_the_navigation_offers_what_the_account_may_open_at_this_office(offices, db_url):
    engine = db.make_engine(db_url)
    add_local_user(engine, "pia", "privacy:ams")
    app = make_app(db_url, engine, Clock(), site="ams")
    pia, _ = page_client(app, "pia")
    visits = pia.get("/visits")
    assert visits.status_code == 200 and 'href="/visits"' in visits.text
    # The report shows the whole organisation: not hers to open from one office.
    assert 'href="/report"' not in visits.text
    refused = pia.get("/report")
    assert refused.status_code == 403 and "for the whole organisation" in refused.text
    engine.dispose()


def test_a_terminal_offers_its_own_offices_hosts_and_tells_its_own_notice(
    offices, db_url, tmp_path
):
    Cli(db_url, tmp_path)("--site", "bru", "policy", "set", "visits", "5d", "--reason", "tests")
    engine = db.make_engine(db_url)
    with db.session_scope(engine) as session:
        now = datetime.now(UTC)
        for name, site in (("Hanna Brussels", "bru"), ("Henk Amsterdam", "ams")):
            hosts.add(session, now=now, name=name, email="host@example.org", site_id=offices[site])
    engine.dispose()
    with running(tmp_path, db_url, env={"FACILITY_WEB__SITE": "bru"}) as server:
        with server.client() as browser:
            form_login(browser, "rita")
            desk = browser.get("/reception").text
            assert "We keep visits 5 days" in desk  # bru's own policy, not the organisation's 3
            expected = browser.get("/expected").text
            assert "Hanna Brussels" in expected and "Henk Amsterdam" not in expected
            token = form_token(desk)
            browser.post(
                "/reception/sign-in",
                data={"csrf_token": token, "name": "Di Brussels", "host": "Hanna Brussels"},
            )
            assert "told" in browser.get("/reception").text.lower()
        with server.client() as anyone:  # the public notice of a bound server is its office's
            notice = anyone.get("/notice").text
            assert "5 days" in notice and "Brussels" in notice
            assert anyone.get("/notice?site=ams").status_code == 400
    with running(tmp_path, db_url) as server, server.client() as anyone:
        assert "Amsterdam" in anyone.get("/notice?site=ams").text
        assert "5 days" in anyone.get("/notice?site=bru").text
        unknown = anyone.get("/notice?site=nowhere")
        assert unknown.status_code == 400 and "there is no site" in unknown.text
