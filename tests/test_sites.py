"""Two offices on one database: each command works at its own site, and says so when it cannot
tell which one.

Reception, the on-site list, the roll call, door events and badge numbers are each site's own;
a time typed without an offset is read in the site's own zone; an unknown or missing site exits 2
listing the sites.
"""

from __future__ import annotations

import json

import pytest

from facility.accounts.access import current_identity
from facility.store import db
from tests.conftest import Cli
from tests.factories import NOW, D, H, add, add_offices, granted, site_ids, visit

pytestmark = pytest.mark.usefixtures("fixed_clock")


def people(cli: Cli, site: str) -> list[str]:
    listing = json.loads(cli("--site", site, "onsite", "--format", "json").stdout)
    return [p["name"] for p in listing["people"]]


def test_a_command_that_needs_a_site_says_which_exist_when_it_cannot_tell(cli):
    cli("onsite")  # one site: chosen without being named
    add_offices(cli)
    refused = cli("onsite", code=2)
    assert refused.stderr.strip() == (
        "facility: several sites: ams (Amsterdam), bru (Brussels), main (Main site); "
        "choose one with --site or FACILITY_SITE"
    )
    unknown = cli("--site", "xyz", "visitor", "sign-in", "Ada", code=2)
    assert "there is no site 'xyz'" in unknown.stderr and "bru (Brussels)" in unknown.stderr
    assert cli("visitor", "sign-in", "Ada", "--site", "ams").stdout.startswith("visit ")
    configured = cli("onsite", "--format", "json", config=cli.config('site = "ams"\n'))
    assert [p["name"] for p in json.loads(configured.stdout)["people"]] == ["Ada"]


def test_each_office_sees_only_its_own_people_badges_and_doors(cli):
    add_offices(cli)
    cli("--site", "ams", "visitor", "sign-in", "Ada Lovelace", "--badge", "B1")
    cli("--site", "bru", "visitor", "sign-in", "Bo Peep", "--badge", "B1")  # the same number
    assert people(cli, "ams") == ["Ada Lovelace"]
    assert people(cli, "bru") == ["Bo Peep"]
    # A press of Brussels' B1 is not Ada's last door; the same event id is stored at each site.
    cli(
        "--site", "bru", "door", "event", "--door", "bru-lobby", "--badge", "B1", "--event-id", "e1"
    )
    cli(
        "--site", "ams", "door", "event", "--door", "ams-lobby", "--badge", "B1", "--event-id", "e1"
    )
    for site, door in (("ams", "ams-lobby"), ("bru", "bru-lobby")):
        shown = json.loads(cli("--site", site, "onsite", "--format", "json").stdout)
        assert shown["people"][0]["last_door"] == door
    # Signing out at Amsterdam never finds the Brussels visitor, by name, badge or number.
    cli("--site", "ams", "visitor", "sign-out", "--name", "Bo Peep", code=2)
    assert "is at another site" in cli("--site", "ams", "visitor", "sign-out", "2", code=2).stderr
    cli("--site", "ams", "visitor", "sign-out", "--badge", "B1")
    assert people(cli, "ams") == [] and people(cli, "bru") == ["Bo Peep"]
    # Each site's roll call lists its own people, and one may be open at each at once.
    cli("--site", "ams", "visitor", "sign-in", "Cy")
    cli("--site", "ams", "muster", "start")
    cli("--site", "bru", "muster", "start")
    ams = json.loads(cli("--site", "ams", "muster", "status", "--format", "json").stdout)
    bru = json.loads(cli("--site", "bru", "muster", "status", "--format", "json").stdout)
    assert [e["name"] for e in ams["entries"]] == ["Cy"]
    assert [e["name"] for e in bru["entries"]] == ["Bo Peep"]
    cli("--site", "bru", "muster", "status", "--id", str(ams["id"]), code=2)


def test_a_time_typed_without_an_offset_is_read_in_the_sites_own_zone(cli):
    cli(
        "site",
        "add",
        "nyc",
        "--name",
        "New York",
        "--timezone",
        "America/New_York",
        "--country",
        "US",
    )
    cli("--site", "nyc", "visitor", "sign-in", "Ada", "--at", "2026-07-01T06:00")
    cli("--site", "main", "visitor", "sign-in", "Bob", "--at", "2026-07-01T06:00")
    nyc = json.loads(cli("--site", "nyc", "onsite", "--format", "json").stdout)["people"]
    main = json.loads(cli("--site", "main", "onsite", "--format", "json").stdout)["people"]
    assert nyc[0]["signed_in_at"] == "2026-07-01T10:00:00Z"  # EDT, UTC-4
    assert main[0]["signed_in_at"] == "2026-07-01T04:00:00Z"  # CEST, UTC+2
    table = cli("--site", "nyc", "onsite").stdout
    assert "06:00 EDT" in table and "New York" in table


