"""The `facility` command line: one Typer app, one sub-app per area, errors rendered at this edge.

Every FacilityError raised below becomes one line on stderr and the exit code DESIGN.md gives it;
no traceback is shown for an expected failure.
"""

from __future__ import annotations

from pathlib import Path

import typer
from typer.core import TyperGroup

from facility.access import current_identity
from facility.cli import admin, reception
from facility.cli import audit as audit_cli
from facility.cli import camera as camera_cli
from facility.cli import holds as holds_cli
from facility.cli import imports as imports_cli
from facility.cli import muster as muster_cli
from facility.cli import policy as policy_cli
from facility.cli import purge as purge_cli
from facility.cli import rejections as rejections_cli
from facility.cli import report as report_cli
from facility.cli import subject as subject_cli
from facility.cli import user as user_cli
from facility.cli import web as web_cli
from facility.cli import wifi as wifi_cli
from facility.cli.context import AppContext
from facility.errors import FacilityError
from facility.settings import load_settings


class _FacilityGroup(TyperGroup):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except FacilityError as err:
            typer.echo(f"facility: {err}", err=True)
            raise typer.Exit(err.exit_code) from None


app = typer.Typer(
    cls=_FacilityGroup,
    no_args_is_help=True,
    add_completion=False,
    help="Keeps an office's security data exactly as long as policy allows, and proves it.",
)


@app.callback()
def _main(
    ctx: typer.Context,
    config: Path | None = typer.Option(
        None, "--config", help="Configuration file (default: $FACILITY_CONFIG, ./facility.toml)."
    ),
    database: str | None = typer.Option(
        None, "--db", help="Database URL (default: $FACILITY_DATABASE_URL, database_url)."
    ),
) -> None:
    ctx.obj = AppContext(settings=load_settings(config, database), identity=current_identity())


admin.register(app)
reception.register(app)
policy_cli.register(app)
audit_cli.register(app)
holds_cli.register(app)
purge_cli.register(app)
camera_cli.register(app)
wifi_cli.register(app)
imports_cli.register(app)
rejections_cli.register(app)
report_cli.register(app)
subject_cli.register(app)
muster_cli.register(app)
user_cli.register(app)
web_cli.register(app)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="facility")
