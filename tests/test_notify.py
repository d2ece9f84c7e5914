"""Telling hosts that their visitor arrived, against real servers on loopback.

A real mail server (aiosmtpd) that demands STARTTLS before AUTH and AUTH before mail, under a
throwaway CA; a real HTTP receiver that checks the webhook's signature; a mail server that never
answers, with the sign-in's latency measured through the real web server; the daemon retrying
until the mail server is back. What the host is told is the visitor's name, company and time,
and nothing more. Queued notifications and the hosts directory end like any record.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from facility import sites
from facility.notify import deliver
from facility.settings import Settings, load_settings
from facility.store import db
from facility.store.models import Host, HostNotification, Visit
from facility.timefmt import site_text, utc_text
from facility.visitors import hosts
from tests.conftest import Cli
from tests.daemons import make_site
from tests.factories import NOW, add
from tests.receivers import (
    SMTP_PASSWORD,
    SMTP_USER,
    WEBHOOK_SECRET,
    Certificates,
    certificates,
    mail_server,
    silent_server,
    webhook_receiver,
)
from tests.services import free_port
from tests.webserver import PASSWORD, add_accounts, login, running

D = timedelta(days=1)
ADA = ("Ada Lovelace", "Analytical Engines")


@pytest.fixture
def certs(tmp_path: Path) -> Certificates:
    folder = tmp_path / "tls"
    folder.mkdir()
    return certificates(folder)


def _notify(tmp_path: Path, certs: Certificates, port: int, **extra: object) -> dict:
    """A [notify] section for the test's mail server and webhook secret."""
    password = tmp_path / "smtp.password"
    password.write_text(f"{extra.pop('password', SMTP_PASSWORD)}\n")
    secret = tmp_path / "webhook.secret"
    secret.write_text(f"{extra.pop('secret', WEBHOOK_SECRET)}\n")
    section = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_from": "reception@example.org",
        "smtp_ca_file": str(certs.ca),
        "smtp_user": SMTP_USER,
        "smtp_password_file": str(password),
        "webhook_secret_file": str(secret),
        "timeout": "3s",
        "retry_interval": "1s",
    }
    return {k: v for k, v in (section | extra).items() if v is not None}


def _toml(section: dict) -> str:
    lines = ["[notify]"]
    for key, value in section.items():
        lines.append(
            f"{key} = {value}" if isinstance(value, int) else f"{key} = {json.dumps(value)}"
        )
    return "\n".join(lines) + "\n"


def _send(cli, config: Path, now: datetime | None = None) -> deliver.Pass:
    """One pass over the outbox at `now` (the wall clock), as the daemon's job and the web's
    sender run it."""
    settings = load_settings(config, cli.url)
    engine = db.make_engine(cli.url)
    try:
        return deliver.send_due(
            engine,
            settings.notify,
            now=now or datetime.now(UTC),
            site_zone=settings.site_zone,
            clock=lambda: datetime.now(UTC),
        )
    finally:
        engine.dispose()


def _rows(url: str) -> list[HostNotification]:
    engine = db.make_engine(url)
    try:
        with db.session_scope(engine) as session:
            found = session.execute(select(HostNotification)).scalars().all()
            session.expunge_all()
            return list(found)
    finally:
        engine.dispose()


def _signed_in(url: str, name: str) -> datetime:
    engine = db.make_engine(url)
    try:
        with db.session_scope(engine) as session:
            visit = session.execute(select(Visit).where(Visit.name == name)).scalar_one()
            return visit.signed_in_at
    finally:
        engine.dispose()


# --- e-mail --------------------------------------------------------------------------------------


