"""The CLI edge: every command registered in the Typer app, fed hostile arguments, never shows a
traceback and answers with the exit code of the README's table; `--version`, shell completion and
help without stray metavars.

The commands are found by walking the app, so a command added later is covered without a change
here. Only `daemon` and `web` are left out of the walk (they would serve until stopped); their
global options get the hostile database URLs below.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.core import TyperArgument
from typer.testing import CliRunner

from facility.cli import app
from facility.cli.edge import RAW_INPUT
from tests.daemons import FACILITY

SERVES_UNTIL_STOPPED = {("daemon",), ("web",)}
TIME_OPTIONS = {"--at", "--from", "--to", "--since", "--review-by"}
# Options spelled like a time option that take something else: `export handed-over --to` names
# who received an export.
NOT_TIMES = {(("export", "handed-over"), "--to")}
HUGE_IDS = ["9223372036854775808", "-9223372036854775809", str(10**30)]
BAD_TIMES = ["0001-01-01T00:00", "9999-12-31T23:59", "9999-12-31T14:00-14:00", "0001-01-01"]
BAD_TEXT = ["Jane\udcff Doe", "Mallory\x1b[1A\x1b[2K", "nul\x00byte", "line\nbreak"]
BAD_URLS = ["mysql://user@host/db", "nonsense", "sqlite://", "oracle+cx_oracle://x/y", "://"]
# Values that let the other arguments of a command through, so the hostile one is what is judged.
SANE = {
    "--from": "2026-01-01T00:00",
    "--to": "2026-01-02T00:00",
    "--reason": "hostile-input test",
    "--kind": "visits",
    "--role": "admin",
    "--mac": "3c:22:fb:01:02:03",
    "KIND": "visits",
    "DURATION": "3d",
    "STATUS": "safe",
    "ACTION": "add",
}
# Commands that need one of several optional arguments: the one given when another is judged.
ONE_OF = {("visitor", "sign-out"): ("--name", "Ada Lovelace")}


def leaves(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every runnable command of the app, with the words that name it."""
    subcommands = getattr(command, "commands", None)
    if subcommands is None:
        yield path, command
        return
    for name, sub in subcommands.items():
        yield from leaves(sub, (*path, name))


COMMANDS = [
    (path, command)
    for path, command in leaves(typer.main.get_command(app))
    if path not in SERVES_UNTIL_STOPPED
]


def name_of(param: Any) -> str:
    if isinstance(param, TyperArgument):
        return (param.metavar or param.name.upper()).strip("[]").split()[0]
    return next(opt for opt in param.opts if opt.startswith("--"))


def kind_of(param: Any) -> str:
    shown = param.display_type(None) if hasattr(param, "display_type") else "<str>"
    if getattr(param, "type_descriptor", None) is not None and param.type_descriptor.is_choice:
        return "choice"
    if "int" in shown:
        return "int"
    if "path" in shown.lower():
        return "path"
    return "str"


def sane_value(param: Any, tmp_path: Path) -> str:
    name = name_of(param)
    if name in SANE:
        return SANE[name]
    kind = kind_of(param)
    if kind == "choice":
        first = next(iter(param.type_descriptor.choices))
        return str(getattr(first, "value", first))
    if kind == "int":
        return "1"
    if kind == "path":
        sample = tmp_path / "input.txt"
        sample.write_text("x\n")
        return str(sample)
    return "Ada Lovelace"


def argv_for(path, command, target, value: str, tmp_path: Path) -> list[str]:
    argv = list(path)
    for param in command.params:
        if param.name == "help" or getattr(param, "is_flag", False):
            continue
        if param is not target and not param.required:
            continue
        given = value if param is target else sane_value(param, tmp_path)
        if isinstance(param, TyperArgument):
            argv += [given] * (2 if param.nargs == -1 and param is not target else 1)
        else:
            argv += [name_of(param), given]
    extra = ONE_OF.get(path)
    if extra and name_of(target) != extra[0]:
        argv += extra
    return argv


def hostile_cases(
    tmp_path: Path, area: str | None = None
) -> Iterator[tuple[list[str], set[int], str]]:
    """(argv, the exit codes that are right, what the message must name) for every parameter of
    every command (of those whose first word is `area`)."""
    for path, command in COMMANDS:
        if area is not None and path[0] != area:
            continue
        raw = path in RAW_INPUT
        for param in command.params:
            if param.name == "help" or getattr(param, "is_flag", False):
                continue
            name, kind = name_of(param), kind_of(param)
            values: list[tuple[str, set[int]]] = []
            if kind == "int":
                values += [(v, {2}) for v in HUGE_IDS]
            elif kind == "path":
                values += [
                    (str(tmp_path / "nonexistent" / "dir" / "x.html"), {1, 2}),
                    (str(tmp_path), {1, 2}),  # a directory where a file is expected
                ]
            if kind in ("str", "path", "choice"):
                values += [(v, {0} if raw else {2}) for v in BAD_TEXT]
            if name in TIME_OPTIONS and (path, name) not in NOT_TIMES:
                values += [(v, {2}) for v in BAD_TIMES]
            for value, codes in values:
                named = name if codes == {2} and kind != "choice" and not raw else ""
                yield argv_for(path, command, param, value, tmp_path), codes, named


def run(cli_args: list[str], db_url: str):
    return CliRunner().invoke(app, ["--db", db_url, *cli_args], input="")


