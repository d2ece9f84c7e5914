"""The privacy notice (article 13) and the register of processing (article 30), made from the live
policies and `[privacy]` (issue 17): their numbers are the policy table's, a policy change changes
them and the notice's version, the report names the version in force, every word of the notice has
its Dutch, and the web's sign-in terminal shows it to the visitor. Both engines.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from facility.accounts.access import current_identity
from facility.privacy import notice, wording
from facility.settings import Limits, Privacy
from facility.store import db, kinds
from facility.timeutil import zone
from tests.factories import NOW, notice_version
from tests.webapp import Clock, add_user, login, make_app

pytestmark = pytest.mark.usefixtures("fixed_clock", "fast_hashes")

ME = current_identity().name
PRIVACY = """
[privacy]
controller = "ACME B.V., Main Street 1, Amsterdam"
contact = "privacy@acme.example"
dpo = "dpo@acme.example"
authority = "the Autoriteit Persoonsgegevens"
[privacy.legal_basis]
camera = "legitimate interests: protecting the warehouse stock"
"""


def _seconds(cli) -> dict[str, int]:
    return {
        p["kind"]: p["seconds"]
        for p in json.loads(cli("policy", "show", "--format", "json").stdout)
    }


def test_the_notice_tells_every_kind_with_the_policy_in_force(cli):
    config = cli.config(PRIVACY)
    text = cli("notice", config=config).stdout
    assert "ACME B.V., Main Street 1, Amsterdam is responsible for this data" in text
    assert "Questions and requests: privacy@acme.example." in text
    assert "Data protection officer: dpo@acme.example." in text
    assert "Complain to the Autoriteit Persoonsgegevens." in text
    flat = " ".join(text.split())
    assert "Legal basis: legitimate interests: protecting the warehouse stock" in flat
    for kind in kinds.ALL:
        heading = kind.label[:1].upper() + kind.label[1:]
        assert f"  {heading} ({kind.people})" in text, kind.name
        days = _seconds(cli)[kind.name] // 86400
        unit = "day" if days == 1 else "days"
        assert f"How long: {days} {unit} {kind.clock_text}." in flat, kind.name
    assert "Left open, it is closed automatically after 1 day." in flat  # limits.max_visit

    # A policy change changes the notice, its version, and the version the report names.
    before = notice_version(text)
    cli("policy", "set", "visits", "5d", "--reason", "DPIA", config=config)
    after = cli("notice", config=config).stdout
    assert "How long: 5 days after sign-out." in " ".join(after.split())
    assert notice_version(after) != before
    report = json.loads(cli("report", "--format", "json", config=config).stdout)
    assert report["notice"]["version"] == notice_version(after)
    assert (
        f"Privacy notice in force: version {notice_version(after)}"
        in cli("report", config=config).stdout
    )
    # A shortening still waiting is told with the day it takes effect.
    cli("policy", "set", "camera", "7d", "--reason", "DPIA", "--yes", config=config)
    waiting = " ".join(cli("notice", config=config).stdout.split())
    assert "How long: 14 days after the recording. From 2026-07-02 14:00 CEST: 7 days" in waiting


def test_the_notice_in_dutch_has_every_word_translated(engine):
    with db.session_scope(engine) as session:
        made = notice.build(
            session, Privacy(), Limits(), now=NOW, site_zone=zone("UTC"), lang="nl", strict=True
        )
        english = notice.build(session, Privacy(), Limits(), now=NOW, site_zone=zone("UTC"))
    text = notice.render(made, "txt")  # strict: an untranslated sentence raises
    assert "Uw rechten" in text and "Hoe lang: 3 dagen na het afmelden." in " ".join(text.split())
    html = notice.render(made, "html")
    assert '<strong class="duration">3 dagen</strong> na het afmelden' in html
    assert made.version == english.version  # one notice, two languages
    for kind in kinds.ALL:  # a new kind without its Dutch fails here
        for text in (kind.label, kind.purpose, kind.data, kind.people, kind.clock_text):
            wording.say(text, "nl", strict=True)
        wording.say(kind.legal_basis, "nl", strict=True)


def test_a_setting_naming_no_kind_is_refused(cli):
    config = cli.config('[privacy.legal_basis]\ncctv = "consent"\n')
    refused = cli("notice", config=config, code=2)
    assert "privacy.legal_basis" in refused.stderr and "'cctv'" not in refused.stderr
    assert "cctv is not a kind" in refused.stderr


def test_the_register_has_one_entry_per_kind_with_the_live_policy(cli):
    body = json.loads(cli("register", "--format", "json", config=cli.config(PRIVACY)).stdout)
    seconds = _seconds(cli)
    assert [e["kind"] for e in body["entries"]] == list(kinds.NAMES)
    for entry in body["entries"]:
        assert entry["retention"]["seconds"] == seconds[entry["kind"]], entry["kind"]
        assert entry["purpose"] and entry["data_subjects"] and entry["personal_data"]
        assert entry["recipients"], entry["kind"]
    by_kind = {e["kind"]: e for e in body["entries"]}
    assert (
        by_kind["camera"]["legal_basis"] == "legitimate interests: protecting the warehouse stock"
    )
    assert by_kind["requests"]["legal_basis"].startswith("legal obligation")
    assert by_kind["visits"]["holds"]["may_keep_longer"] is True
    assert by_kind["requests"]["holds"]["may_keep_longer"] is False
    assert by_kind["visits"]["retention"]["open_limit_seconds"] == 86400
    assert body["controller"] == "ACME B.V., Main Street 1, Amsterdam"
    measures = " ".join(body["measures"])
    assert "no [roles] section, so every user holds every role" in measures
    assert "MQTT: no TLS (mqtt.tls_ca unset)" in measures
    assert "secure_delete" in measures or "PostgreSQL: deleted rows stay" in measures

    cli("policy", "set", "visits", "2d", "--reason", "DPIA", "--yes")
    changed = json.loads(cli("register", "--format", "json").stdout)["entries"][0]
    assert changed["retention"]["seconds"] == 3 * 86400  # still in force: the shortening waits
    assert changed["retention"]["pending"]["seconds"] == 2 * 86400
    md = cli("register").stdout
    assert "| retention | 3d (3 days) after sign-out |" in md
    assert "| shortening waiting | shortened to 2d (2 days) from 2026-07-02 14:00 CEST" in md
    tls = cli.config(f'[mqtt]\ntls_ca = "/etc/facility/ca.pem"\n[roles]\nprivacy = ["{ME}"]\n')
    measures = " ".join(
        json.loads(cli("register", "--format", "json", config=tls).stdout)["measures"]
    )
    assert "MQTT: TLS to the broker" in measures and "given by the [roles] section" in measures


def test_the_sign_in_terminal_shows_the_notice_from_the_live_policy(cli, engine, db_url):
    add_user(engine, "rita", "reception")
    app = make_app(db_url, engine, Clock(NOW))
    visitor = TestClient(app, base_url="https://testserver")
    public = visitor.get("/notice")  # no login: the notice is for everyone
    assert (
        public.status_code == 200
        and "default-src 'none'" in public.headers["content-security-policy"]
    )
    assert '<strong class="duration">3 days</strong> after sign-out' in public.text
    assert 'lang="nl"' in visitor.get("/notice?lang=nl").text
    assert 'lang="en"' in visitor.get("/notice?lang=xx").text

    login(visitor, "rita")
    page = visitor.get("/reception").text
    assert "We keep visits 3 days after sign-out." in page
    assert "We keep camera segments 14 days after the recording." in page
    assert "wifi leases" not in page  # not what signing in records
    assert 'href="/notice"' in page and 'href="/notice?lang=nl"' in page
    cli("policy", "set", "visits", "5d", "--reason", "insurer")
    assert "We keep visits 5 days after sign-out." in visitor.get("/reception").text
