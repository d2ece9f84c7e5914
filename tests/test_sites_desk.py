"""Two offices on one database, beyond reception: each office's hosts directory and the hosts it
tells, labels of its own visits, case exports checked against their hold's site, the registers
that stay the organisation's, a site's own waiting shortening, and metrics per site.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlmodel import select

from facility.accounts.access import current_identity
from facility.notify import outbox
from facility.store import db
from facility.store.models import Host, HostNotification
from tests.conftest import Cli
from tests.factories import NOW, D, add, add_offices, granted, site_ids

pytestmark = pytest.mark.usefixtures("fixed_clock")


def notifications(cli: Cli) -> list[tuple[int, str, str]]:
    """(site, channel, visitor) of every queued host notification."""
    engine = db.make_engine(cli.url)
    try:
        with db.session_scope(engine) as session:
            rows = session.exec(select(HostNotification).order_by(HostNotification.id)).all()
            return [(n.site_id, n.channel, n.visitor) for n in rows]
    finally:
        engine.dispose()


def refusals(cli: Cli) -> list[tuple[str, str | None]]:
    entries = json.loads(cli("audit", "show", "--format", "json").stdout)
    return [
        (e["details"]["command"], e["details"]["site"]) for e in entries if e["action"] == "refused"
    ]


# --- hosts ---------------------------------------------------------------------------------------


def test_each_office_has_its_own_hosts_directory_and_tells_its_own_host(cli):
    add_offices(cli)
    ids = site_ids(cli.url)
    cli("--site", "ams", "host", "add", "Bob Smith", "--email", "bob@ams.example.org")
    # The same name at another office is another person's entry, not a change of the first.
    added = cli("--site", "bru", "host", "add", "Bob Smith", "--webhook", "https://bru.example/h")
    assert "host Bob Smith added: told by webhook" in added.stdout

    def directory(site: str) -> list[tuple[str, str | None, str | None]]:
        shown = json.loads(cli("--site", site, "host", "list", "--format", "json").stdout)
        return [(h["name"], h["email"], h["webhook"]) for h in shown]

    assert directory("ams") == [("Bob Smith", "bob@ams.example.org", None)]
    assert directory("bru") == [("Bob Smith", None, "https://bru.example/h")]
    assert directory("main") == []

    # A sign-in finds its host at the visit's office, and queues the notification there.
    said = cli("--site", "bru", "visitor", "sign-in", "Ada Lovelace", "--host", "bob smith")
    assert "Bob Smith will be told by webhook" in said.stdout
    assert notifications(cli) == [(ids["bru"], "webhook", "Ada Lovelace")]
    said = cli("--site", "main", "visitor", "sign-in", "Grace Hopper", "--host", "Bob Smith")
    assert "will be told" not in said.stdout
    assert len(notifications(cli)) == 1

    cli("--site", "bru", "host", "remove", "bob smith")
    assert directory("bru") == [] and directory("ams") == [
        ("Bob Smith", "bob@ams.example.org", None)
    ]
    assert notifications(cli) == []  # what waited for the bru host went with the entry


def test_a_daemon_sends_its_own_offices_notifications(cli):
    """Each office's daemon tells its own hosts, with its own [notify] settings and time zone."""
    add_offices(cli)
    for site, visitor in (("ams", "Ada Lovelace"), ("bru", "Grace Hopper")):
        cli("--site", site, "host", "add", "Bob", "--webhook", f"https://{site}.example/h")
        cli("--site", site, "visitor", "sign-in", visitor, "--host", "Bob")
    ids = site_ids(cli.url)
    engine = db.make_engine(cli.url)
    try:
        with db.session_scope(engine) as session:
            lease = timedelta(minutes=5)
            at_bru = outbox.claim_due(session, now=NOW, lease=lease, site_id=ids["bru"])
            assert [(c.visitor, c.address) for c in at_bru] == [
                ("Grace Hopper", "https://bru.example/h")
            ]
            rest = outbox.claim_due(session, now=NOW, lease=lease)
            assert [c.visitor for c in rest] == ["Ada Lovelace"]
    finally:
        engine.dispose()


