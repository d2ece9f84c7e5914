"""Settings: TOML plus environment, every key documented, bad keys named with exit 2."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facility.cli import app
from facility.errors import ConfigError
from facility.settings import Settings, load_settings

README = Path(__file__).resolve().parents[1] / "README.md"


def _all_keys(model=Settings, prefix="") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        nested = getattr(annotation, "model_fields", None)
        args = getattr(annotation, "__args__", ())
        inner = next((a for a in args if getattr(a, "model_fields", None)), None)
        target = annotation if nested else inner
        if target is not None:
            keys += _all_keys(target, f"{prefix}{name}.")
        else:
            keys.append(prefix + name)
    return keys


def test_defaults_match_design():
    s = load_settings()
    assert s.retention.visits == timedelta(days=3)
    assert s.retention.camera == timedelta(days=14)
    assert s.retention.wifi == timedelta(days=365)
    assert s.limits.max_visit == timedelta(hours=24)
    assert s.holds.release_grace == timedelta(hours=24)
    assert s.purge.interval == timedelta(minutes=15)
    assert s.timezone == "Europe/Amsterdam"
    assert s.roles is None
    assert s.url.endswith("var/facility.db")


def test_toml_then_environment_override(tmp_path, monkeypatch):
    path = tmp_path / "f.toml"
    path.write_text('[retention]\nvisits = "5d"\ncamera = "P7D"\n[holds]\nrelease_grace = "2h"\n')
    monkeypatch.setenv("FACILITY_HOLDS__RELEASE_GRACE", "0s")
    s = load_settings(path)
    assert s.retention.visits == timedelta(days=5)
    assert s.retention.camera == timedelta(days=7)
    assert s.holds.release_grace == timedelta(0)


def test_config_found_through_environment_variable(tmp_path, monkeypatch):
    path = tmp_path / "elsewhere.toml"
    path.write_text('timezone = "UTC"\n')
    monkeypatch.setenv("FACILITY_CONFIG", str(path))
    assert load_settings().timezone == "UTC"


def test_dhcp_sources_are_a_list_of_tables(tmp_path):
    path = tmp_path / "f.toml"
    path.write_text(
        '[[dhcp]]\nformat = "kea"\npath = "/var/lib/kea/kea-leases4.csv"\npoll_interval = "10s"\n'
    )
    (source,) = load_settings(path).dhcp
    assert (source.format, source.poll_interval) == ("kea", timedelta(seconds=10))


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ('[retention]\nvisitz = "3d"\n', "retention.visitz"),
        ('[retention]\nvisits = "three days"\n', "retention.visits"),
        ('timezone = "Mars/Olympus"\n', "timezone"),
        ("[purge]\nbatch_size = 0\n", "purge.batch_size"),
        ('[camera]\nlayout = "vhs"\n', "camera.layout"),
        ('[[dhcp]]\nformat = "isc"\n', "dhcp.0.path"),
        ("unknown_top = 1\n", "unknown_top"),
        ("[roles]\nreception = 'alice'\n", "roles.reception"),
    ],
)
def test_bad_setting_exits_2_naming_the_key(tmp_path, body, named):
    path = tmp_path / "f.toml"
    path.write_text(body)
    with pytest.raises(ConfigError, match=re.escape(named)):
        load_settings(path)
    result = CliRunner().invoke(app, ["--config", str(path), "onsite"])
    assert result.exit_code == 2, result.output
    assert named in result.stderr
    assert "Traceback" not in result.output


def test_bad_environment_value_names_the_key(monkeypatch):
    monkeypatch.setenv("FACILITY_LIMITS__MAX_VISIT", "soon")
    with pytest.raises(ConfigError, match=r"limits\.max_visit"):
        load_settings()


def test_invalid_toml_is_a_clear_error(tmp_path):
    path = tmp_path / "f.toml"
    path.write_text("[retention\n")
    result = CliRunner().invoke(app, ["--config", str(path), "onsite"])
    assert result.exit_code == 2
    assert "not valid TOML" in result.stderr


def test_readme_documents_every_key():
    text = README.read_text(encoding="utf-8")
    table_keys = set(re.findall(r"^\| `([a-z_.\[\]]+)` \|", text, re.MULTILINE))
    missing = [
        k
        for k in _all_keys()
        if k not in table_keys and k.replace("dhcp.", "[[dhcp]].") not in table_keys
    ]
    assert not missing, f"README configuration table lacks {missing}"


def test_example_configuration_names_every_key_and_loads(tmp_path):
    example = (README.parent / "deploy" / "facility.toml.example").read_text(encoding="utf-8")
    uncommented = "\n".join(
        line.removeprefix("# ") if re.match(r"# [a-z_]+ = |# \[\[?[a-z]+\]\]?$", line) else line
        for line in example.splitlines()
    )
    path = tmp_path / "facility.toml"
    path.write_text(uncommented, encoding="utf-8")
    loaded = load_settings(path)
    assert loaded.dhcp[0].format == "kea" and loaded.roles.privacy == ["dpo"]
    for key in _all_keys():
        assert re.search(rf"^#? ?{key.split('.')[-1]} = ", example, re.MULTILINE), key
