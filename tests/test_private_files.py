"""Files that name people are private (DESIGN invariant 14, issue 13.6), checked with os.stat.

`facility init` makes home 0700 and the database with its -wal and -shm 0600, under the usual
umask 022; every --output file and the on-site snapshot is 0600 whatever the umask or the mode of
the file it replaces; a symlink planted at an output path is refused and its target untouched; a
wrong path is one line and exit 2.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from facility.errors import InputError
from facility.store import db
from scheduler.snapshot import write_snapshot
from tests.conftest import Cli


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def umask():
    """Run under a given umask (the usual 022 unless a test sets another), restored after."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


def test_init_makes_home_and_database_files_private(tmp_path, isolated_env, umask):
    cli = Cli(None, tmp_path)  # the default database, in FACILITY_HOME
    cli("init")
    path = isolated_env / "facility.db"
    assert mode(isolated_env) == 0o700
    assert mode(path) == 0o600
    with sqlite3.connect(path) as conn:  # a writer keeps the WAL and the shared memory open
        conn.execute("INSERT INTO job_runs (job) VALUES ('x')")
        assert mode(path.with_name("facility.db-wal")) == 0o600
        assert mode(path.with_name("facility.db-shm")) == 0o600
    assert mode(isolated_env / "audit.key") == 0o600


def test_init_tightens_a_home_and_database_an_older_version_left_readable(tmp_path, umask):
    home = tmp_path / "old"
    home.mkdir(mode=0o755)
    path = home / "facility.db"
    sqlite3.connect(path).close()
    os.chmod(path, 0o644)
    url = f"sqlite:///{path}"
    result = Cli(url, tmp_path)("init")
    assert "made private" in result.stdout
    assert mode(path) == 0o600
    engine = db.make_engine(url)
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
        assert mode(path.with_name("facility.db-wal")) == 0o600
    engine.dispose()


def test_a_home_shared_with_its_group_gives_the_group_read_and_others_nothing(tmp_path, umask):
    home = tmp_path / "shared"
    home.mkdir()
    os.chmod(home, 0o750)  # as a unit's StateDirectoryMode=0750 would
    Cli(f"sqlite:///{home / 'facility.db'}", tmp_path)("init")
    assert mode(home / "facility.db") == 0o640


def _outputs(tmp_path: Path) -> dict[str, list[str]]:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return {
        "onsite.csv": ["onsite", "--format", "csv", "--output"],
        "onsite.html": ["onsite", "--format", "html", "--output"],
        "report.md": ["report", "--output"],
        "export.json": ["subject", "export", "--name", "Ada Lovelace", "--output"],
        "blocklist.conf": ["wifi", "export-blocklist", "--format", "dnsmasq", "--output"],
    }


def test_every_output_file_is_0600_even_replacing_a_0644_file(cli, tmp_path, umask):
    cli("visitor", "sign-in", "Ada Lovelace")
    umask(0)
    for name, args in _outputs(tmp_path).items():
        target = tmp_path / "out" / name
        target.write_text("old")
        os.chmod(target, 0o644)
        cli(*args, str(target))
        assert mode(target) == 0o600, name
        assert target.read_text() != "old"
        fresh = tmp_path / "out" / f"new-{name}"
        cli(*args, str(fresh))
        assert mode(fresh) == 0o600, name
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")) == []


def test_a_symlink_at_an_output_path_is_refused_and_its_target_untouched(cli, tmp_path):
    cli("visitor", "sign-in", "Ada Lovelace")
    victim = tmp_path / "victim"
    victim.write_text("precious")
    os.chmod(victim, 0o644)
    for name, args in _outputs(tmp_path).items():
        link = tmp_path / "out" / name
        link.symlink_to(victim)
        result = cli(*args, str(link), code=2)
        assert "symbolic link" in result.stderr and len(result.stderr.splitlines()) == 1, name
        assert link.is_symlink() and victim.read_text() == "precious", name
        assert mode(victim) == 0o644


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("missing/dir/x.html", "does not exist"),
        (".", "is a directory"),
        ("file.txt/x.html", "is not a directory"),
    ],
)
def test_a_wrong_output_path_is_one_line_and_exit_2(cli, tmp_path, where, message):
    (tmp_path / "file.txt").write_text("")
    for args in _outputs(tmp_path).values():
        target = str(tmp_path / where) if where != "." else str(tmp_path)
        result = cli(*args, target, code=2)
        assert message in result.stderr and len(result.stderr.splitlines()) == 1, args


def test_the_snapshot_is_private_and_never_written_through_a_symlink(engine, tmp_path, umask):
    from tests.conftest import T0

    umask(0)
    folder = tmp_path / "snapshots"
    write_snapshot(engine, folder, "Europe/Amsterdam", now=T0)
    assert mode(folder) == 0o700
    assert mode(folder / "onsite.csv") == mode(folder / "onsite.html") == 0o600
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (folder / "onsite.html").unlink()
    (folder / "onsite.html").symlink_to(victim)
    with pytest.raises(InputError, match="symbolic link"):
        write_snapshot(engine, folder, "Europe/Amsterdam", now=T0)
    assert victim.read_text() == "precious"