def test_the_host_is_emailed_over_starttls_after_logging_in(cli, tmp_path, certs):
    with mail_server(certs) as server:
        config = cli.config(_toml(_notify(tmp_path, certs, server.port)))
        added = cli("host", "add", "Bob Smith", "--email", "bob@example.org", config=config)
        assert "host Bob Smith added: told by e-mail" in added.stdout
        out = cli(
            "visitor", "sign-in", ADA[0], "--company", ADA[1], "--host", "bob smith",
            config=config,
        ).stdout  # fmt: skip
        assert "Bob Smith will be told by e-mail" in out
        assert len(_rows(cli.url)) == 1  # queued with the sign-in; nothing was sent yet
        done = _send(cli, config)
        (mail,) = server.wait(1)
    assert (done.sent, done.failed) == (1, 0)
    assert mail.tls and mail.login == SMTP_USER and server.logins == [(SMTP_USER, True)]
    assert mail.sender == "reception@example.org" and mail.recipients == ["bob@example.org"]
    message = mail.message
    assert message["Subject"] == "Your visitor has arrived: Ada Lovelace (Analytical Engines)"
    when = site_text(_signed_in(cli.url, ADA[0]), Settings().site_zone)
    # Name, company and time: nothing more (no host, no badge, no other visitor).
    assert (
        message.get_content().replace("\r\n", "\n")
        == f"Ada Lovelace (Analytical Engines) signed in at reception at {when}.\n"
    )
    assert _rows(cli.url) == []  # delivered: the row and the name in it are gone


def test_a_refused_login_or_an_unknown_certificate_is_retried_and_shown_by_doctor(
    cli, tmp_path, certs
):
    with mail_server(certs) as server:
        wrong = _notify(tmp_path, certs, server.port, password="not the password")
        config = cli.config(_toml(wrong))
        cli("host", "add", "Bob Smith", "--email", "bob@example.org", config=config)
        cli("visitor", "sign-in", ADA[0], "--host", "Bob Smith", config=config)
        before = datetime.now(UTC)
        done = _send(cli, config)
        assert done.failed == 1 and server.received == []
        tried = list(server.logins)  # smtplib tries each mechanism the server offers
        assert tried and all(user == SMTP_USER and not ok for user, ok in tried)
        (row,) = _rows(cli.url)
        assert row.attempts == 1 and row.claimed_until is None
        assert row.last_error == (
            f"mail server 127.0.0.1:{server.port} refused the login of notify.smtp_user (535)"
        )
        assert before + timedelta(seconds=1) <= row.next_attempt_at <= datetime.now(UTC) + D
        doctor = cli("doctor", config=config, code=0).stdout
        assert re.search(r"WARN +notifications +1 of 1 .* refused the login", doctor), doctor
        assert "Ada" not in doctor  # the reason names the server, never the person
        # Not yet due: a pass just before the retry sends nothing (the passes' clocks are given:
        # on a loaded machine the wall clock could reach the retry between two lines).
        early = _send(cli, config, now=row.next_attempt_at - timedelta(milliseconds=1))
        assert (early.sent, early.failed) == (0, 0)
        # The system's CAs do not know the test CA: the certificate is refused, before any login.
        config.write_text(_toml(_notify(tmp_path, certs, server.port, smtp_ca_file=None)))
        again = _send(cli, config, now=row.next_attempt_at)
        assert again.failed == 1 and "its TLS certificate was refused" in again.reasons[0]
        assert server.logins == tried  # no password went over an untrusted line
        # Right password and CA: the retry goes through.
        config.write_text(_toml(_notify(tmp_path, certs, server.port)))
        (row,) = _rows(cli.url)
        assert _send(cli, config, now=row.next_attempt_at).sent == 1
        server.wait(1)
    assert _rows(cli.url) == []


# --- webhooks ------------------------------------------------------------------------------------


def test_the_webhook_is_signed_and_the_receiver_checks_it(cli, tmp_path, certs):
    with webhook_receiver() as receiver:
        config = cli.config(_toml(_notify(tmp_path, certs, free_port())))
        cli("host", "add", "Bob Smith", "--webhook", receiver.url, config=config)
        cli("visitor", "sign-in", ADA[0], "--company", ADA[1], "--host", "Bob Smith", config=config)
        (queued,) = _rows(cli.url)
        assert _send(cli, config).sent == 1
    (delivery,) = receiver.deliveries
    assert delivery.valid, delivery.headers  # checked by the receiver's own HMAC
    assert delivery.headers["webhook-id"] == queued.message_id
    assert delivery.headers["content-type"] == "application/json"
    # ... and by the Standard Webhooks project's own library, as a receiver would.
    signed_in = utc_text(_signed_in(cli.url, ADA[0]))
    expected = {
        "type": "visitor.signed_in",
        "timestamp": signed_in,
        "data": {"name": ADA[0], "company": ADA[1], "signed_in_at": signed_in},
    }
    assert Webhook(WEBHOOK_SECRET).verify(delivery.body, delivery.headers) == expected
    assert delivery.document() == expected