def test_a_receptionist_of_one_office_manages_only_that_offices_hosts(cli):
    add_offices(cli)
    me, desk = current_identity().name, granted(cli, "reception", "ams")
    cli("--site", "ams", "host", "add", "Eve Jones", "--email", "eve@example.org", config=desk)
    cli("--site", "bru", "host", "add", "Eve Jones", "--email", "eve@example.org")
    refused = cli(
        "--site", "bru", "host", "add", "Mal", "--email", "m@example.org", config=desk, code=3
    )
    assert refused.stderr.strip() == (
        f"facility: host add: user '{me}' needs role reception at site bru "
        "(see [roles] in the configuration)"
    )
    cli("--site", "bru", "host", "list", config=desk, code=3)
    cli("--site", "bru", "host", "remove", "Eve Jones", config=desk, code=3)
    assert refusals(cli) == [("host add", "bru"), ("host list", "bru"), ("host remove", "bru")]
    cli("--site", "ams", "host", "remove", "Eve Jones", config=desk)
    shown = json.loads(cli("--site", "bru", "host", "list", "--format", "json").stdout)
    assert [h["name"] for h in shown] == ["Eve Jones"]


def test_hosts_are_purged_under_their_sites_policy_and_reached_by_that_sites_privacy_officer(cli):
    add_offices(cli)
    ids = site_ids(cli.url)
    cli("--site", "bru", "policy", "set", "hosts", "1d", "--reason", "Brussels: less", "--yes")
    cli("--site", "bru", "policy", "apply", "hosts", "--reason", "tests: at once")
    engine = db.make_engine(cli.url)
    unused = NOW - 3 * D  # past Brussels' day, within the organisation's year
    add(
        engine,
        *(
            Host(
                site_id=ids[code],
                name="Bob Smith",
                name_key="bob smith",
                email=f"bob@{code}.example.org",
                added_at=unused,
                retain_from=unused,
            )
            for code in ("ams", "bru")
        ),
    )
    engine.dispose()
    privacy_ams = granted(cli, "privacy", "ams")
    shown = json.loads(cli("subject", "export", "--name", "Bob Smith", config=privacy_ams).stdout)
    assert [h["site_id"] for h in shown["records"]["hosts"]] == [ids["ams"]]

    ran = json.loads(cli("purge", "--format", "json").stdout)
    assert {code: r["kinds"]["hosts"]["deleted"] for code, r in ran["sites"].items()} == {
        "ams": 0,
        "bru": 1,
        "main": 0,
    }
    cli("subject", "erase", "--name", "Bob Smith", "--reason", "DSR 9", "--yes", config=privacy_ams)
    left = json.loads(cli("subject", "export", "--name", "Bob Smith").stdout)["records"]
    assert left.get("hosts", []) == []


# --- labels --------------------------------------------------------------------------------------


def test_a_label_is_printed_only_for_a_visit_of_the_commands_office(cli, tmp_path):
    add_offices(cli)
    said = cli("--site", "ams", "visitor", "sign-in", "Ada Lovelace", "--badge", "B1").stdout
    visit_id = said.split(":")[0].removeprefix("visit ")
    label = tmp_path / "label.html"
    cli("--site", "ams", "visitor", "label", visit_id, "--output", str(label))
    assert "Ada Lovelace" in label.read_text()
    elsewhere = cli("--site", "bru", "visitor", "label", visit_id, code=2)
    assert elsewhere.stderr.strip() == f"facility: ID: there is no visit {visit_id} at site bru"
    assert "Ada" not in elsewhere.stdout
    desk = granted(cli, "reception", "ams")
    cli("--site", "bru", "visitor", "label", visit_id, config=desk, code=3)
    assert refusals(cli) == [("visitor label", "bru")]


# --- case exports --------------------------------------------------------------------------------