def assert_clean(result, argv: list[str], codes: set[int], named: str) -> None:
    shown = f"facility {' '.join(map(repr, argv))} -> exit {result.exit_code}\n{result.output}"
    assert result.exception is None or isinstance(result.exception, SystemExit), shown
    assert "Traceback" not in result.output, shown
    assert result.exit_code in codes, shown
    ours = [line for line in result.stderr.splitlines() if line.startswith("facility:")]
    if ours:
        assert len(result.stderr.strip().splitlines()) == 1, shown
        assert "\x1b" not in result.stderr and "\udcff" not in result.stderr, shown
    if named:
        assert named in result.stderr, shown


# The walk is split by first word so that test workers share it.
AREAS = sorted(
    {
        path[0]
        for path, command in COMMANDS
        if any(p.name != "help" and not getattr(p, "is_flag", False) for p in command.params)
    }
)


def test_the_walk_finds_every_command(tmp_path):
    words = {" ".join(path) for path, _ in COMMANDS}
    # A sample from each area: if the walk missed sub-apps, these would be absent.
    assert {"onsite", "visitor sign-in", "hold place", "subject erase", "policy sync"} <= words
    assert len(words) >= 35
    assert len(list(hostile_cases(tmp_path))) > 300


@pytest.mark.parametrize("area", AREAS)
def test_every_command_with_hostile_arguments_never_shows_a_traceback(db_url, tmp_path, area):
    cases = list(hostile_cases(tmp_path, area))
    assert cases
    # Someone on site, so that commands about a visitor reach the argument being judged.
    assert run(["visitor", "sign-in", "Ada Lovelace", "--badge", "B1"], db_url).exit_code == 0
    failures = []
    for argv, codes, named in cases:
        try:
            assert_clean(run(argv, db_url), argv, codes, named)
        except AssertionError as err:
            failures.append(str(err).split("\nassert")[0])
    assert not failures, f"{len(failures)} of {len(cases)}:\n" + "\n".join(failures)


@pytest.mark.parametrize("url", BAD_URLS)
@pytest.mark.parametrize("command", [["onsite"], ["init"], ["daemon"], ["web"], ["doctor"]])
def test_a_database_url_facility_cannot_use_is_bad_input(url, command):
    result = CliRunner().invoke(app, ["--db", url, *command])
    assert_clean(result, command, {2}, "--db")
    if url.startswith("mysql"):
        assert "SQLite or PostgreSQL" in result.stderr


def test_output_paths_that_cannot_be_written_name_the_option(cli, tmp_path):
    missing = tmp_path / "nonexistent" / "dir" / "x.html"
    for target in (missing, Path("/root") if os.geteuid() == 0 else tmp_path):
        result = CliRunner().invoke(app, ["--db", cli.url, "onsite", "--output", str(target)])
        assert_clean(result, ["onsite", "--output", str(target)], {2}, "--output:")
        assert str(target.parent if target == missing else target) in result.stderr


def test_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert re.fullmatch(r"facility \d+\.\d+\.\d+\S*\n", result.output)


def test_version_needs_no_configuration_or_database(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("[retention\n")
    result = CliRunner().invoke(app, ["--config", str(broken), "--version"])
    assert result.exit_code == 0, result.output


def test_shell_completion_completes_commands_and_choices(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("_FACILITY")}
    # Typer's own switch: the shell is named rather than detected from the parent processes.
    script = subprocess.run(
        [FACILITY, "--show-completion", "bash"],
        env={**env, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert script.returncode == 0 and "_FACILITY_COMPLETE" in script.stdout, script.stderr

    def complete(words: str) -> list[str]:
        answer = subprocess.run(
            [FACILITY],
            env={
                **env,
                "_FACILITY_COMPLETE": "complete_bash",
                "COMP_WORDS": words,
                "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
        return answer.stdout.split()

    assert complete("facility vis") == ["visitor"]
    assert complete("facility onsite --format ") == ["table", "json", "csv", "html"]


HELP_NOISE = re.compile(r"<[a-z_\[\]|.]+>|\{[a-z_]+\}|\bbool\b")


@pytest.mark.parametrize(
    "words", [(), *sorted({path[:i] for path, _ in COMMANDS for i in range(1, len(path) + 1)})]
)
def test_help_has_no_stray_metavars(words):
    result = CliRunner().invoke(app, [*words, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    assert not HELP_NOISE.findall(result.output), result.output
    if not words:
        for option in ("--version", "--install-completion", "--show-completion"):
            assert option in result.output


ROOT_OPTIONS = [
    name_of(param)
    for param in typer.main.get_command(app).params
    if param.name != "help" and not getattr(param, "is_flag", False)
]


@pytest.mark.parametrize("option", ROOT_OPTIONS)
@pytest.mark.parametrize("value", BAD_TEXT)
def test_global_options_with_hostile_text_are_bad_input(option, value):
    result = CliRunner().invoke(app, [option, value, "onsite"])
    assert_clean(result, [option, value, "onsite"], {2}, option)


def test_a_driver_facility_cannot_use_is_bad_input():
    result = CliRunner().invoke(app, ["--db", "postgresql+asyncpg://u@h/db", "onsite"])
    assert_clean(result, ["--db", "postgresql+asyncpg://u@h/db"], {2}, "--db")
