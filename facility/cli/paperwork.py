"""The privacy officer's paperwork, made from the live policies: `notice` and `register`.

`facility notice` is the privacy notice people are shown (GDPR article 13), as text or as one
printable A4 HTML page, in English or Dutch; `facility register` the register of processing
activities (article 30). Both are made at the moment they are asked for, from the policies in
force and the `[privacy]` settings, so a policy change changes them (`privacy.notice`,
`privacy.register`).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from facility import sites
from facility.cli.context import app_context, permitted
from facility.files import write_private
from facility.privacy import notice, register


class NoticeFormat(StrEnum):
    """Output formats of `notice`."""

    txt = "txt"
    html = "html"


class Language(StrEnum):
    """The languages the notice is written in."""

    en = "en"
    nl = "nl"


class RegisterFormat(StrEnum):
    """Output formats of `register`."""

    md = "md"
    html = "html"
    json = "json"


def register_commands(app: typer.Typer) -> None:
    """Add `notice` and `register` to `app`."""
    app.command("notice")(notice_command)
    app.command("register")(register_command)


OUTPUT = typer.Option(None, "--output", help="Write to this file (mode 0600), not stdout.")


@permitted("notice.view")
def notice_command(
    ctx: typer.Context,
    output_format: NoticeFormat = typer.Option(
        NoticeFormat.txt, "--format", help="txt, or html (one page, A4 when printed)."
    ),
    lang: Language = typer.Option(Language.en, "--lang", help="en or nl."),
    output: Path | None = OUTPUT,
) -> None:
    """The privacy notice (article 13) of one site, made from the policies in force there and the
    privacy settings (--site or FACILITY_SITE with several sites)."""
    context = app_context(ctx)
    settings = context.settings
    site = context.site()
    with context.session() as session:
        made = notice.build(
            session,
            settings.privacy,
            settings.limits,
            now=context.now(),
            site_zone=sites.zone_of(site, settings),
            lang=lang.value,
            site=site,
        )
    _emit(notice.render(made, output_format.value), output, f"notice {made.version.digest}")


@permitted("register.view")
def register_command(
    ctx: typer.Context,
    output_format: RegisterFormat = typer.Option(
        RegisterFormat.md, "--format", help="md, html (one printable page) or json."
    ),
    output: Path | None = OUTPUT,
) -> None:
    """The register of processing activities (article 30): one entry per kind (with several sites,
    per kind and site; --site narrows it to one site)."""
    context = app_context(ctx)
    settings = context.settings
    chosen = context.narrowed()
    with context.session() as session:
        made = register.build(session, settings, now=context.now(), only=chosen)
    text = register.render(made, output_format.value, settings.timezone)
    _emit(text, output, f"register ({made.count} entries)")


def _emit(text: str, output: Path | None, what: str) -> None:
    if output is None:
        typer.echo(text, nl=False)
        return
    write_private(output, text)
    typer.echo(f"{what} written to {output}")