def test_a_receiver_with_another_secret_refuses_and_the_token_in_the_url_stays_out_of_logs(
    cli, tmp_path, certs
):
    other = "whsec_" + "QW5vdGhlciBzZWNyZXQgb2YgMzIgYnl0ZXMgbG9uZyEh"
    with webhook_receiver(secret=other) as receiver:
        config = cli.config(_toml(_notify(tmp_path, certs, free_port())))
        cli("host", "add", "Bob Smith", "--webhook", receiver.url, config=config)
        cli("visitor", "sign-in", ADA[0], "--host", "Bob Smith", config=config)
        done = _send(cli, config)
    assert done.failed == 1 and not receiver.deliveries[0].valid
    port = receiver.url.split(":")[2].split("/")[0]
    assert done.reasons == [f"webhook http://127.0.0.1:{port} answered HTTP 401"]
    assert "t0p" not in done.reasons[0]


def test_a_bad_webhook_secret_file_fails_doctor_and_delivery(cli, tmp_path, certs):
    with webhook_receiver() as receiver:
        config = cli.config(_toml(_notify(tmp_path, certs, free_port(), secret="hunter2")))
        cli("host", "add", "Bob Smith", "--webhook", receiver.url, config=config)
        cli("visitor", "sign-in", ADA[0], "--host", "Bob Smith", config=config)
        done = _send(cli, config)
    assert done.failed == 1 and receiver.deliveries == []
    assert "does not hold a secret" in done.reasons[0]
    doctor = cli("doctor", config=config, code=1).stdout
    assert re.search(r"FAIL +notifications +notify.webhook_secret_file does not hold", doctor)


# --- never in the sign-in's way ------------------------------------------------------------------


@pytest.fixture
def web_db(sqlite_template, tmp_path) -> str:
    path = tmp_path / "web.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    add_accounts(url, {"rita": ["reception"]})
    engine = db.make_engine(url)
    with db.session_scope(engine) as session:
        hosts.add(session, now=datetime.now(UTC), name="Bob Smith", email="bob@example.org")
    engine.dispose()
    return url


def _environment(section: dict) -> dict[str, str]:
    return {f"FACILITY_NOTIFY__{k.upper()}": str(v) for k, v in section.items()}


def _timed_sign_ins(client, names: list[str], host: str) -> list[float]:
    seconds = []
    for name in names:
        started = time.perf_counter()
        response = client.post("/api/visits", json={"name": name, "host": host})
        seconds.append(time.perf_counter() - started)
        assert response.status_code == 201, response.text
    return seconds


def test_a_mail_server_that_never_answers_does_not_slow_sign_in(web_db, tmp_path, certs):
    """Measured through the real web server: sign-ins whose host is e-mailed, with the mail
    server accepting connections and never answering, against sign-ins that tell nobody."""
    with silent_server() as port:
        section = _notify(tmp_path, certs, port, timeout="10s", retry_interval="30s")
        with running(tmp_path, web_db, env=_environment(section)) as server:
            client = server.client()
            assert login(client, "rita").status_code == 200
            _timed_sign_ins(client, ["Warm Up"], "nobody listed")
            quiet = _timed_sign_ins(client, [f"Quiet {i}" for i in range(10)], "nobody listed")
            told = _timed_sign_ins(client, [f"Visitor {i}" for i in range(10)], "Bob Smith")
            stuck = [r for r in _rows(web_db) if r.claimed_until is not None]
    # The CLI only queues: its sign-in with the same mail server down.
    cli = Cli(web_db, tmp_path)
    config = cli.config(_toml(section))
    cli_seconds = []
    for i in range(5):
        started = time.perf_counter()
        cli("visitor", "sign-in", f"Desk {i}", "--host", "Bob Smith", config=config)
        cli_seconds.append(time.perf_counter() - started)
    print(
        "\nsign-in latency, mail server silent (timeout 10 s), web API: "
        f"median {statistics.median(told) * 1000:.1f} ms, max {max(told) * 1000:.1f} ms; "
        f"telling nobody: median {statistics.median(quiet) * 1000:.1f} ms, "
        f"max {max(quiet) * 1000:.1f} ms; CLI (in-process): median "
        f"{statistics.median(cli_seconds) * 1000:.1f} ms"
    )
    assert stuck, "the background sender was not even trying the silent server"
    assert max(told) < 1.0, told  # the mail server's timeout is 10 s
    assert statistics.median(told) < statistics.median(quiet) + 0.2
    assert len(_rows(web_db)) == 15  # every notification waits for a retry


