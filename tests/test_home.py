"""Where the data lives does not depend on the directory a command is run from.

Real subprocesses of the installed `facility` script, run from different directories with a
configuration file found through FACILITY_CONFIG, and with none at all: the second command finds
the database the first created, and a database that is missing is named by its absolute path.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from facility.settings import SYSTEM_CONFIG, SYSTEM_HOME, default_home, load_settings
from tests.daemons import FACILITY


def facility(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("FACILITY_")}
    return subprocess.run(
        [FACILITY, *args], cwd=cwd, env={**base, **env}, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def site(tmp_path) -> tuple[Path, Path, Path]:
    """A configuration directory, and two unrelated working directories."""
    conf_dir, here, there = tmp_path / "etc-site", tmp_path / "here", tmp_path / "there"
    for folder in (conf_dir, here, there):
        folder.mkdir()
    return conf_dir, here, there


def test_onsite_from_another_directory_finds_the_database_init_made(site):
    conf_dir, here, there = site
    config = conf_dir / "facility.toml"
    config.write_text('timezone = "UTC"\n')
    env = {"FACILITY_CONFIG": str(config)}
    made = facility("init", cwd=here, env=env)
    assert made.returncode == 0, made.stderr
    assert str(conf_dir / "var" / "facility.db") in made.stdout
    signed = facility("visitor", "sign-in", "Ada Lovelace", cwd=here, env=env)
    assert signed.returncode == 0, signed.stderr

    onsite = facility("onsite", "--format", "json", cwd=there, env=env)
    assert onsite.returncode == 0, onsite.stderr
    assert "Ada Lovelace" in onsite.stdout
    assert not (here / "var").exists() and not (there / "var").exists()


def test_relative_paths_in_the_file_are_read_against_the_file(site):
    conf_dir, here, there = site
    config = conf_dir / "facility.toml"
    config.write_text('home = "data"\ndatabase_url = "sqlite:///db/site.db"\n')
    env = {"FACILITY_CONFIG": str(config)}
    assert facility("init", cwd=here, env=env).returncode == 0
    assert (conf_dir / "db" / "site.db").is_file()
    assert (conf_dir / "data" / "audit.key").is_file()
    result = facility("policy", "show", cwd=there, env=env)
    assert result.returncode == 0, result.stderr


def test_a_missing_database_is_named_by_its_absolute_path(site):
    conf_dir, _, there = site
    config = conf_dir / "facility.toml"
    config.write_text('home = "nowhere"\n')
    result = facility("onsite", cwd=there, env={"FACILITY_CONFIG": str(config)})
    assert result.returncode == 1
    assert f"database {conf_dir / 'nowhere' / 'facility.db'} does not exist" in result.stderr
    relative = facility("--db", "sqlite:///rel/x.db", "onsite", cwd=there, env={})
    assert f"database {there / 'rel' / 'x.db'} does not exist" in relative.stderr
    env_home = facility("onsite", cwd=there, env={"FACILITY_HOME": "h"})
    assert f"database {there / 'h' / 'facility.db'} does not exist" in env_home.stderr


def test_the_default_home_never_depends_on_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("FACILITY_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    first = default_home(None)
    monkeypatch.chdir("/")
    assert default_home(None) == first and first.is_absolute()
    assert default_home(SYSTEM_CONFIG) == SYSTEM_HOME
    assert default_home(tmp_path / "site" / "facility.toml") == tmp_path / "site" / "var"
    config = tmp_path / "facility.toml"
    config.write_text("")
    monkeypatch.chdir(tmp_path)
    assert load_settings().home == tmp_path / "var"  # ./facility.toml found: beside it


def test_every_relative_path_in_the_file_is_read_against_the_file(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    config = site / "facility.toml"
    config.write_text(
        '[camera]\nroot = "recordings"\n[snapshot]\ndir = "lists"\n'
        '[mqtt]\nusername = "f"\npassword_file = "secret"\n'
        '[[dhcp]]\nformat = "kea"\npath = "leases.csv"\n'
    )
    monkeypatch.chdir("/")
    monkeypatch.delenv("FACILITY_HOME")
    settings = load_settings(config)
    assert settings.camera.root == site / "recordings"
    assert settings.snapshot_dir == site / "lists"
    assert settings.mqtt.password_file == site / "secret"
    assert settings.dhcp[0].path == site / "leases.csv"
    assert settings.home == site / "var"