def test_site_add_checks_what_it_is_given_and_is_audited(cli):
    for args, named in (
        (["Bad Code", "--name", "x", "--timezone", "UTC", "--country", "NL"], "CODE"),
        (["ams", "--name", "x", "--timezone", "Mars/Base", "--country", "NL"], "--timezone"),
        (["ams", "--name", "x", "--timezone", "UTC", "--country", "XX"], "--country"),
        (["main", "--name", "x", "--timezone", "UTC", "--country", "NL"], "already exists"),
    ):
        assert named in cli("site", "add", *args, code=2).stderr
    add_offices(cli)
    cli("site", "set", "bru", "--name", "Brussels office")
    listed = json.loads(cli("site", "list", "--format", "json").stdout)
    assert [(s["code"], s["name"], s["country"]) for s in listed] == [
        ("ams", "Amsterdam", "NL"),
        ("bru", "Brussels office", "BE"),
        ("main", "Main site", "NL"),
    ]
    entries = json.loads(cli("audit", "show", "--format", "json").stdout)
    assert [e["action"] for e in entries][-3:] == ["site.add", "site.add", "site.set"]


def test_a_receptionist_of_one_office_is_refused_at_another_and_the_refusal_is_audited(cli):
    add_offices(cli)
    me, desk = current_identity().name, granted(cli, "reception", "ams")
    cli("--site", "ams", "visitor", "sign-in", "Ada", config=desk)
    refused = cli("--site", "bru", "visitor", "sign-in", "Bo", config=desk, code=3)
    assert refused.stderr.strip() == (
        f"facility: visitor sign-in: user '{me}' needs role reception at site bru "
        "(see [roles] in the configuration)"
    )
    assert people(cli, "bru") == [] and people(cli, "ams") == ["Ada"]
    # The same grant is no organisation-wide right: a hold for every site needs one.
    security = granted(cli, "security", "ams")
    hold = ["hold", "place", "INC-1", "--reason", "theft", "--from", "09:00", "--to", "10:00"]
    cli("--site", "ams", *hold, "--kind", "door_events", config=security)
    at_every_site = [*hold[:2], "INC-2", *hold[3:], "--kind", "door_events", "--organisation"]
    cli("--site", "ams", *at_every_site, config=security, code=3)
    entries = json.loads(cli("audit", "show", "--format", "json").stdout)
    refusals = [e for e in entries if e["action"] == "refused"]
    assert [(e["details"]["command"], e["details"]["site"]) for e in refusals] == [
        ("visitor sign-in", "bru"),
        ("hold place", None),
    ]


def test_the_visit_log_shows_only_the_chosen_offices_visits(cli):
    add_offices(cli)
    cli("--site", "ams", "visitor", "sign-in", "Ada Lovelace")
    cli("--site", "bru", "visitor", "sign-in", "Grace Hopper")

    def log(site: str, **kwargs: object) -> list[str]:
        shown = cli("--site", site, "visitor", "list", "--format", "json", **kwargs)
        return [v["name"] for v in json.loads(shown.stdout)["visits"]]

    assert log("ams") == ["Ada Lovelace"]
    assert log("bru") == ["Grace Hopper"]
    assert "Ada" not in cli("--site", "bru", "visitor", "list").stdout
    assert "several sites" in cli("visitor", "list", code=2).stderr
    desk = granted(cli, "reception", "ams")
    assert log("ams", config=desk) == ["Ada Lovelace"]
    refused = cli("--site", "bru", "visitor", "list", config=desk, code=3)
    assert "needs role reception or privacy at site bru" in refused.stderr


def test_expected_visitors_are_announced_listed_and_cancelled_at_their_own_office(cli):
    add_offices(cli)
    cli("--site", "ams", "visitor", "expect", "Ada Lovelace", "--host", "Hal", "--on", "today")
    cli("--site", "bru", "visitor", "expect", "Grace Hopper", "--host", "Hal", "--on", "today")

    def expected(site: str) -> list[tuple[int, str]]:
        shown = cli("--site", site, "expected", "list", "--format", "json")
        return [(row["id"], row["name"]) for row in json.loads(shown.stdout)]

    ((ada, _),) = expected("ams")
    assert expected("ams") == [(ada, "Ada Lovelace")]
    ((grace, name),) = expected("bru")
    assert name == "Grace Hopper"
    assert "Ada" not in cli("--site", "bru", "expected", "list").stdout
    assert "several sites" in cli("expected", "list", code=2).stderr
    # Another office's number is no expected visit here: not cancelled, not signed in.
    refused = cli("--site", "bru", "expected", "cancel", str(ada), code=2)
    assert f"no expected visit {ada}" in refused.stderr
    cli("--site", "bru", "expected", "arrive", str(ada), code=2)
    assert expected("ams") == [(ada, "Ada Lovelace")] and people(cli, "bru") == []
    # Signing in by name fulfils the one expected at that office only.
    cli("--site", "bru", "visitor", "sign-in", "Ada Lovelace")
    assert (
        json.loads(cli("--site", "ams", "expected", "list", "--format", "json").stdout)[0][
            "arrived_at"
        ]
        is None
    )
    cli("--site", "bru", "expected", "cancel", str(grace))
    assert expected("bru") == []