def test_the_web_server_tells_the_host_at_once_without_the_daemon(web_db, tmp_path, certs):
    with mail_server(certs) as mail:
        section = _notify(tmp_path, certs, mail.port)
        with running(tmp_path, web_db, env=_environment(section)) as server:
            client = server.client()
            assert login(client, "rita").status_code == 200
            started = time.monotonic()
            answer = client.post("/api/visits", json={"name": ADA[0], "host": "bob smith"})
            assert answer.status_code == 201
            (mail_got,) = mail.wait(1, timeout=15)
            took = time.monotonic() - started
    assert mail_got.tls and mail_got.recipients == ["bob@example.org"]
    assert "Ada Lovelace" in mail_got.message["Subject"] and took < 15
    assert _rows(web_db) == []


def test_the_web_server_tells_each_host_the_time_of_their_own_office(web_db, tmp_path, certs):
    engine = db.make_engine(web_db)
    with db.session_scope(engine) as session:
        now = datetime.now(UTC)
        london = sites.add(
            session,
            code="lon",
            name="London",
            timezone="Europe/London",
            country="GB",
            now=now,
            actor="tests",
        )
        hosts.add(session, now=now, name="Bob Smith", email="bob@example.org", site_id=london.id)
    engine.dispose()
    with mail_server(certs) as mail:
        section = _notify(tmp_path, certs, mail.port)
        with running(tmp_path, web_db, env=_environment(section)) as server:
            client = server.client(auth=("rita", PASSWORD))  # an API client, at London's desk
            answer = client.post(
                "/api/visits",
                json={"name": ADA[0], "host": "bob smith"},
                headers={"Facility-Site": "lon"},
            )
            assert answer.status_code == 201, answer.text
            (mail_got,) = mail.wait(1, timeout=15)
    signed_in = datetime.fromisoformat(answer.json()["signed_in_at"].replace("Z", "+00:00"))
    body = mail_got.message.get_content()
    assert site_text(signed_in, ZoneInfo("Europe/London")) in body
    assert site_text(signed_in, ZoneInfo("Europe/Amsterdam")) not in body  # the main site's


# --- the daemon retries --------------------------------------------------------------------------


def test_the_daemon_retries_until_the_mail_server_is_back(tmp_path, certs, daemons):
    port = free_port()  # nothing listens yet: connection refused
    site = make_site(tmp_path, notify=_notify(tmp_path, certs, port, timeout="2s"))
    site.run("host", "add", "Bob Smith", "--email", "bob@example.org")
    site.run("visitor", "sign-in", ADA[0], "--host", "Bob Smith")
    daemon = site.daemon().start()
    daemons.append(daemon)
    daemon.wait_for_line("not delivered", timeout=30)
    time.sleep(4)  # several more attempts, doubling from notify.retry_interval
    (row,) = _rows(site.url)
    assert row.attempts >= 2 and "refused the connection" in (row.last_error or "")
    doctor = site.run("doctor", code=1).stdout  # nothing listens: the mail server check warns
    assert re.search(r"WARN +mail server +127.0.0.1:\d+ unreachable", doctor), doctor
    assert re.search(r"WARN +notifications +1 of 1 waiting", doctor), doctor
    # The job's own line may read "last success": a pass that found nothing due yet (the row waits
    # out its doubled pause) succeeded. The two lines above are what tell the outage.
    with mail_server(certs, port=port) as server:
        (mail,) = server.wait(1, timeout=60)
        daemon.wait_for_line("delivered again", timeout=30)
    assert mail.tls and mail.login == SMTP_USER
    failures = daemon.matching("not delivered")
    assert len(failures) == 1, failures  # an outage is logged once, not at every retry
    assert "Ada" not in daemon.output
    assert _rows(site.url) == []
    daemon.stop()


# --- what is queued, and how it ends -------------------------------------------------------------


