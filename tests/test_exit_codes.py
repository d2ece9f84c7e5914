"""The README's exit-code table and the code agree, case by case."""

from __future__ import annotations

import re
from pathlib import Path

from facility.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"


def documented() -> dict[int, str]:
    text = README.read_text(encoding="utf-8").split("## Exit codes", 1)[1]
    return {
        int(code): meaning for code, meaning in re.findall(r"^\| (\d+) \| (.+) \|$", text, re.M)
    }


def test_every_code_of_the_design_is_in_the_table():
    assert {0, 1, 2, 3, 4} <= set(documented())


def test_an_unusable_database_url_is_bad_input(cli):
    for url in ("nonsense", "mysql://user@host/db"):
        result = cli.runner.invoke(app, ["--db", url, "onsite"])
        assert result.exit_code == 2, result.output
        assert "--db" in result.stderr
    assert "`--db` URL" in documented()[2]


def test_a_declined_question_is_what_the_table_says(cli, monkeypatch):
    monkeypatch.setattr("facility.cli.policy._interactive", lambda: True)
    result = cli("policy", "set", "visits", "1d", "--reason", "r", input="n\n", code=1)
    assert "nothing changed" in result.stderr
    assert "a question answered no" in documented()[1]
    monkeypatch.undo()  # CliRunner's stdin is no terminal
    no_terminal = cli("policy", "set", "visits", "1d", "--reason", "r", code=2)
    assert "pass --yes" in no_terminal.stderr
    assert "without a terminal" in documented()[2]


def test_an_erasure_that_keeps_an_open_visit_is_what_the_table_says(cli):
    cli("visitor", "sign-in", "Grace Hopper")
    result = cli("subject", "erase", "--name", "Grace Hopper", "--reason", "REQ-1", "--yes", code=1)
    assert "still in use were kept" in result.stderr
    assert "an erasure that kept records still in use" in documented()[1]
