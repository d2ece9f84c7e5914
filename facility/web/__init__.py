"""The web interface: the sign-in terminal, the evacuation list and roll call, holds, and a JSON API.

`create_app(settings, clock=...)` builds the ASGI app; `facility web` serves it with uvicorn. The
settings object and the clock come from that edge: nothing here reads the environment or the wall
clock.

Who may do what. People log in with local accounts (`facility user add NAME --role ROLE`), whose
roles decide the pages and actions they get: `reception` the reception desk, the on-site list and
the roll call; `security` holds, the on-site list and the roll call; `privacy` the report; `admin`
everything. A page or action refused for want of a role answers 403 and writes an audit entry
(`refused`). The actor in the audit trail is `web:NAME`.

Sessions. A login sets one cookie, `facility_session`: signed (itsdangerous, key in
`HOME/web.key`), HttpOnly, SameSite=Strict, and Secure when the request came over HTTPS. Behind a
TLS-terminating proxy uvicorn takes the scheme from `X-Forwarded-Proto`, but only from the
addresses given to `facility web --forwarded-allow-ips` (default 127.0.0.1);
`--secure-cookies` marks the cookie Secure whatever the scheme. A session lasts at most
`SESSION_LIFETIME`; changing the password or removing the account ends it at once.
Logging out clears the cookie in that browser.

CSRF. Every form carries a token bound to the session and every POST without the right one is
refused (403) before anything else happens. The JSON API takes either HTTP Basic credentials
(for terminals and badge printers; same lock-out as the login form) or the session cookie plus the
token in an `X-CSRF-Token` header, and only JSON bodies.

Lock-out. Five wrong passwords in a row lock an account for 15 minutes (`facility.users`).
"""

from facility.web.app import create_app

__all__ = ["create_app"]
