"""`facility web`: serve the web interface (reception, evacuation list, roll call, holds, API)."""

from __future__ import annotations

from pathlib import Path

import typer
from sqlmodel import Session

from facility import sites
from facility.accounts import users
from facility.cli.context import AppContext, app_context, permitted
from facility.errors import InputError


def register(app: typer.Typer) -> None:
    """Add `facility web` to `app`."""
    app.command("web")(serve)


@permitted("web.serve")
def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", min=1, max=65535, help="Port to listen on."),
    forwarded_allow_ips: str = typer.Option(
        "127.0.0.1",
        "--forwarded-allow-ips",
        help="Proxies trusted to set X-Forwarded-Proto/-For (comma separated, or *).",
    ),
    secure_cookies: bool = typer.Option(
        False, "--secure-cookies", help="Mark the session cookie Secure even on plain HTTP."
    ),
    tls_cert: Path | None = typer.Option(None, "--tls-cert", help="Serve HTTPS with this cert."),
    tls_key: Path | None = typer.Option(None, "--tls-key", help="The key of --tls-cert."),
) -> None:
    """Serve the web interface until stopped (Ctrl-C or SIGTERM).

    Log in with accounts made by `facility user add`. Behind a TLS proxy, let it send
    X-Forwarded-Proto and list it in --forwarded-allow-ips: the session cookie is then Secure.
    """
    import uvicorn

    from facility.web import create_app

    if (tls_cert is None) != (tls_key is None):
        raise InputError("--tls-cert and --tls-key go together")
    context = app_context(ctx)
    engine = context.engine()  # refuses a database that is missing or behind the schema
    with context.session() as session:
        accounts = len(users.listing(session))
        site = _bound_site(session, context)
        serves = f"site {site}" if site else "the site each login chooses"
    app = create_app(
        context.settings,
        clock=context.now,
        engine=engine,
        secure_cookies=secure_cookies,
        site=site,
    )
    scheme = "https" if tls_cert else "http"
    typer.echo(f"facility web on {scheme}://{host}:{port}/ ({accounts} accounts; {serves})")
    if not accounts:
        typer.echo("no accounts yet: add one with `facility user add NAME --role ROLE`", err=True)
    if scheme == "http" and host not in ("127.0.0.1", "localhost", "::1") and not secure_cookies:
        typer.echo(
            "warning: plain HTTP on a network address; put it behind a TLS proxy "
            "(see --forwarded-allow-ips) or give --tls-cert/--tls-key",
            err=True,
        )
    uvicorn.run(
        app,
        host=host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        server_header=False,
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
        log_level="info",
    )


def _bound_site(session: Session, context: AppContext) -> str | None:
    """The site every terminal of this server serves (`--site`, else `[web] site`), checked to
    exist; None: each browser's login chooses (`facility.web.terminal`). The configuration's
    `site`, which the commands and the daemon follow, does not bind the web: one server may
    serve every office."""
    code = context.site_code or context.settings.web.site
    if code is None:
        return None
    what = "--site" if context.site_code else "[web] site"
    return sites.get(session, code, what=what).code
