"""The on-site snapshot: written atomically, and still there, listing the people, when the database
is gone (removed after the daemon stopped, or dropped while it runs)."""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from facility.store import db
from scheduler.snapshot import write_atomically, write_snapshot
from tests.conftest import PG_ADMIN_URL, Cli, fresh_database
from tests.daemons import Daemon, toml_text


def document(version: int) -> str:
    """A complete HTML page whose size varies a lot from version to version."""
    rows = "".join(f"<tr><td>person {version}-{i}</td></tr>\n" for i in range(version % 7 * 4000))
    return f"<!doctype html>\n<!-- v{version} rows {version % 7 * 4000} -->\n{rows}</html>\n"


def test_readers_only_ever_see_whole_documents(tmp_path):
    (tmp_path / "snapshots").mkdir()
    path = tmp_path / "snapshots" / "onsite.html"
    write_atomically(path, document(0))
    done = threading.Event()
    seen: list[str] = []
    bad: list[str] = []

    def read() -> None:
        while not done.is_set():
            content = path.read_text(encoding="utf-8")
            head = re.match(r"<!doctype html>\n<!-- v(\d+) rows (\d+) -->\n", content)
            whole = head and content.endswith("</html>\n")
            if not whole or content.count("<tr>") != int(head.group(2)):
                bad.append(content[:80] + " ... " + content[-40:])
            seen.append(head.group(1) if head else "?")

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        for version in range(1, 300):
            write_atomically(path, document(version))
    finally:
        done.set()
        for reader in readers:
            reader.join()
    assert not bad, f"{len(bad)} partial reads, e.g. {bad[0]!r}"
    assert len(set(seen)) > 10, "the readers should have seen many versions"
    assert [p.name for p in path.parent.iterdir()] == ["onsite.html"], "temporary files left behind"
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    (tmp_path / "snapshots").mkdir()
    path = tmp_path / "snapshots" / "onsite.csv"
    write_atomically(path, "name\nAda Lovelace\n")
    with pytest.raises(UnicodeEncodeError):
        write_atomically(path, "name\n\udc00 cannot be encoded\n")
    assert path.read_text() == "name\nAda Lovelace\n"
    assert [p.name for p in path.parent.iterdir()] == ["onsite.csv"]


def test_write_snapshot_lists_who_is_on_site(cli, engine, tmp_path):
    cli("visitor", "sign-in", "Ada Lovelace", "--company", "ACME", "--badge", "B17")
    cli("visitor", "sign-in", "Grace Hopper")
    cli("visitor", "sign-out", "--name", "Grace Hopper")
    folder = tmp_path / "snapshots"
    assert write_snapshot(engine, folder, "UTC", now=datetime.now(UTC)) == {"on_site": 1}
    html = (folder / "onsite.html").read_text()
    assert "Ada Lovelace" in html and "ACME" in html and "Grace Hopper" not in html
    csv = (folder / "onsite.csv").read_text().splitlines()
    assert len(csv) == 2 and "Ada Lovelace" in csv[1] and "B17" in csv[1]


def test_the_evacuation_list_never_waits_for_a_writer(request, tmp_path):
    # A long write (a purge batch, an import, a migration) holds SQLite's one write lock; the list
    # of who is on site is read beside it at once, by the command and by the snapshot job.
    databases = fresh_database("sqlite", request, tmp_path)
    url = next(databases)
    cli = Cli(url, tmp_path)
    cli("visitor", "sign-in", "Ada Lovelace", "--badge", "B17")
    writer = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # the write lock, held until the end of the test
    try:
        started = time.monotonic()
        assert "Ada Lovelace" in cli("onsite").stdout
        engine = db.make_engine(url)
        listed = write_snapshot(engine, tmp_path / "snap", "UTC", now=datetime.now(UTC))
        engine.dispose()
        assert listed == {"on_site": 1} and time.monotonic() - started < 10
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def _config(tmp_path: Path, url: str) -> Path:
    config = tmp_path / "facility.toml"
    settings = {
        "database_url": url,
        "timezone": "UTC",
        "mqtt": {"port": 1},  # no broker: the snapshot needs none
        "snapshot": {"interval": "1s", "dir": str(tmp_path / "evacuation")},
    }
    config.write_text(toml_text(settings))
    return config


def _listed(path: Path, *names: str) -> bool:
    try:
        content = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    return all(name in content for name in names)


def test_the_snapshot_outlives_a_removed_sqlite_database(request, tmp_path, isolated_env):
    url = next(fresh_database("sqlite", request, tmp_path))
    config = _config(tmp_path, url)
    cli = Cli(url, tmp_path)
    for name in ("Ada Lovelace", "Alan Turing"):
        cli("visitor", "sign-in", name, config=config)
    daemon = Daemon(config, isolated_env).start()
    try:
        folder = tmp_path / "evacuation"
        html, csv = folder / "onsite.html", folder / "onsite.csv"
        daemon.wait_for_line(lambda line: _listed(html, "Ada Lovelace", "Alan Turing"), 10)
        code, _ = daemon.stop()
        assert code == 0, daemon.output
    finally:
        daemon.kill()
    database = Path(url.removeprefix("sqlite:///"))
    for leftover in database.parent.glob(database.name + "*"):
        leftover.unlink()
    assert _listed(html, "Ada Lovelace", "Alan Turing", "2 people")
    assert _listed(csv, "Ada Lovelace", "Alan Turing")


def test_the_snapshot_outlives_a_postgresql_database_dropped_while_the_daemon_runs(
    request, tmp_path, isolated_env
):
    databases = fresh_database("postgresql", request, tmp_path)
    url = next(databases)
    config = _config(tmp_path, url)
    Cli(url, tmp_path)("visitor", "sign-in", "Ada Lovelace", config=config)
    daemon = Daemon(config, isolated_env).start()
    html = tmp_path / "evacuation" / "onsite.html"
    try:
        daemon.wait_for_line(lambda line: _listed(html, "Ada Lovelace"), 10)
        admin = db.make_engine(PG_ADMIN_URL).execution_options(isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            name = url.rsplit("/", 1)[1]
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
        failed = daemon.wait_for_line("job snapshot failed", 10)
        assert name in failed
        time.sleep(2.5)  # two or three more snapshot runs, failing as well
        assert _listed(html, "Ada Lovelace", "1 person")
        assert _listed(html.with_suffix(".csv"), "Ada Lovelace")
        code, _ = daemon.stop()
        assert code == 0, daemon.output
        # One line per failing job, not one a second: they failed at every run meanwhile.
        assert len(daemon.matching("job snapshot failed")) == 1, daemon.output
    finally:
        daemon.kill()
        next(databases, None)


def test_temporaries_a_killed_writer_left_are_removed_once_stale(engine, tmp_path):
    folder = tmp_path / "snapshots"
    folder.mkdir()
    now = datetime.now(UTC)
    stale, live = folder / ".onsite.html.dead1234", folder / ".onsite.csv.live5678"
    for leftover in (stale, live):
        leftover.write_text("name\nAda Lovelace\n")
    old = (now - timedelta(hours=1)).timestamp()
    os.utime(stale, (old, old))
    write_snapshot(engine, folder, "UTC", now=now)
    assert sorted(p.name for p in folder.iterdir()) == [live.name, "onsite.csv", "onsite.html"]
