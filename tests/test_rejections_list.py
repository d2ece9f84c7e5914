"""Rejected lines are visible (issue 20.11): `import leases` prints the first ones with their
reasons, and `facility rejections list` shows what was refused, to privacy and admin only.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.usefixtures("fixed_clock")

GOOD = "1621598715 08:02:8e:47:dd:cf 192.168.0.251 laptop 01:08:02:8e:47:dd:cf\n"
BAD = [
    "soon 08:02:8e:47:dd:d0 192.168.0.252 ada-phone *\n",
    "1621598715 not-a-mac 192.168.0.253 bob-tablet *\n",
]


def _import(cli, tmp_path, lines):
    path = tmp_path / "dnsmasq.leases"
    path.write_text("".join(lines))
    return path, cli("import", "leases", str(path), "--format", "dnsmasq")


def test_import_prints_the_first_rejected_lines_with_their_reasons(cli, tmp_path):
    path, result = _import(cli, tmp_path, [GOOD, *BAD])
    assert result.stdout == f"{path}: 1 stored, 0 updated, 2 rejected\n"
    shown = result.stderr.splitlines()
    assert len(shown) == 2
    assert "ada-phone" in shown[0] and "bob-tablet" in shown[1]
    assert all(line.startswith("  rejected: ") for line in shown)


def test_rejections_list_shows_what_was_refused_by_source_and_format(cli, tmp_path):
    path, _ = _import(cli, tmp_path, [GOOD, *BAD])
    table = cli("rejections", "list").stdout
    assert str(path) in table and "ada-phone" in table and "2 shown of 2" in table
    listed = json.loads(cli("rejections", "list", "--format", "json").stdout)
    assert [r["source"] for r in listed] == [str(path)] * 2
    assert {"id", "at", "source", "reason", "raw"} == set(listed[0])
    assert "bob-tablet" in listed[0]["raw"]  # newest first
    assert cli("rejections", "list", "--source", "mqtt").stdout == "no rejections from mqtt\n"
    by_path = json.loads(
        cli("rejections", "list", "--source", str(path), "--format", "json").stdout
    )
    assert len(by_path) == 2
    csv_out = cli("rejections", "list", "--format", "csv").stdout
    assert csv_out.splitlines()[0] == "id,at,source,reason,raw"


def test_rejections_list_needs_privacy_or_admin(cli, tmp_path):
    config = cli.config('[roles]\nreception = ["nobody-else"]\nprivacy = ["nobody"]\n')
    result = cli("rejections", "list", code=3, config=config)
    assert "needs role privacy or admin" in result.stderr