def test_a_policy_above_its_countrys_legal_ceiling_is_refused_naming_the_ceiling(cli):
    add_offices(cli)
    # The organisation's default binds every site that follows it: main and ams are Dutch.
    refused = cli("policy", "set", "camera", "30d", "--reason", "longer", code=2)
    assert "above the legal ceiling for camera in NL" in refused.stderr
    assert "at most 28d, Autoriteit Persoonsgegevens" in refused.stderr
    # Brussels may keep a month (the Belgian camera law), not more.
    cli("--site", "bru", "policy", "set", "camera", "31d", "--reason", "a month")
    refused = cli("--site", "bru", "policy", "set", "camera", "32d", "--reason", "x", code=2)
    assert "in BE (site bru)" in refused.stderr and "Wet van 21 maart 2007" in refused.stderr
    shown = json.loads(cli("--site", "bru", "policy", "show", "--format", "json").stdout)
    camera = next(p for p in shown if p["kind"] == "camera")
    assert (camera["seconds"], camera["from"]) == (31 * 86400, "site")
    # Only a ceiling an admin changes (with its source, audited) lets a policy go higher.
    source = "Autoriteit Persoonsgegevens, amended guideline"
    cli("policy", "ceiling", "set", "NL", "camera", "35d", "--source", source)
    cli("policy", "set", "camera", "30d", "--reason", "longer")
    actions = [e["action"] for e in json.loads(cli("audit", "show", "--format", "json").stdout)]
    assert "policy.ceiling" in actions


def test_a_hold_keeps_its_own_sites_records_and_an_organisation_hold_every_sites(cli):
    add_offices(cli)
    for site in ("ams", "bru"):
        cli("--site", site, "door", "event", "--door", f"{site}-lobby", "--badge", "B1")
    window = ["--from", "2026-07-01T00:00Z", "--to", "2026-07-01T23:00Z", "--kind", "door_events"]
    cli("--site", "ams", "hold", "place", "INC-1", "--reason", "theft", *window)
    cli("hold", "place", "INC-2", "--reason", "fraud", "--organisation", *window)
    keeps = {
        case: json.loads(cli("hold", "show", case, "--format", "json").stdout)["keeps"]
        for case in ("INC-1", "INC-2")
    }
    assert (keeps["INC-1"]["door_events"], keeps["INC-2"]["door_events"]) == (1, 2)
    listed = json.loads(cli("hold", "list", "--format", "json").stdout)
    assert [(h["case"], h["site"]) for h in listed] == [("INC-1", "ams"), ("INC-2", None)]
    assert "(organisation)" in cli("hold", "list").stdout
    # Security staff of Brussels see the organisation's hold, not Amsterdam's, and cannot
    # release it.
    bru = granted(cli, "security", "bru")
    listed = json.loads(cli("hold", "list", "--format", "json", config=bru).stdout)
    assert [h["case"] for h in listed] == ["INC-2"]
    refused = cli("hold", "release", "INC-1", "--reason", "done", config=bru, code=3)
    assert "needs role security at site ams" in refused.stderr
    cli("hold", "release", "INC-2", "--reason", "done", config=bru, code=3)
    assert json.loads(cli("hold", "show", "INC-1", "--format", "json").stdout)["protects"]


def test_a_sites_own_shortening_waits_like_the_organisations_until_applied(cli):
    add_offices(cli)

    def visits_at_bru() -> dict:
        shown = json.loads(cli("--site", "bru", "policy", "show", "--format", "json").stdout)
        return next(p for p in shown if p["kind"] == "visits")

    before = visits_at_bru()["seconds"]
    said = cli("--site", "bru", "policy", "set", "visits", "1d", "--reason", "less", "--yes")
    assert "visits at bru:" in said.stdout and "--site bru policy apply visits" in said.stdout
    assert visits_at_bru()["seconds"] == before and visits_at_bru()["from"] == "site"
    cli("--site", "bru", "policy", "apply", "visits", "--reason", "at once")
    assert visits_at_bru()["seconds"] == 86400
    organisation = json.loads(cli("policy", "show", "--format", "json").stdout)
    assert next(p for p in organisation if p["kind"] == "visits")["seconds"] == before