def test_a_sign_in_recorded_long_after_the_fact_tells_nobody(cli, tmp_path, certs):
    config = cli.config(_toml(_notify(tmp_path, certs, free_port())))
    cli("host", "add", "Bob Smith", "--email", "bob@example.org", config=config)
    earlier = utc_text(datetime.now(UTC) - timedelta(hours=2))
    cli("visitor", "sign-in", ADA[0], "--host", "Bob Smith", "--at", earlier, config=config)
    assert _rows(cli.url) == []


def test_removing_a_host_drops_what_waits_for_them(cli, tmp_path, certs):
    config = cli.config(_toml(_notify(tmp_path, certs, free_port())))
    cli(
        "host",
        "add",
        "Bob Smith",
        "--email",
        "bob@example.org",
        "--webhook",
        "https://x.example/h",
        config=config,
    )
    cli("visitor", "sign-in", ADA[0], "--host", "Bob Smith", config=config)
    assert sorted(r.channel for r in _rows(cli.url)) == ["email", "webhook"]
    cli("host", "remove", "bob smith", config=config)
    assert _rows(cli.url) == []
    refused = cli("host", "remove", "Bob Smith", config=config, code=2)
    assert "there is no host 'Bob Smith'" in refused.stderr


def test_undelivered_notifications_and_unused_hosts_are_purged_on_their_policy(
    cli, engine, fixed_clock
):
    bob, eve = (
        Host(name=n, name_key=n.lower(), email="x@example.org", added_at=at, retain_from=at)
        for n, at in (("Bob Smith", NOW - 364 * D), ("Eve Jones", NOW - 366 * D))
    )
    add(engine, bob, eve)
    assert bob.id is not None

    def queued(at: datetime, message_id: str) -> HostNotification:
        return HostNotification(
            message_id=message_id, host_id=bob.id, channel="email", visitor=ADA[0],
            visitor_key="ada lovelace", signed_in_at=at, next_attempt_at=at, retain_from=at,
        )  # fmt: skip

    hour = timedelta(hours=1)
    add(engine, queued(NOW - 25 * hour, "old"), queued(NOW - 23 * hour, "new"))
    done = json.loads(cli("purge", "--format", "json").stdout)
    assert done["kinds"]["notifications"]["deleted"] == 1
    assert done["kinds"]["hosts"]["deleted"] == 1
    with db.session_scope(engine) as session:
        assert session.execute(select(HostNotification.message_id)).scalars().all() == ["new"]
        assert session.execute(select(Host.name)).scalars().all() == ["Bob Smith"]
    report = json.loads(cli("report", "--format", "json").stdout)
    assert report["kinds"]["notifications"]["count"] == 1
    assert report["kinds"]["hosts"]["count"] == 1


def test_erasing_a_host_or_a_visitor_reaches_the_notifications_naming_them(cli, tmp_path, certs):
    config = cli.config(_toml(_notify(tmp_path, certs, free_port())))
    cli("host", "add", "Bob Smith", "--email", "bob@example.org", config=config)
    cli("visitor", "sign-in", ADA[0], "--host", "Bob Smith", config=config)
    cli("visitor", "sign-in", "Grace Hopper", "--host", "Bob Smith", config=config)
    exported = json.loads(cli("subject", "export", "--name", "bob smith").stdout)
    assert [h["email"] for h in exported["records"]["hosts"]] == ["bob@example.org"]
    assert len(exported["records"]["notifications"]) == 2
    ada = json.loads(cli("subject", "export", "--name", "Ada Lovelace").stdout)
    assert [n["visitor"] for n in ada["records"]["notifications"]] == [ADA[0]]
    out = cli("subject", "erase", "--name", "Ada Lovelace", "--reason", "DSR-9", "--yes", code=1)
    assert "notifications 1" in out.stdout  # Ada's visit is still open: it stays (exit 1)
    assert [r.visitor for r in _rows(cli.url)] == ["Grace Hopper"]
    out = cli("subject", "erase", "--name", "Bob Smith", "--reason", "DSR-10", "--yes")
    assert "hosts 1" in out.stdout and "notifications 1" in out.stdout
    assert _rows(cli.url) == []


def test_notify_settings_are_checked_at_start(cli):
    config = cli.config('[notify]\nsmtp_host = "mail.example.org"\n')
    refused = cli("doctor", config=config, code=2)
    assert "notify" in refused.stderr and "smtp_from: required" in refused.stderr