def test_case_exports_are_listed_exported_and_handed_over_by_their_holds_site(cli, tmp_path):
    add_offices(cli)
    me, ams = current_identity().name, granted(cli, "security", "ams")
    window = ["--reason", "theft", "--from", "09:00", "--to", "10:00", "--kind", "door_events"]
    cli("--site", "ams", "hold", "place", "INC-A", *window)
    cli("--site", "bru", "hold", "place", "INC-B", *window)
    cli("--site", "ams", "hold", "place", "INC-O", *window, "--organisation")
    numbers = {}
    for case in ("INC-A", "INC-B", "INC-O"):
        said = cli("hold", "export", case, "--output", str(tmp_path / case)).stdout
        numbers[case] = said.split()[1]
        assert (tmp_path / case / "manifest.json").is_file()

    def listed(**kwargs: object) -> list[str]:
        shown = cli("export", "list", "--format", "json", **kwargs).stdout
        return [e["case"] for e in json.loads(shown)]

    assert listed() == ["INC-A", "INC-B", "INC-O"]
    assert listed(config=ams) == ["INC-A", "INC-O"]  # their site's, and the organisation's
    assert "INC-B" not in cli("export", "list", config=ams).stdout

    refused = cli(
        "hold", "export", "INC-B", "--output", str(tmp_path / "again"), config=ams, code=3
    )
    assert refused.stderr.strip() == (
        f"facility: hold export: user '{me}' needs role security at site bru "
        "(see [roles] in the configuration)"
    )
    assert not (tmp_path / "again").exists()
    hand = ["--to", "DC Jansen", "--reference", "PV-1"]
    cli("export", "handed-over", numbers["INC-B"], *hand, config=ams, code=3)
    assert json.loads(cli("export", "list", "--format", "json").stdout)[1]["handed_over_at"] is None
    cli("export", "handed-over", numbers["INC-A"], *hand, config=ams)
    # An organisation hold needs the role for the whole organisation.
    cli("export", "handed-over", numbers["INC-O"], *hand, config=ams, code=3)
    assert refusals(cli) == [
        ("hold export", "bru"),
        ("export handed-over", "bru"),
        ("export handed-over", None),
    ]


# --- the organisation's registers ----------------------------------------------------------------


def test_requests_restrictions_and_devices_need_the_role_for_the_whole_organisation(cli):
    add_offices(cli)
    me, privacy = current_identity().name, granted(cli, "privacy", "ams")
    security = granted(cli, "security", "ams")
    mac = "3c:22:fb:01:02:03"
    attempts = [
        (
            privacy,
            [
                "request",
                "open",
                "erasure",
                "--name",
                "Ada",
                "--received",
                "2026-06-30",
                "--contact",
                "ada@example.org",
            ],
        ),
        (privacy, ["request", "list"]),
        (privacy, ["subject", "restrict", "--name", "Ada", "--reason", "DSR 1"]),
        (privacy, ["subject", "restricted"]),
        (privacy, ["wifi", "ignore", mac, "--reason", "DSR 2"]),
        (privacy, ["wifi", "ignored"]),
        (security, ["wifi", "block", mac, "--reason", "stolen laptop"]),
        (security, ["wifi", "blocked"]),
    ]
    for config, args in attempts:
        # Naming the site the role is held at does not narrow these registers to it.
        refused = cli("--site", "ams", *args, config=config, code=3)
        role = "privacy" if config == privacy else "security"
        assert f"user '{me}' needs role {role}" in refused.stderr
        assert "for the whole organisation" in refused.stderr, refused.stderr
    commands = [" ".join(args[:2]) for _, args in attempts]
    assert refusals(cli) == [(command, None) for command in commands]
    # Their own site's records stay theirs: the privacy officer of ams still exports there.
    cli("--site", "ams", "subject", "export", "--name", "Ada", config=privacy)
    # Held for the whole organisation, the role opens every register.
    cli(
        "request",
        "open",
        "erasure",
        "--name",
        "Ada",
        "--received",
        "2026-06-30",
        "--contact",
        "a@x.org",
    )
    cli("wifi", "block", mac, "--reason", "stolen laptop")


def test_an_admin_of_one_office_adds_lists_and_revokes_only_that_offices_kiosks(cli):
    add_offices(cli)
    cli("--site", "ams", "kiosk", "add", "ams-lobby")
    office = cli.tmp_path / "admin-bru.toml"  # beside the default configuration, which it leaves
    office.write_text(f'[roles]\nadmin = ["{current_identity().name}:bru"]\n')
    assert (
        "at bru (Brussels)"
        in cli("--site", "bru", "kiosk", "add", "bru-lobby", config=office).stdout
    )
    cli("--site", "ams", "kiosk", "add", "ams-hall", config=office, code=3)
    listed = json.loads(cli("kiosk", "list", "--format", "json", config=office).stdout)
    assert [(k["name"], k["site"]) for k in listed] == [("bru-lobby", "bru")]
    cli("kiosk", "revoke", "ams-lobby", config=office, code=3)
    cli("kiosk", "revoke", "bru-lobby", config=office)
    states = json.loads(cli("kiosk", "list", "--format", "json").stdout)
    assert {k["name"]: k["state"] for k in states} == {
        "ams-lobby": "waiting",
        "bru-lobby": "revoked",
    }
    assert refusals(cli) == [("kiosk add", "ams"), ("kiosk revoke", "ams")]
