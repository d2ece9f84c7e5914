"""The `facility` command line: one Typer app, one sub-app per area, errors rendered at this edge.

Every FacilityError raised below becomes one line on stderr and the exit code DESIGN.md gives it;
no traceback is shown for an expected failure. What is left is caught here as well: an OSError on
a path the user gave names that argument (exit 2), any other one names the path (exit 1), and an
unexpected exception is one line saying it is a bug (exit 1; FACILITY_DEBUG=1 shows the
traceback). Every argument passes `edge.harden`'s checks first.
"""

from __future__ import annotations

import errno
import unicodedata
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:  # the context TyperGroup's methods are declared with (Typer's own click)
    from typer._click import Context as ClickContext

from facility.accounts.access import current_identity
from facility.cli import admin, reception
from facility.cli import audit as audit_cli
from facility.cli import camera as camera_cli
from facility.cli import desk as desk_cli
from facility.cli import exports as exports_cli
from facility.cli import holds as holds_cli
from facility.cli import imports as imports_cli
from facility.cli import muster as muster_cli
from facility.cli import paperwork as paperwork_cli
from facility.cli import policy as policy_cli
from facility.cli import purge as purge_cli
from facility.cli import rejections as rejections_cli
from facility.cli import report as report_cli
from facility.cli import requests as requests_cli
from facility.cli import sites as sites_cli
from facility.cli import subject as subject_cli
from facility.cli import user as user_cli
from facility.cli import web as web_cli
from facility.cli import wifi as wifi_cli
from facility.cli.context import AppContext
from facility.cli.edge import harden
from facility.errors import FacilityError
from facility.settings import config_path, debug_requested, load_settings
from facility.sites import check_code

# Exceptions that already carry their own exit: Typer's and click's, and an interrupted prompt.
_THEIRS = (typer.Exit, typer.Abort, typer.TyperException, EOFError)


class _FacilityGroup(TyperGroup):
    def parse_args(self, ctx: ClickContext, args: list[str]) -> list[str]:
        harden(self, ctx)
        args = _site_first(list(args))
        ctx.meta["facility.argv"] = list(args)
        try:  # the global options are checked here, before `invoke`
            return super().parse_args(ctx, args)
        except FacilityError as err:
            _say(str(err))
            raise typer.Exit(err.exit_code) from None

    def invoke(self, ctx: ClickContext) -> Any:
        try:
            return super().invoke(ctx)
        except _THEIRS:
            raise
        except FacilityError as err:
            _say(str(err))
            raise typer.Exit(err.exit_code) from None
        except OSError as err:
            if err.errno == errno.EPIPE:  # `facility audit show | head`: Typer ends quietly
                raise
            code = _os_error(err, ctx.meta.get("facility.argv", []))
            raise typer.Exit(code) from None
        except Exception as err:
            if debug_requested():
                raise
            _say(
                f"unexpected error ({type(err).__name__}: {err}); nothing more is known. This is "
                "a bug: please report it with the command you ran (FACILITY_DEBUG=1 shows where)"
            )
            raise typer.Exit(1) from None


def _site_first(args: list[str]) -> list[str]:
    """`--site CODE` where the top level takes it, wherever it was typed (`policy set ... --site
    ams`): it is the one option every command shares. Not after `--`, nor in the dnsmasq hook's
    arguments, which are dnsmasq's."""
    for index, token in enumerate(args):
        if token == "--" or token == "dnsmasq-hook":
            return args
        if token == "--site" and index + 1 < len(args):
            return [token, args[index + 1], *args[:index], *args[index + 2 :]]
        if token.startswith("--site="):
            return [token, *args[:index], *args[index + 1 :]]
    return args


def _os_error(err: OSError, argv: list[str]) -> int:
    """Say which path failed and why; 2 when the user typed that path, 1 otherwise."""
    reason = err.strerror or str(err)
    for name in (err.filename, err.filename2):
        if name is None:
            continue
        path = str(name)
        option = _argument_for(path, argv)
        if option is not None:
            _say(f"{option} {path}: {reason}")
            return 2
        _say(f"{path}: {reason}; check that path and its permissions")
        return 1
    _say(f"{reason}; check the disk and the paths in the configuration")
    return 1


def _argument_for(path: str, argv: list[str]) -> str | None:
    """The option (or `argument`) under which `path` was given on the command line, if it was."""
    for index, token in enumerate(argv):
        option, _, value = token.partition("=")
        if value and option.startswith("--") and _same_path(value, path):
            return option
        if _same_path(token, path):
            before = argv[index - 1] if index else ""
            return before if before.startswith("--") else "argument"
    return None


def _same_path(token: str, path: str) -> bool:
    # Typer hands commands a Path, which spells some paths differently from argv ('' is '.').
    return token == path or (bool(token) and Path(token) == Path(path))


def _say(message: str) -> None:
    """One line on stderr; characters that would act on the terminal are shown escaped."""
    shown = "".join(
        ch.encode("unicode_escape").decode("ascii")
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs") and ch != "\n"
        else ch
        for ch in message
    )
    typer.echo(f"facility: {shown}", err=True)


def _version(value: bool) -> None:
    if value:
        try:
            typer.echo(f"facility {version('facility')}")
        except PackageNotFoundError:  # run from a source tree that was never installed
            typer.echo("facility (version unknown: not installed)")
        raise typer.Exit()


app = typer.Typer(
    cls=_FacilityGroup,
    no_args_is_help=True,
    help="Keeps an office's security data exactly as long as policy allows, and proves it.",
)


@app.callback()
def _main(
    ctx: typer.Context,
    config: Path | None = typer.Option(
        None,
        "--config",
        help="Configuration file (default: $FACILITY_CONFIG, ./facility.toml, "
        "/etc/facility/facility.toml).",
    ),
    database: str | None = typer.Option(
        None, "--db", help="Database URL (default: $FACILITY_DATABASE_URL, database_url)."
    ),
    site: str | None = typer.Option(
        None,
        "--site",
        help="The site (office) to work at, by code (default: $FACILITY_SITE, site, the only "
        "one); narrows organisation-wide commands to it.",
    ),
    _show_version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    ctx.obj = AppContext(
        settings=load_settings(config, database),
        identity=current_identity(),
        config=config_path(config),
        site_code=None if site is None else check_code(site),
    )


admin.register(app)
reception.register(app)
desk_cli.register(app)
policy_cli.register(app)
audit_cli.register(app)
holds_cli.register(app)
exports_cli.register(app)
purge_cli.register(app)
camera_cli.register(app)
wifi_cli.register(app)
imports_cli.register(app)
rejections_cli.register(app)
report_cli.register(app)
subject_cli.register(app)
requests_cli.register(app)
paperwork_cli.register_commands(app)
muster_cli.register(app)
user_cli.register(app)
sites_cli.register(app)
web_cli.register(app)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="facility")
