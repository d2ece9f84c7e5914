"""The notice and the register per site (issues 17 and 15): each office's notice tells the
policies in force there (its own, else the organisation's), names the office and its country's
legal ceiling, and has its own version, which the report names per site; the register has one
entry per kind and per site, with that site's retention and ceiling. Both engines.
"""

from __future__ import annotations

import json
import re

import pytest

from facility.accounts.access import current_identity
from facility.store import kinds
from tests.conftest import Cli
from tests.factories import add_offices, notice_version
from tests.webserver import add_accounts

pytestmark = pytest.mark.usefixtures("fixed_clock")

BELGIAN_LAW = "Belgian camera law (Wet van 21 maart 2007), art. 6 §3: at most one month"
DUTCH_GUIDELINE = "Autoriteit Persoonsgegevens: camera images are kept at most 4 weeks"


def _flat(text: str) -> str:
    return " ".join(text.split())


def _notice(cli: Cli, site: str, *args: str) -> str:
    return cli("--site", site, "notice", *args).stdout


def test_each_office_has_its_own_notice_with_its_policy_name_and_ceiling(cli):
    add_offices(cli, dub=("Dublin", "Europe/Dublin", "IE"))
    refused = cli("notice", code=2)  # whose notice: the office's, so it must be told
    assert refused.stderr.startswith("facility: several sites: ams (Amsterdam), bru (Brussels)")
    cli("--site", "bru", "policy", "set", "camera", "21d", "--reason", "Brussels DPIA")
    ams, bru = _notice(cli, "ams"), _notice(cli, "bru")
    assert "Office: Brussels." in bru and "Office: Amsterdam." in ams
    assert (
        "How long: 21 days after the recording. Legal limit in BE: 31 days. Source: "
        f"{BELGIAN_LAW}." in _flat(bru)
    )
    assert (
        "How long: 14 days after the recording. Legal limit in NL: 28 days. Source: "
        f"{DUTCH_GUIDELINE}." in _flat(ams)
    )
    assert "Legal limit" not in _notice(cli, "dub")  # no ceiling in Ireland: nothing to name
    assert notice_version(ams) != notice_version(bru)

    # Brussels' policy changes: its notice and version change; Amsterdam's stay word for word.
    cli("--site", "bru", "policy", "set", "camera", "30d", "--reason", "insurer")
    again = _notice(cli, "bru")
    assert "How long: 30 days after the recording." in _flat(again)
    assert notice_version(again) != notice_version(bru)
    assert _notice(cli, "ams") == ams

    # A shortening waiting at one office is told there, in that office's own time.
    cli("--site", "dub", "policy", "set", "visits", "1d", "--reason", "DPIA", "--yes")
    dublin = _flat(_notice(cli, "dub"))
    assert "How long: 3 days after sign-out. Left open," in dublin
    assert "From 2026-07-02 13:00 IST: 1 day after sign-out." in dublin
    assert "From 2026" not in _flat(_notice(cli, "ams"))

    dutch = _flat(_notice(cli, "bru", "--lang", "nl", "--format", "html"))
    assert 'id="office">Vestiging: Brussels.</p>' in dutch
    assert "Wettelijke grens in BE: 31 dagen. Bron: " in dutch
    assert '<strong class="duration">30 dagen</strong>' in dutch


def test_a_single_site_notice_names_the_ceiling_only_where_it_cuts_the_policy_short(cli):
    before = _notice(cli, "main")
    assert "Office:" not in before and "Legal limit" not in before
    # A ceiling lowered below the policy: the ceiling is what the purge keeps to, so the
    # notice says that, and why (it said 14 days before).
    cli("policy", "ceiling", "set", "NL", "camera", "10d", "--source", "a stricter guideline")
    after = _flat(cli("notice").stdout)
    assert (
        "How long: 10 days after the recording. Legal limit in NL: 10 days. Source: a stricter "
        "guideline." in after
    )
    assert notice_version(after) != notice_version(before)


def test_the_report_names_the_notice_version_in_force_at_each_site(cli):
    add_offices(cli)
    cli("--site", "bru", "policy", "set", "camera", "21d", "--reason", "Brussels DPIA")
    body = json.loads(cli("report", "--format", "json").stdout)
    versions = {code: body["sites"][code]["notice"]["version"] for code in ("ams", "bru", "main")}
    assert versions["ams"] == notice_version(_notice(cli, "ams"))
    assert versions["bru"] == notice_version(_notice(cli, "bru"))
    assert versions["main"] == notice_version(_notice(cli, "main"))
    assert len(set(versions.values())) == 3  # each office's notice names the office
    assert re.fullmatch(r"[0-9a-f]{12}", body["notice"]["version"])  # the organisation's: kept
    md = cli("report").stdout
    for code, version in versions.items():
        assert re.search(rf"\| {code} +\| {version} +\|", md), code
    html = cli("report", "--format", "html").stdout
    assert f'<tr data-site="bru"><td>bru</td><td class="version">{versions["bru"]}</td>' in html
    # Narrowed to one site, the report names that site's notice.
    narrowed = json.loads(cli("--site", "bru", "report", "--format", "json").stdout)
    assert list(narrowed["sites"]) == ["bru"]
    assert narrowed["sites"]["bru"]["notice"]["version"] == versions["bru"]