def _brussels_keeps_visits_five_days(cli) -> dict[str, int]:
    """Two offices; visits kept 30 days by the organisation, 5 at bru; the sites' ids."""
    add_offices(cli)
    cli("policy", "set", "visits", "30d", "--reason", "a month", "--yes")
    cli("--site", "bru", "policy", "set", "visits", "5d", "--reason", "Brussels: less", "--yes")
    # A shortening waits policy.shortening_delay; the admin applies it at once.
    cli("--site", "bru", "policy", "apply", "visits", "--reason", "tests: at once")
    return site_ids(cli.url)


def test_each_site_is_purged_under_its_own_policy_with_its_own_audit_entry(cli):
    ids = _brussels_keeps_visits_five_days(cli)
    engine = db.make_engine(cli.url)
    gone = NOW - 8 * D  # past Brussels' 5 days, within the organisation's 30
    rows = []
    for code in ("ams", "bru"):
        row = visit(f"Visitor at {code}", gone - H, gone)
        row.site_id = ids[code]
        rows.append(row)
    add(engine, *rows)
    engine.dispose()
    dry = json.loads(cli("purge", "--dry-run", "--format", "json").stdout)
    assert dry["kinds"]["visits"]["deleted"] == 1
    ran = json.loads(cli("purge", "--format", "json").stdout)
    assert ran["kinds"]["visits"]["deleted"] == 1
    assert {code: r["kinds"]["visits"]["deleted"] for code, r in ran["sites"].items()} == {
        "ams": 0,
        "bru": 1,
        "main": 0,
    }
    entries = json.loads(cli("audit", "show", "--format", "json").stdout)
    purged = [e["details"]["site"] for e in entries if e["action"] == "purge"]
    assert purged == ["ams", "bru", "main"]
    export = cli("subject", "export", "--name", "Visitor at ams", "--format", "json").stdout
    assert "Visitor at ams" in export
    # --site narrows a run to one site.
    only = json.loads(cli("--site", "ams", "purge", "--format", "json").stdout)
    assert list(only["sites"]) == ["ams"] and only["kinds"]["visits"]["deleted"] == 0


def test_the_report_holds_each_site_to_its_own_policy_and_adds_the_sites_up(cli):
    ids = _brussels_keeps_visits_five_days(cli)
    engine = db.make_engine(cli.url)
    gone = NOW - 8 * D  # past Brussels' 5 days (and not purged), within the organisation's 30
    rows = []
    for code in ("ams", "ams", "bru"):
        row = visit(f"Visitor at {code}", gone - H, gone)
        row.site_id = ids[code]
        rows.append(row)
    add(engine, *rows)
    engine.dispose()
    shown = json.loads(cli("report", "--format", "json", code=1).stdout)
    per_site = {code: found["kinds"]["visits"] for code, found in shown["sites"].items()}
    assert {code: v["count"] for code, v in per_site.items()} == {"ams": 2, "bru": 1, "main": 0}
    assert {code: v["overdue_unheld"] for code, v in per_site.items()} == {
        "ams": 0,
        "bru": 1,
        "main": 0,
    }
    visits = shown["kinds"]["visits"]
    assert (visits["count"], visits["overdue_unheld"], shown["ok"]) == (3, 1, False)
    assert "Per site, each against its own policy" in cli("report", code=1).stdout
    # Brussels' own report holds it to its own policy; Amsterdam's is clean.
    bru = json.loads(cli("--site", "bru", "report", "--format", "json", code=1).stdout)
    assert bru["kinds"]["visits"]["policy_seconds"] == 5 * 86400
    ams = json.loads(cli("--site", "ams", "report", "--format", "json").stdout)
    assert (ams["kinds"]["visits"]["count"], ams["ok"], list(ams["sites"])) == (2, True, ["ams"])


def test_a_privacy_officer_of_one_office_exports_and_erases_only_that_offices_records(cli):
    add_offices(cli)
    for site in ("ams", "bru"):
        cli("--site", site, "visitor", "sign-in", "Ada Lovelace")
        cli("--site", site, "visitor", "sign-out", "--name", "Ada Lovelace")
    ams = granted(cli, "privacy", "ams")
    shown = json.loads(cli("subject", "export", "--name", "Ada Lovelace", config=ams).stdout)
    ids = site_ids(cli.url)
    assert [v["site_id"] for v in shown["records"]["visits"]] == [ids["ams"]]
    everywhere = json.loads(cli("subject", "export", "--name", "Ada Lovelace").stdout)
    assert len(everywhere["records"]["visits"]) == 2
    cli("subject", "erase", "--name", "Ada Lovelace", "--reason", "request 7", "--yes", config=ams)
    left = json.loads(cli("subject", "export", "--name", "Ada Lovelace").stdout)["records"]
    assert [v["site_id"] for v in left["visits"]] == [ids["bru"]]