def _policy_seconds(cli: Cli, site: str) -> dict[str, int]:
    shown = json.loads(cli("--site", site, "policy", "show", "--format", "json").stdout)
    return {p["kind"]: p["seconds"] for p in shown}


def test_the_register_has_an_entry_per_kind_and_site_with_its_retention_and_ceiling(cli):
    single = json.loads(cli("register", "--format", "json").stdout)
    assert "sites" not in single  # one site: the register as before sites
    assert not any({"site", "legal_limit"} & set(e) for e in single["entries"])
    add_offices(cli)
    cli("--site", "bru", "policy", "set", "camera", "21d", "--reason", "Brussels DPIA")
    cli("--site", "bru", "visitor", "sign-in", "Bo Peep")
    me = current_identity().name
    roles = cli.config(f'[roles]\nprivacy = ["{me}"]\nreception = ["ana:ams", "bob"]\n')
    body = json.loads(cli("register", "--format", "json", config=roles).stdout)

    per_site = [k.name for k in kinds.ALL if k.per_site]
    assert [e["kind"] for e in body["entries"]] == [k.name for k in kinds.ALL if not k.per_site]
    assert list(body["sites"]) == ["ams", "bru", "main"]
    for code, section in body["sites"].items():
        assert section["site"]["code"] == code
        assert [e["kind"] for e in section["entries"]] == per_site
        in_force = _policy_seconds(cli, code)
        for entry in section["entries"]:
            assert entry["site"] == code
            assert entry["retention"]["seconds"] == in_force[entry["kind"]], (code, entry["kind"])
        assert section["notice"]["version"] == notice_version(_notice(cli, code))
    ams = {e["kind"]: e for e in body["sites"]["ams"]["entries"]}
    bru = {e["kind"]: e for e in body["sites"]["bru"]["entries"]}
    assert bru["camera"]["retention"]["seconds"] == 21 * 86400
    assert bru["camera"]["policy_from"] == "site"
    assert bru["camera"]["legal_limit"] == {
        "country": "BE",
        "seconds": 31 * 86400,
        "duration": "31d",
        "source": BELGIAN_LAW,
        "cuts_policy_short": False,
    }
    assert ams["camera"]["retention"]["seconds"] == 14 * 86400
    assert ams["camera"]["policy_from"] == "organisation"
    assert ams["camera"]["legal_limit"]["country"] == "NL"
    assert ams["camera"]["legal_limit"]["seconds"] == 28 * 86400
    assert ams["visits"]["legal_limit"] is None  # no ceiling for visits: none named
    assert (bru["visits"]["records"], ams["visits"]["records"]) == (1, 0)
    assert "ana:ams, bob" in ams["visits"]["recipients"][0]
    assert "(role reception: bob;" in bru["visits"]["recipients"][0]

    md = cli("register").stdout
    assert "## Site bru: Brussels (BE, Europe/Brussels)" in md
    assert "### camera at bru (Brussels): camera segments" in md
    assert f"| legal limit | 31d (31 days) in BE: {BELGIAN_LAW} |" in md
    assert f"| legal limit | 28d (28 days) in NL: {DUTCH_GUIDELINE} |" in md
    assert "| retention | 21d (21 days) after the recording |" in md
    assert "## The whole organisation (kinds that belong to no site)" in md

    # Brussels' policy changes: its entry changes, Amsterdam's does not.
    cli("--site", "bru", "policy", "set", "camera", "31d", "--reason", "insurer")
    again = json.loads(cli("register", "--format", "json").stdout)["sites"]
    assert again["bru"]["entries"][per_site.index("camera")]["retention"]["seconds"] == 31 * 86400
    assert again["ams"]["entries"] == body["sites"]["ams"]["entries"]
    narrowed = json.loads(cli("--site", "bru", "register", "--format", "json").stdout)
    assert list(narrowed["sites"]) == ["bru"]


def test_the_register_counts_each_web_account_once_where_it_holds_the_role(cli, db_url):
    add_accounts(db_url, {"ada": ["admin"], "ben": ["reception"]})
    entry = json.loads(cli("register", "--format", "json").stdout)["entries"][0]
    assert entry["kind"] == "visits"  # an admin holds every role, and is one account, not two
    assert (
        "reception staff (role reception: every user: no [roles] section; web accounts: 2)"
        in (entry["recipients"])
    )
    add_offices(cli)  # the same accounts hold the roles at every office: counted once at each
    sites = json.loads(cli("register", "--format", "json").stdout)["sites"]
    for code in ("ams", "bru", "main"):
        assert sites[code]["entries"][0]["recipients"][0] == (
            f"reception staff at {code} (role reception: every user: no [roles] section; "
            "web accounts: 2)"
        )
